import CNetlink
import Foundation
import Logging
import Synchronization
import WeftCore
import WeftNetlink

/// Keeps a dataplane the way it belongs while the host network changes under it: on every
/// link, address, route, neighbour or TC change in the namespace, and on a timer as well,
/// it repairs what `setUp` made and re-applies the peers, logging each repair. Flannel
/// re-checks host-gw routes only; this covers both dataplanes and every entry.
///
/// The dataplane is used from the thread that calls `run` (or `reconcile`) only; other
/// threads hand over new peers with `update(peers:)`, which the loop applies within 200 ms.
public final class DataplaneSupervisor: @unchecked Sendable {
    public let dataplane: any Dataplane
    private let peers: Mutex<(leases: [Lease], changed: Bool)>
    private let interval: Duration
    private let logger: Logger
    private let observer: @Sendable (Observation) -> Void

    /// What the supervisor did, for metrics.
    public enum Observation: Sendable {
        case applied(ApplyReport, seconds: Double)
        case repaired(count: Int)
    }

    public init(dataplane: any Dataplane, peers: [Lease], interval: Duration = .seconds(2), logger: Logger,
                observer: @escaping @Sendable (Observation) -> Void = { _ in }) {
        self.dataplane = dataplane
        self.peers = Mutex((peers, false))
        self.interval = interval
        self.logger = logger
        self.observer = observer
    }

    /// The peers to hold from now on.
    public func update(peers newPeers: [Lease]) {
        peers.withLock { $0 = (newPeers, true) }
    }

    /// One pass: repair, then re-apply the peers. Returns what had to change.
    @discardableResult
    public func reconcile() throws -> [String] {
        var repairs = try dataplane.repair()
        let report = try dataplane.apply(peers: peers.withLock { $0.leases })
        if report.peersWritten + report.routesWritten > 0 {
            repairs.append("rewrote \(report.peersWritten) peer entries and \(report.routesWritten) routes")
        }
        if report.peersRemoved + report.routesRemoved > 0 {
            repairs.append("removed \(report.peersRemoved) stale peer entries and \(report.routesRemoved) routes")
        }
        if !repairs.isEmpty { observer(.repaired(count: repairs.count)) }
        for repair in repairs {
            logger.notice("repaired the dataplane", metadata: ["repair": "\(repair)", "mode": "\(dataplane.mode.rawValue)"])
        }
        return repairs
    }

    /// Watches and repairs until `shouldStop` says so (checked at least every 200 ms).
    /// A failed pass is logged and retried on the next change or tick.
    public func run(shouldStop: () -> Bool) throws {
        let groups = [RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV4_ROUTE, RTNLGRP_NEIGH, RTNLGRP_TC].map { UInt32($0.rawValue) }
        let events = try NetlinkSocket(groups: groups)
        let clock = ContinuousClock()
        var nextTick = clock.now + interval
        var pending = false
        while !shouldStop() {
            let (changes, overrun) = try events.waitForChanges(timeoutMilliseconds: 200)
            if changes > 0 || overrun { pending = true }
            if peers.withLock({ state in defer { state.changed = false }; return state.changed }) {
                do {
                    let start = ContinuousClock.now
                    let report = try dataplane.apply(peers: peers.withLock { $0.leases })
                    let elapsed = ContinuousClock.now - start
                    observer(.applied(report, seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))
                    logger.debug("peers updated", metadata: ["written": "\(report.peersWritten)", "removed": "\(report.peersRemoved)"])
                } catch {
                    logger.error("could not apply the new peers; retrying on the next pass", metadata: ["error": "\(error)"])
                }
            }
            // Let a burst of changes settle, then make one pass.
            if pending && changes == 0 || clock.now >= nextTick {
                pending = false
                nextTick = clock.now + interval
                do {
                    try reconcile()
                } catch {
                    logger.error("could not repair the dataplane; retrying", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
