import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WeftCore
import WeftDataplane
import WeftStore

/// The node's lease, defended: follows every peer's lease into the supervisor, renews ours
/// ahead of expiry, and checks what the store holds for us on every renewal, every watch
/// event for our key and every few seconds. A deleted key is re-created at once with the
/// same subnet; a key another writer changed gets ours back, with a warning naming what was
/// there; a store that went back in time (restored or wiped) is listed again and watched
/// from its new revision. Store failures never touch the dataplane: they make `/readyz`
/// false with the reason, and everything is retried with one policy, `StoreRetry`.
struct LeaseService: Service {
    let registry: SubnetRegistry
    let acquirer: LeaseAcquirer
    let own: RegisteredLease
    /// What we advertise; the store must hold exactly this under our key.
    let attributes: LeaseAttributes
    let hostAddresses: Set<IPv4Address>
    /// The revision the peers were listed at.
    let listedRevision: Int64
    let renewMargin: Duration
    let checkInterval: Duration
    let supervisor: DataplaneSupervisor
    let state: DaemonState
    let logger: Logger

    /// What the three loops share.
    private final class Shared: Sendable {
        let lease: Mutex<RegisteredLease>
        let history: Mutex<StoreHistory>
        /// The revision of the last lease event the watch delivered: a new watch starts
        /// after it, never after a revision a read saw (that would skip events in between).
        let delivered: Mutex<Int64>
        /// Peers' lease deletions seen: every thousandth returns freed heap to the kernel.
        let peerDeletes = Mutex(0)
        /// Ends the current watch, so the next one starts after `delivered`.
        let restartWatch = Mutex<AsyncStream<Void>.Continuation?>(nil)

        init(_ lease: RegisteredLease, revision: Int64) {
            self.lease = Mutex(lease)
            history = Mutex(StoreHistory(revision: revision))
            delivered = Mutex(revision)
        }
    }

    func run() async throws {
        let shared = Shared(own, revision: listedRevision)
        do {
            try await cancellingOnShutdown {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await watch(shared) }
                    group.addTask { try await renew(shared) }
                    group.addTask { try await check(shared) }
                    try await group.next()
                    group.cancelAll()
                }
            }
        } catch is CancellationError {
            // Shutdown: the loops end at their next wait.
        }
    }

    // MARK: Watch

    private func watch(_ shared: Shared) async throws {
        while !Task.isCancelled {
            let (restart, trigger) = AsyncStream<Void>.makeStream()
            shared.restartWatch.withLock { $0 = trigger }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await follow(shared) }
                group.addTask { for await _ in restart { return } }
                try await group.next()
                group.cancelAll()
            }
        }
    }

    /// Follows the store from after the last delivered event until cancelled.
    private func follow(_ shared: Shared) async throws {
        var retry = StoreRetry()
        while true {
            do {
                let from = shared.delivered.withLock { $0 } + 1
                let supervisor = self.supervisor
                let ownSubnet = shared.lease.withLock { $0.lease.subnet }
                let ownLease = attributes
                // The supervisor holds the peers; ours is known too, so a compaction diff does not re-announce it.
                let known: @Sendable () -> [Lease] = {
                    supervisor.peers.leases.map(\.lease) + supervisor.screenedPlaceholders + [Lease(subnet: ownSubnet, attributes: ownLease)]
                }
                for try await event in registry.watchLeases(fromRevision: from, known: known) {
                    retry.succeeded()
                    try await handle(event, shared)
                }
                try Task.checkCancellation()
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                try await retry.wait(after: error, "follow the leases", logger: logger, state: state)
            }
        }
    }

    private func handle(_ event: LeaseWatchEvent, _ shared: Shared) async throws {
        let ours = shared.lease.withLock { $0 }
        switch event {
        case .put(let lease, let revision):
            shared.history.withLock { $0.observe(event: revision) }
            shared.delivered.withLock { $0 = max($0, revision) }
            if lease.subnet == ours.lease.subnet {
                try await defend(shared, found: lease.attributes, modRevision: revision)
            } else {
                supervisor.put(lease, revision: revision)
            }
        case .delete(let subnet, let revision):
            shared.history.withLock { $0.observe(event: revision) }
            shared.delivered.withLock { $0 = max($0, revision) }
            if subnet == ours.lease.subnet {
                logger.warning("our lease was deleted; re-creating it", metadata: ["subnet": "\(subnet)"])
                try await reacquire(shared)
            } else {
                supervisor.remove(subnet)
                // A store emptied of many keys: the heap they took goes back to the kernel.
                if shared.peerDeletes.withLock({ $0 += 1; return $0 }) % 1000 == 0 { ProcessMemory.returnFreedPages() }
            }
        }
        state.update { $0.leaseEvents += 1 }
        if case .delete = event { state.metrics.recordLeaseEvent("delete") } else { state.metrics.recordLeaseEvent("put") }
        logger.debug("lease change", metadata: ["event": "\(event.summary)"])
    }

    // MARK: Renew and check

    private func renew(_ shared: Shared) async throws {
        var retry = StoreRetry()
        while true {
            let current = shared.lease.withLock { $0 }
            // A reservation never expires: nothing to renew, and the check loop still defends it.
            if current.isReservation {
                try await Task.sleep(for: .seconds(3600))
                continue
            }
            let expiration = current.lease.expiration ?? Date().addingTimeInterval(60)
            let wait = max(1, expiration.timeIntervalSinceNow - Double(renewMargin.components.seconds))
            try await Task.sleep(for: .seconds(wait))
            do {
                // Renewing a key another writer changed would keep their value alive: check first.
                try await verify(shared)
                let renewed = try await registry.renewLease(shared.lease.withLock { $0 })
                shared.lease.withLock { $0 = renewed }
                state.update {
                    $0.leaseExpiration = renewed.lease.expiration
                    $0.storeProblem = nil
                }
                retry.succeeded()
                logger.info("renewed our lease", metadata: ["subnet": "\(renewed.lease.subnet)", "expires": "\(renewed.lease.expiration.map { "\($0)" } ?? "never")"])
            } catch StoreError.leaseNotFound {
                logger.warning("our lease expired before it was renewed; re-creating it")
                try await reacquire(shared)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                try await retry.wait(after: error, "renew our lease", logger: logger, state: state)
            }
        }
    }

    /// Every `checkInterval`: our key as the store holds it, and the store's revision.
    private func check(_ shared: Shared) async throws {
        var retry = StoreRetry()
        while true {
            try await Task.sleep(for: checkInterval)
            do {
                try await verify(shared)
                retry.succeeded()
                state.update { $0.storeProblem = nil }
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                try await retry.wait(after: error, "check our lease", logger: logger, state: state)
            }
        }
    }

    /// Reads our key back and acts on what is there.
    private func verify(_ shared: Shared) async throws {
        let subnet = shared.lease.withLock { $0.lease.subnet }
        let (stored, storeRevision) = try await registry.storedLease(subnet: subnet)
        if shared.history.withLock({ $0.observe(current: storeRevision) }) {
            try await resync(shared, storeRevision: storeRevision)
            return
        }
        switch OwnLeaseVerdict.judge(ours: attributes, stored: stored?.lease.attributes) {
        case .intact:
            if let stored { shared.lease.withLock { $0.modRevision = stored.modRevision } }
        case .missing:
            logger.warning("our lease is missing from the store; re-creating it", metadata: ["subnet": "\(subnet)"])
            try await reacquire(shared)
        case .overwritten(let found):
            try await defend(shared, found: found, modRevision: stored?.modRevision ?? 0)
        }
    }

    /// Writes our lease back over what another writer put under our key.
    private func defend(_ shared: Shared, found: LeaseAttributes, modRevision: Int64) async throws {
        guard case .overwritten = OwnLeaseVerdict.judge(ours: attributes, stored: found) else { return }
        let current = shared.lease.withLock { $0 }
        logger.warning("another writer changed our lease; writing ours back", metadata: [
            "subnet": "\(current.lease.subnet)", "found": "\(found.summary)", "ours": "\(attributes.summary)",
        ])
        var overwritten = current
        overwritten.modRevision = modRevision
        if let restored = try await registry.replaceLease(overwritten, attributes: attributes, ttlSeconds: acquirer.ttlSeconds) {
            shared.lease.withLock { $0 = restored }
            state.update {
                $0.leaseExpiration = restored.lease.expiration
                $0.leaseDefended += 1
            }
        }
        // Nil: it changed again meanwhile; the next event or check sees the newest value.
    }

    /// Takes the lease back with the same subnet. A different subnet would change every
    /// pod's address: that needs a restart, never a change under running pods.
    private func reacquire(_ shared: Shared) async throws {
        let previous = shared.lease.withLock { $0.lease.subnet }
        let lease = try await acquirer.acquire(attributes: attributes, previousSubnet: previous, hostAddresses: hostAddresses)
        shared.lease.withLock { $0 = lease }
        state.update {
            $0.leaseExpiration = lease.lease.expiration
            $0.leaseDefended += 1
        }
        guard lease.lease.subnet == previous else {
            throw DaemonError("our lease for \(previous) was lost and the store gave \(lease.lease.subnet) instead; restart the node so its pods move to the new subnet")
        }
        logger.notice("re-created our lease", metadata: ["subnet": "\(previous)"])
    }

    /// The store went back in time: list it again, put our lease back, and watch from its
    /// new revision.
    private func resync(_ shared: Shared, storeRevision: Int64) async throws {
        let seen = shared.history.withLock { $0.highestRevision }
        logger.warning("the lease store went back in time (restored from a snapshot, or wiped); listing it again", metadata: [
            "seen-revision": "\(seen)", "store-revision": "\(storeRevision)",
        ])
        let listing = try await registry.leases()
        shared.history.withLock { $0.restart(at: listing.revision) }
        shared.delivered.withLock { $0 = listing.revision }
        supervisor.replace(PeerSet(listing.leases.map { PeerLease($0.lease, since: $0.createRevision) }))
        let ownSubnet = shared.lease.withLock { $0.lease.subnet }
        switch OwnLeaseVerdict.judge(ours: attributes, stored: listing.leases.first { $0.lease.subnet == ownSubnet }?.lease.attributes) {
        case .intact: break
        case .missing: try await reacquire(shared)
        case .overwritten(let found):
            let modRevision = listing.leases.first { $0.lease.subnet == ownSubnet }?.modRevision ?? 0
            try await defend(shared, found: found, modRevision: modRevision)
        }
        state.update { $0.storeResyncs += 1 }
        _ = shared.restartWatch.withLock { $0?.yield() }
    }
}

extension LeaseWatchEvent {
    var summary: String {
        switch self {
        case .put(let lease, _): "put \(lease.subnet) at \(lease.attributes.publicIP)"
        case .delete(let subnet, _): "delete \(subnet)"
        }
    }
}
