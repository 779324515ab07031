import Foundation

/// A key and its value as the store holds them, with etcd's bookkeeping.
public struct StoredValue: Sendable, Equatable {
    public let key: String
    public let value: [UInt8]
    /// The revision at which the key was created.
    public let createRevision: Int64
    /// The revision of the key's last change: the token for compare-and-swap.
    public let modRevision: Int64
    /// The TTL lease the key is attached to; 0 for none.
    public let lease: Int64

    public init(key: String, value: [UInt8], createRevision: Int64, modRevision: Int64, lease: Int64) {
        self.key = key
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.lease = lease
    }
}

/// A TTL lease granted by the store. Keys attached to it vanish when it expires.
public struct StoreLease: Sendable, Equatable {
    public let id: Int64
    public let ttlSeconds: Int64
    /// When the lease expires unless kept alive.
    public let expiration: Date
}

/// One change to a key, as a watch reports it.
public struct WatchEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case put
        case delete
    }

    public let kind: Kind
    public let key: String
    /// The new value for `put`; empty for `delete`.
    public let value: [UInt8]
    /// The revision of this change. Events arrive in revision order.
    public let revision: Int64
}

/// What a watch stream yields.
public enum WatchResponse: Sendable, Equatable {
    /// Changes since the last response, in order, each exactly once.
    case events([WatchEvent], revision: Int64)
    /// The history the watch needed was compacted away: list again from `revision` and
    /// diff against what you had, then watch from `revision + 1`.
    case compacted(revision: Int64)
}

/// The lease store, shaped after etcd's v3 API: a key-value map with one monotonic
/// revision, create-if-absent and compare-and-swap, TTL leases, and watches from a
/// revision. The embedded SQLite store and the etcd store both implement it.
public protocol KeyValueStore: Sendable {
    /// Where the store lives, for messages: a file path or etcd endpoints.
    var location: String { get }

    func get(_ key: String) async throws -> StoredValue?

    /// Every live key under `prefix`, sorted by key, and the revision they were read at.
    func list(prefix: String) async throws -> (values: [StoredValue], revision: Int64)

    func grantLease(ttlSeconds: Int64) async throws -> StoreLease

    /// Extends a lease by its TTL. Throws `StoreError.leaseNotFound` if it already expired.
    func keepAlive(lease: Int64) async throws -> StoreLease

    /// When a lease expires; nil if it no longer exists.
    func expiration(ofLease lease: Int64) async throws -> Date?

    /// Ends a lease now, deleting every key attached to it.
    func revokeLease(_ lease: Int64) async throws

    /// Writes `key` only if it does not exist ("version == 0"). Returns the new revision,
    /// or nil when the key exists.
    func createIfAbsent(_ key: String, value: [UInt8], lease: Int64) async throws -> Int64?

    /// Writes `key`; with `ifModRevision`, only if the key's mod revision still equals it
    /// (0 meaning "the key must not exist"). Returns the new revision, or nil if the
    /// comparison failed.
    func put(_ key: String, value: [UInt8], lease: Int64, ifModRevision: Int64?) async throws -> Int64?

    /// Deletes `key`. Returns whether it existed.
    func delete(_ key: String) async throws -> Bool

    /// Streams changes under `prefix` from `revision` (inclusive) on, until the task is
    /// cancelled or the stream's consumer stops.
    func watch(prefix: String, fromRevision revision: Int64) -> AsyncThrowingStream<WatchResponse, any Error>
}

/// Store failures that callers act on.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    case leaseNotFound(Int64)
    case unavailable(location: String, reason: String)
    /// The store cannot be used as configured (a TLS file that cannot be read, a certificate
    /// the flags do not trust): waiting will not help, the configuration must change.
    case misconfigured(location: String, reason: String)

    public var description: String {
        switch self {
        case .leaseNotFound(let id):
            "store lease \(id) not found: it expired or was revoked"
        case .unavailable(let location, let reason):
            "lease store \(location) unavailable: \(reason)"
        case .misconfigured(let location, let reason):
            "lease store \(location) cannot be used as configured: \(reason)"
        }
    }
}
