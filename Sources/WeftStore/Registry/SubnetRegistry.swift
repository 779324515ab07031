import Foundation
import Logging
import WeftCore

/// Flannel's layout over any `KeyValueStore`: the network config at `<prefix>/config` and
/// one key per lease at `<prefix>/subnets/<a.b.c.d>-<len>` holding Flannel's lease JSON.
public struct SubnetRegistry: Sendable {
    public static let defaultPrefix = "/coreos.com/network"

    public let store: any KeyValueStore
    public let prefix: String
    let logger: Logger

    public init(store: any KeyValueStore, prefix: String = defaultPrefix, logger: Logger = Logger(label: "weft.registry")) {
        self.store = store
        self.prefix = prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix
        self.logger = logger
    }

    public var configKey: String { "\(prefix)/config" }
    public var subnetsPrefix: String { "\(prefix)/subnets/" }

    public func key(for subnet: IPv4Prefix) -> String {
        subnetsPrefix + SubnetKey.format(subnet)
    }

    // MARK: Network config

    /// The config text stored at `<prefix>/config`, or nil if none was stored.
    public func networkConfigText() async throws -> String? {
        try await store.get(configKey).map { String(decoding: $0.value, as: UTF8.self) }
    }

    /// Stores a config after checking it, so that no node ever reads an invalid one.
    public func setNetworkConfig(_ text: String) async throws {
        _ = try NetworkConfigParser.parse(text)
        _ = try await store.put(configKey, value: Array(text.utf8), lease: 0, ifModRevision: nil)
    }

    // MARK: Leases

    /// Every readable lease and the revision they were read at. Keys that are not leases
    /// (wrong shape, not Flannel's JSON) are skipped with a warning naming the key, so one
    /// bad entry never hides the others.
    /// With `expirations`, each lease's expiry is looked up too (one store call per lease).
    public func leases(expirations: Bool = false) async throws -> LeaseListing {
        let (values, revision) = try await store.list(prefix: subnetsPrefix)
        var leases: [RegisteredLease] = []
        var skipped: [SkippedKey] = []
        for stored in values {
            switch decode(key: stored.key, value: stored.value) {
            case .success(var lease):
                if expirations, stored.lease != 0 {
                    lease.expiration = try await store.expiration(ofLease: stored.lease)
                }
                leases.append(RegisteredLease(lease: lease, storeLease: stored.lease, modRevision: stored.modRevision,
                                              createRevision: stored.createRevision))
            case .failure(let problem):
                skipped.append(problem)
                logger.warning("skipping unreadable lease", metadata: ["key": "\(stored.key)", "reason": "\(problem.reason)"])
            }
        }
        return LeaseListing(leases: leases, skipped: skipped, revision: revision)
    }

    /// Reads one key as a lease, or says why it is not one.
    public func decode(key: String, value: [UInt8]) -> Result<Lease, SkippedKey> {
        guard key.hasPrefix(subnetsPrefix), let subnet = SubnetKey.parse(key.dropFirst(subnetsPrefix.count)) else {
            return .failure(SkippedKey(key: key, subnet: nil, reason: "the key is not <prefix>/subnets/<a.b.c.d>-<len>"))
        }
        do {
            return .success(Lease(subnet: subnet, attributes: try LeaseAttributes.parse(Data(value))))
        } catch {
            return .failure(SkippedKey(key: key, subnet: subnet, reason: error.reason))
        }
    }

    /// Creates a lease if the subnet is free. Nil when another node holds it.
    public func createLease(subnet: IPv4Prefix, attributes: LeaseAttributes, ttlSeconds: Int64) async throws -> RegisteredLease? {
        let grant = try await store.grantLease(ttlSeconds: ttlSeconds)
        guard let revision = try await store.createIfAbsent(key(for: subnet), value: Array(attributes.serialized().utf8), lease: grant.id) else {
            try? await store.revokeLease(grant.id)
            return nil
        }
        return RegisteredLease(lease: Lease(subnet: subnet, attributes: attributes, expiration: grant.expiration),
                               storeLease: grant.id, modRevision: revision, createRevision: revision)
    }

    /// Rewrites a lease we hold with new attributes and a fresh TTL, only if nobody changed
    /// it since we read it. Nil when it changed (or vanished) under us. A reservation (a
    /// lease with no TTL, as Flannel keeps them) stays one.
    public func replaceLease(_ current: RegisteredLease, attributes: LeaseAttributes, ttlSeconds: Int64) async throws -> RegisteredLease? {
        let grant = current.isReservation ? nil : try await store.grantLease(ttlSeconds: ttlSeconds)
        guard let revision = try await store.put(key(for: current.lease.subnet), value: Array(attributes.serialized().utf8),
                                                 lease: grant?.id ?? 0, ifModRevision: current.modRevision) else {
            if let grant { try? await store.revokeLease(grant.id) }
            return nil
        }
        return RegisteredLease(lease: Lease(subnet: current.lease.subnet, attributes: attributes, expiration: grant?.expiration),
                               storeLease: grant?.id ?? 0, modRevision: revision, createRevision: current.createRevision)
    }

    /// One lease as the store holds it now (nil when the key is gone or unreadable), and
    /// the store's current revision: what a node checks to defend its own lease and to
    /// notice a store that went back in time.
    public func storedLease(subnet: IPv4Prefix) async throws -> (lease: RegisteredLease?, storeRevision: Int64) {
        let key = key(for: subnet)
        let (values, revision) = try await store.list(prefix: key)
        guard let stored = values.first(where: { $0.key == key }), case .success(let lease) = decode(key: key, value: stored.value) else {
            return (nil, revision)
        }
        return (RegisteredLease(lease: lease, storeLease: stored.lease, modRevision: stored.modRevision, createRevision: stored.createRevision),
                revision)
    }

    /// Extends a lease by its TTL. Throws `StoreError.leaseNotFound` if it already lapsed.
    public func renewLease(_ current: RegisteredLease) async throws -> RegisteredLease {
        let renewed = try await store.keepAlive(lease: current.storeLease)
        var lease = current
        lease.lease.expiration = renewed.expiration
        return lease
    }

    /// Removes a lease (an operator evicting a node that is gone). Returns whether it existed.
    public func deleteLease(subnet: IPv4Prefix) async throws -> Bool {
        try await store.delete(key(for: subnet))
    }

    /// Lease changes from `revision` on, as puts and deletes, each once and in revision
    /// order. `known` is what the caller holds as of `revision - 1`: when the history it
    /// needs was compacted away, the watch lists the store again and reports the difference
    /// from `known` as events. While the store is unreachable it retries with backoff and
    /// resumes where it stopped, so no change is lost or repeated.
    public func watchLeases(fromRevision revision: Int64, known: [Lease] = []) -> AsyncThrowingStream<LeaseWatchEvent, any Error> {
        watchLeases(fromRevision: revision, tracking: Dictionary(known.map { ($0.subnet, $0) }, uniquingKeysWith: { _, last in last }),
                    known: nil)
    }

    /// The same, for a caller that keeps the lease set itself (the daemon's supervisor does):
    /// `known` gives it as of the events delivered so far, and is asked only when the
    /// history was compacted, so the watch holds no second copy of every lease.
    public func watchLeases(fromRevision revision: Int64, known: @escaping @Sendable () -> [Lease]) -> AsyncThrowingStream<LeaseWatchEvent, any Error> {
        watchLeases(fromRevision: revision, tracking: nil, known: known)
    }

    private func watchLeases(fromRevision revision: Int64, tracking: [IPv4Prefix: Lease]?,
                             known: (@Sendable () -> [Lease])?) -> AsyncThrowingStream<LeaseWatchEvent, any Error> {
        let cursor = LeaseWatchCursor(registry: self, next: revision, tracking: tracking, known: known)
        return AsyncThrowingStream(unfolding: { try await cursor.next() })
    }

    fileprivate func translate(_ event: WatchEvent) -> LeaseWatchEvent? {
        switch event.kind {
        case .put:
            switch decode(key: event.key, value: event.value) {
            case .success(let lease):
                return .put(lease, revision: event.revision)
            case .failure(let problem):
                logger.warning("skipping unreadable lease", metadata: ["key": "\(event.key)", "reason": "\(problem.reason)"])
                return nil
            }
        case .delete:
            guard let subnet = SubnetKey.parse(event.key.dropFirst(subnetsPrefix.count)) else { return nil }
            return .delete(subnet, revision: event.revision)
        }
    }
}

/// A lease together with the store's handles on it.
public struct RegisteredLease: Sendable, Equatable {
    public var lease: Lease
    /// The store's TTL lease the key is attached to.
    public var storeLease: Int64
    /// The key's mod revision, for compare-and-swap.
    public var modRevision: Int64
    /// The revision the key was created at: the lease's age.
    public var createRevision: Int64

    /// A lease with no TTL: a reservation, kept until it is revoked; nothing renews it.
    public var isReservation: Bool { storeLease == 0 }

    public init(lease: Lease, storeLease: Int64, modRevision: Int64, createRevision: Int64) {
        self.lease = lease
        self.storeLease = storeLease
        self.modRevision = modRevision
        self.createRevision = createRevision
    }
}

/// All leases at one revision, and the keys that could not be read.
public struct LeaseListing: Sendable {
    public let leases: [RegisteredLease]
    public let skipped: [SkippedKey]
    public let revision: Int64
}

/// A key under the subnets prefix that is not a readable lease.
public struct SkippedKey: Error, Sendable, Equatable {
    public let key: String
    /// The subnet the key names, when its shape is right: still held, though unreadable.
    public let subnet: IPv4Prefix?
    public let reason: String
}

/// A change to the lease set.
public enum LeaseWatchEvent: Sendable, Equatable {
    case put(Lease, revision: Int64)
    case delete(IPv4Prefix, revision: Int64)
}

/// Where a lease watch stands: the next revision, the events read but not yet delivered,
/// and the store's stream. It is advanced by the consumer's own task (one `next` at a time),
/// so the watch has no task of its own and ends when its consumer stops.
private final class LeaseWatchCursor: @unchecked Sendable {
    let registry: SubnetRegistry
    var next: Int64
    /// The lease set as of the events delivered, when the watch keeps it itself.
    var tracking: [IPv4Prefix: Lease]?
    let known: (@Sendable () -> [Lease])?
    /// Read, not yet delivered; last first.
    var pending: [LeaseWatchEvent] = []
    var responses: AsyncThrowingStream<WatchResponse, any Error>.AsyncIterator?
    var delay = Duration.milliseconds(200)

    init(registry: SubnetRegistry, next: Int64, tracking: [IPv4Prefix: Lease]?, known: (@Sendable () -> [Lease])?) {
        self.registry = registry
        self.next = next
        self.tracking = tracking
        self.known = known
    }

    func next() async throws -> LeaseWatchEvent? {
        while !Task.isCancelled {
            if let event = pending.popLast() { return event }
            do {
                if responses == nil {
                    responses = registry.store.watch(prefix: registry.subnetsPrefix, fromRevision: next).makeAsyncIterator()
                }
                guard let response = try await responses?.next() else {
                    // The store's stream ended (it does after a compaction): watch again from `next`.
                    responses = nil
                    continue
                }
                delay = .milliseconds(200)
                switch response {
                case .events(let events, _):
                    var changes: [LeaseWatchEvent] = []
                    for event in events {
                        next = event.revision + 1
                        if let change = registry.translate(event) { changes.append(change) }
                    }
                    queue(changes)
                case .compacted:
                    let listing = try await registry.leases()
                    let diff = LeaseDiff(from: tracking.map { Array($0.values) } ?? known?() ?? [], to: listing.leases.map(\.lease))
                    registry.logger.notice("lease history was compacted; listed the store again",
                                           metadata: ["added": "\(diff.added.count)", "changed": "\(diff.changed.count)", "removed": "\(diff.removed.count)"])
                    queue((diff.added + diff.changed).map { .put($0, revision: listing.revision) }
                          + diff.removed.map { .delete($0, revision: listing.revision) })
                    next = listing.revision + 1
                    responses = nil
                }
            } catch let error as StoreError {
                guard case .unavailable = error else { throw error }
                registry.logger.warning("lease watch interrupted; resuming", metadata: ["from-revision": "\(next)", "error": "\(error)"])
                responses = nil
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(10))
            } catch is CancellationError {
                return nil
            }
        }
        return nil
    }

    private func queue(_ changes: [LeaseWatchEvent]) {
        for change in changes {
            switch change {
            case .put(let lease, _): tracking?[lease.subnet] = lease
            case .delete(let subnet, _): tracking?[subnet] = nil
            }
        }
        pending = changes.reversed()
    }
}
