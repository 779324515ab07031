import Foundation

/// A node's claim on one subnet, as read from the lease store.
public struct Lease: Sendable, Equatable {
    public var subnet: IPv4Prefix
    public var attributes: LeaseAttributes
    /// When the store will drop the lease unless it is renewed; nil if it never expires.
    public var expiration: Date?

    public init(subnet: IPv4Prefix, attributes: LeaseAttributes, expiration: Date? = nil) {
        self.subnet = subnet
        self.attributes = attributes
        self.expiration = expiration
    }
}
