import Foundation
import Logging
import WeftCore

/// Acquires this node's lease: reclaims its own (in Flannel's order: the lease carrying
/// its public IP, then the previous run's subnet, then a new one) and resolves races
/// with other nodes by retrying on the store's compare-and-swap.
public struct LeaseAcquirer: Sendable {
    /// Flannel's lease lifetime.
    public static let defaultTTLSeconds: Int64 = 24 * 3600

    public let registry: SubnetRegistry
    public let config: NetworkConfig
    public let ttlSeconds: Int64
    let logger: Logger

    public init(registry: SubnetRegistry, config: NetworkConfig, ttlSeconds: Int64 = defaultTTLSeconds,
                logger: Logger = Logger(label: "weft.lease")) {
        self.registry = registry
        self.config = config
        self.ttlSeconds = ttlSeconds
        self.logger = logger
    }

    /// Acquires a lease for `attributes.publicIP`. When renewing an existing VXLAN lease,
    /// its VTEP MAC is kept (peers have cached it); the returned lease says which MAC won.
    /// `hostAddresses` (every address of this host) finds our lease from a run with another
    /// interface or public IP.
    public func acquire(attributes: LeaseAttributes, previousSubnet: IPv4Prefix? = nil, hostAddresses: Set<IPv4Address> = [],
                        maxAttempts: Int = 100) async throws -> RegisteredLease {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<maxAttempts {
            let listing = try await registry.leases()
            let plan = ReclaimPlan.make(publicIP: attributes.publicIP, previousSubnet: previousSubnet,
                                        leases: listing.leases.map(\.lease), config: config, hostAddresses: hostAddresses,
                                        vtepMAC: attributes.vxlan?.vtepMAC)
            for stale in plan.staleLeases {
                logger.info("deleting our lease that no longer fits the network config", metadata: ["subnet": "\(stale)"])
                _ = try await registry.deleteLease(subnet: stale)
            }
            switch plan.action {
            case .renew(let existing):
                guard let current = listing.leases.first(where: { $0.lease.subnet == existing.subnet }) else { continue }
                let kept = Self.keepingVTEPMAC(of: existing.attributes, in: attributes)
                if let lease = try await registry.replaceLease(current, attributes: kept, ttlSeconds: ttlSeconds) {
                    if existing.attributes.publicIP != attributes.publicIP {
                        logger.notice("kept the subnet of our previous run, which had another public IP", metadata: [
                            "subnet": "\(lease.lease.subnet)", "was": "\(existing.attributes.publicIP)", "now": "\(attributes.publicIP)",
                        ])
                    }
                    logger.info("reclaimed our lease", metadata: ["subnet": "\(lease.lease.subnet)"])
                    return lease
                }
            case .claimPrevious(let subnet):
                if let lease = try await registry.createLease(subnet: subnet, attributes: attributes, ttlSeconds: ttlSeconds) {
                    logger.info("reclaimed the subnet of our previous run", metadata: ["subnet": "\(subnet)"])
                    return lease
                }
            case .allocate:
                // An unreadable lease still holds its subnet: never hand it out twice.
                let taken = listing.leases.map(\.lease.subnet) + listing.skipped.compactMap(\.subnet)
                let subnet = try SubnetAllocator.allocate(in: config, taken: taken, using: &generator)
                if let lease = try await registry.createLease(subnet: subnet, attributes: attributes, ttlSeconds: ttlSeconds) {
                    logger.info("leased a new subnet", metadata: ["subnet": "\(subnet)"])
                    return lease
                }
            }
            // Another node changed the store between our read and our write: read again.
        }
        throw LeaseContentionError(attempts: maxAttempts, location: registry.store.location)
    }

    static func keepingVTEPMAC(of existing: LeaseAttributes, in desired: LeaseAttributes) -> LeaseAttributes {
        guard let old = existing.vxlan, let new = desired.vxlan, old.vtepMAC != new.vtepMAC else { return desired }
        return .vxlan(publicIP: desired.publicIP, vni: new.vni, vtepMAC: old.vtepMAC)
    }
}

/// Every attempt to write a lease lost a race with another node.
public struct LeaseContentionError: Error, Sendable, CustomStringConvertible {
    public let attempts: Int
    public let location: String
    public var description: String {
        "could not acquire a lease in \(location) after \(attempts) attempts: other nodes kept changing the store; try again"
    }
}
