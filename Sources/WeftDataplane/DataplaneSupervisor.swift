import Foundation
import Logging
import Synchronization
import WeftCore
import WeftNetlink

/// The reconciler: keeps a dataplane holding the plan for the node's peers while the leases
/// and the host network change under it. It owns the peer set. A lease change wakes it at
/// once and costs one plan and one apply of what differs, however many events came
/// together; a change of link, address, route, neighbour or TC filter in the namespace (and
/// a slow timer) makes it check everything `setUp` made and put back what is missing,
/// logging each repair. Flannel re-checks host-gw routes only; this covers both dataplanes
/// and every entry.
///
/// The dataplane is used from the thread that calls `run` (or `reconcile`) only; other
/// threads change the peers with `put`, `remove` or `replace`, and end `run` with `stop`.
public final class DataplaneSupervisor: @unchecked Sendable {
    public let dataplane: any Dataplane
    private let pending: Mutex<(peers: PeerSet, changed: Bool, stopped: Bool)>
    private let wakeup = Wakeup()
    private let interval: Duration
    private let logger: Logger
    private let observer: @Sendable (Observation) -> Void
    /// The rejections last logged, so a standing one is logged once (only `run`'s thread touches it).
    private var loggedRejections: [RejectedLease] = []
    /// The plan the dataplane holds, when the last apply succeeded: a lease change then
    /// costs only its difference. Nil forces the next apply to read the kernel.
    private var applied: PeerPlan?

    /// What the supervisor did, for the daemon's state and metrics.
    public enum Observation: Sendable {
        /// A plan was applied: what changed, the plan, and how long it took.
        case applied(ApplyReport, PeerPlan, seconds: Double)
        case repaired(count: Int)
        /// A task failed; the dataplane is not as planned until the same task succeeds (a
        /// successful peer apply says nothing of the netfilter rules, say).
        case failed(Work, String)
        /// The task worked, so its last failure no longer holds.
        case succeeded(Work)
    }

    /// What the supervisor keeps doing, each failing and recovering on its own.
    public enum Work: String, Sendable, CaseIterable {
        case applyPeers = "apply the new peers"
        case repair = "repair the dataplane"
        case rules = "keep the netfilter rules"
    }

    private let makeChanges: @Sendable () throws -> any NamespaceChanges
    /// The netfilter rules (masquerade, forward, underlay guard), checked every `rulesInterval`: netlink says nothing
    /// of netfilter, so a timer (flanneld's `--iptables-resync`) is all that notices a flush.
    private let rules: (any RuleKeeper)?
    private let rulesInterval: Duration
    /// The direct peers of the last plan, which the underlay guard lets in (only `run`'s thread touches it).
    private var directPeers: [IPv4Prefix: IPv4Address]?

    /// - Parameter changes: what tells the supervisor the host network changed; netlink by default.
    public init(dataplane: any Dataplane, peers: PeerSet, interval: Duration = .seconds(2), logger: Logger,
                rules: (any RuleKeeper)? = nil, rulesInterval: Duration = .seconds(5),
                changes: @escaping @Sendable () throws -> any NamespaceChanges = { try NetlinkNamespaceChanges() },
                observer: @escaping @Sendable (Observation) -> Void = { _ in }) {
        self.dataplane = dataplane
        self.rules = rules
        self.rulesInterval = rulesInterval
        makeChanges = changes
        pending = Mutex((peers, false, false))
        self.interval = interval
        self.logger = logger
        self.observer = observer
    }

    // MARK: Changes from other threads

    /// A lease created or changed at `revision`.
    public func put(_ lease: Lease, revision: Int64) {
        change { $0.put(lease, revision: revision) }
    }

    public func remove(_ subnet: IPv4Prefix) {
        change { $0.remove(subnet) }
    }

    /// Every lease at once (after the store was listed again).
    public func replace(_ peers: PeerSet) {
        change { $0 = peers }
    }

    /// The leases as the supervisor holds them now.
    public var peers: PeerSet { pending.withLock { $0.peers } }

    /// Ends `run` within a moment.
    public func stop() {
        pending.withLock { $0.stopped = true }
        wakeup.signal()
    }

    private func change(_ body: (inout PeerSet) -> Void) {
        pending.withLock { state in
            body(&state.peers)
            state.changed = true
        }
        wakeup.signal()
    }

    // MARK: The loop

    /// Plans the peers and applies the plan: the difference from the last plan applied, or
    /// (`againstKernel`) against what the kernel holds. Returns what changed.
    @discardableResult
    public func applyPeers(againstKernel: Bool = false) throws -> ApplyReport {
        let (peers, _) = pending.withLock { state in
            defer { state.changed = false }
            return (state.peers, state.changed)
        }
        let start = ContinuousClock.now
        let previous = againstKernel ? nil : applied
        applied = nil
        let plan = try dataplane.plan(peers: peers.leases)
        let report = try dataplane.apply(plan, since: previous)
        applied = plan
        if rules != nil, plan.directRoutes != directPeers {
            // At once, not at the next rules check: the guard drops a new peer's traffic until then.
            directPeers = plan.directRoutes
            attempt(.rules) {
                let changes = try rules!.ensure(directPeers: directPeers)
                if !changes.isEmpty { logger.info("updated the netfilter rules for the direct peers", metadata: ["changes": "\(changes.joined(separator: "; "))"]) }
            }
        }
        let elapsed = ContinuousClock.now - start
        for rejection in RejectedLease.newlyRejected(plan.rejected, since: loggedRejections) {
            logger.warning("rejected a lease; it is not programmed", metadata: [
                "subnet": "\(rejection.subnet)", "public-ip": "\(rejection.publicIP)", "reason": "\(rejection.reason)",
            ])
        }
        loggedRejections = plan.rejected
        observer(.applied(report, plan, seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))
        return report
    }

    /// One full pass: repair what `setUp` made, then apply the plan. Returns what had to change.
    @discardableResult
    public func reconcile() throws -> [String] {
        var repairs = try dataplane.repair()
        let report = try applyPeers(againstKernel: true)
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

    /// Watches and repairs until `stop()`. It sleeps until a lease change, a change in the
    /// namespace or the timer; a failed pass is logged and retried on the next one.
    public func run() throws {
        let events = try makeChanges()
        let clock = ContinuousClock()
        // A burst of namespace changes (our own repairs among them) settles for this long
        // before the one full pass it causes.
        let settle = Duration.milliseconds(100)
        var nextFullPass = clock.now + interval
        var nextRulesCheck = clock.now + rulesInterval
        var namespaceChanged = false
        while true {
            var until = namespaceChanged ? min(nextFullPass, clock.now + settle) : nextFullPass
            if rules != nil { until = min(until, nextRulesCheck) }
            let namespaceChangedNow = try events.wait(timeoutMilliseconds: Self.milliseconds(until - clock.now), wake: wakeup.descriptor)
            wakeup.drain()
            let (changed, stopped) = pending.withLock { ($0.changed, $0.stopped) }
            if stopped { return }
            if changed {
                attempt(.applyPeers) { try applyPeers() }
            }
            if clock.now >= nextRulesCheck {
                nextRulesCheck = clock.now + rulesInterval
                attempt(.rules) { try checkRules() }
            }
            if namespaceChangedNow {
                namespaceChanged = true
                continue
            }
            if namespaceChanged || clock.now >= nextFullPass {
                namespaceChanged = false
                nextFullPass = clock.now + interval
                attempt(.repair) { try reconcile() }
            }
        }
    }

    /// Puts back the masquerade, forward and underlay rules where they differ; returns what it changed.
    @discardableResult
    public func checkRules() throws -> [String] {
        guard let rules else { return [] }
        let repairs = try rules.ensure(directPeers: directPeers)
        if !repairs.isEmpty { observer(.repaired(count: repairs.count)) }
        for repair in repairs {
            logger.notice("repaired the dataplane", metadata: ["repair": "\(repair)", "mode": "\(dataplane.mode.rawValue)"])
        }
        return repairs
    }

    private func attempt(_ task: Work, _ body: () throws -> Void) {
        do {
            try body()
            observer(.succeeded(task))
        } catch {
            logger.error("could not \(task.rawValue); retrying on the next pass", metadata: ["error": "\(error)"])
            observer(.failed(task, "could not \(task.rawValue): \(error)"))
        }
    }

    private static func milliseconds(_ duration: Duration) -> Int32 {
        let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        return Int32(clamping: max(0, milliseconds))
    }
}

/// A pipe that wakes a thread blocked in `poll`: `signal` from anywhere, `drain` after waking.
final class Wakeup: Sendable {
    let descriptor: Int32
    private let writeEnd: Int32

    init() {
        var ends: [Int32] = [-1, -1]
        precondition(pipe(&ends) == 0, "cannot create a pipe: \(String(cString: strerror(errno)))")
        for end in ends {
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
        descriptor = ends[0]
        writeEnd = ends[1]
    }

    deinit {
        close(descriptor)
        close(writeEnd)
    }

    func signal() {
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)  // a full pipe already wakes the reader
    }

    func drain() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(descriptor, &buffer, buffer.count) > 0 {}
    }
}
