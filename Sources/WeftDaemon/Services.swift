import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WeftCore
import WeftDataplane
import WeftStore

/// Runs the dataplane supervisor on a thread of its own (netlink waits block) until the
/// daemon shuts down; the dataplane itself stays in place.
struct SupervisorService: Service {
    let supervisor: DataplaneSupervisor
    let state: DaemonState

    func run() async throws {
        let stop = StopFlag()
        let finished = AsyncStream<any Error>.makeStream()
        let thread = Thread { [supervisor] in
            do {
                try supervisor.run { stop.isRaised }
            } catch {
                finished.continuation.yield(error)
            }
            finished.continuation.finish()
        }
        thread.start()
        try await withGracefulShutdownHandler {
            for await error in finished.stream { throw error }
        } onGracefulShutdown: {
            stop.raise()
        }
    }
}

final class StopFlag: Sendable {
    private let raised = Atomic(false)
    var isRaised: Bool { raised.load(ordering: .relaxed) }
    func raise() { raised.store(true, ordering: .relaxed) }
}

/// The node's lease: follows every peer's lease into the dataplane, renews ours ahead of
/// expiry, and takes it back (the same subnet when free) if it is lost, without touching
/// the dataplane. While the store is unreachable it retries with backoff.
struct LeaseService: Service {
    let registry: SubnetRegistry
    let acquirer: LeaseAcquirer
    let own: RegisteredLease
    let attributes: LeaseAttributes
    let startRevision: Int64
    let peers: [Lease]
    let renewMargin: Duration
    let supervisor: DataplaneSupervisor
    let state: DaemonState
    let logger: Logger

    private final class Shared: Sendable {
        let lease: Mutex<RegisteredLease>
        init(_ lease: RegisteredLease) { self.lease = Mutex(lease) }
    }

    func run() async throws {
        let shared = Shared(own)
        try await cancelWhenGracefulShutdown {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await watch(shared) }
                group.addTask { try await renew(shared) }
                try await group.next()
                group.cancelAll()
            }
        }
    }

    private func watch(_ shared: Shared) async throws {
        var known = Dictionary(uniqueKeysWithValues: peers.map { ($0.subnet, $0) })
        var revision = startRevision
        var delay = Duration.milliseconds(500)
        while !Task.isCancelled {
            do {
                let ownLease = shared.lease.withLock { $0.lease }
                for try await event in registry.watchLeases(fromRevision: revision, known: Array(known.values) + [ownLease]) {
                    delay = .milliseconds(500)
                    let ownSubnet = shared.lease.withLock { $0.lease.subnet }
                    switch event {
                    case .put(let lease, let at):
                        revision = at + 1
                        if lease.subnet == ownSubnet { continue }
                        known[lease.subnet] = lease
                    case .delete(let subnet, let at):
                        revision = at + 1
                        if subnet == ownSubnet {
                            logger.warning("our lease was deleted; taking it back", metadata: ["subnet": "\(subnet)"])
                            try await reacquire(shared)
                            continue
                        }
                        known[subnet] = nil
                    }
                    let current = Array(known.values)
                    supervisor.update(peers: current)
                    state.update {
                        $0.peers = current
                        $0.leaseEvents += 1
                        $0.applies += 1
                    }
                    logger.info("lease change", metadata: ["event": "\(event.summary)", "peers": "\(current.count)"])
                }
            } catch is CancellationError {
                return
            } catch {
                logger.warning("lease watch failed; retrying", metadata: ["error": "\(error)", "retry-in": "\(delay)"])
                state.update { $0.lastError = "lease watch: \(error)" }
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(30))
            }
        }
    }

    private func renew(_ shared: Shared) async throws {
        while !Task.isCancelled {
            let expiration = shared.lease.withLock { $0.lease.expiration } ?? Date().addingTimeInterval(60)
            let margin = Double(renewMargin.components.seconds)
            let wait = max(1, expiration.timeIntervalSinceNow - margin)
            try await Task.sleep(for: .seconds(wait))
            do {
                let renewed = try await registry.renewLease(shared.lease.withLock { $0 })
                shared.lease.withLock { $0 = renewed }
                state.update { $0.leaseExpiration = renewed.lease.expiration }
                logger.info("renewed our lease", metadata: ["subnet": "\(renewed.lease.subnet)", "expires": "\(renewed.lease.expiration.map { "\($0)" } ?? "never")"])
            } catch StoreError.leaseNotFound {
                logger.warning("our lease expired before it was renewed; taking it back")
                try await reacquire(shared)
            } catch let error as StoreError {
                logger.warning("could not renew our lease; retrying in 5 s", metadata: ["error": "\(error)"])
                try await Task.sleep(for: .seconds(5))
            }
        }
    }

    /// Takes the lease back, asking for the same subnet. A different subnet would change
    /// every pod's addresses: that is a restart, not something to do under running pods.
    private func reacquire(_ shared: Shared) async throws {
        let previous = shared.lease.withLock { $0.lease.subnet }
        let lease = try await acquirer.acquire(attributes: attributes, previousSubnet: previous)
        shared.lease.withLock { $0 = lease }
        state.update {
            $0.leaseExpiration = lease.lease.expiration
            $0.leaseEvents += 1
        }
        guard lease.lease.subnet == previous else {
            throw DaemonError("our lease for \(previous) was lost and the store gave \(lease.lease.subnet) instead; restart the node so its pods move to the new subnet")
        }
        logger.notice("took our lease back", metadata: ["subnet": "\(previous)"])
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
