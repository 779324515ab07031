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
    private let pending: Mutex<Pending>
    /// What other threads hand the supervisor's thread.
    private struct Pending {
        /// The leases the planner sees.
        var peers = PeerSet()
        /// The leases rejected on their own merits, which no plan sees.
        var screened = ScreenedLeases()
        var changed = false
        var stopped = false
        /// At most 20 lease rejections logged a minute: a store full of junk keys writes no
        /// line for each (`weft status` lists them).
        var rejectionReports = ReportBudget(limit: 20, window: .seconds(60))
    }
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
        /// A lease was rejected on its own merits (`PeerPlan.rejectionOnItsOwn`), or (nil) no
        /// longer is: it changed, or went.
        case screened(IPv4Prefix, RejectedLease?)
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
        var initial = Pending()
        for peer in peers.leases {
            if initial.screened.screen(peer, node: dataplane.settings.planning) == nil { initial.peers.put(peer.lease, revision: peer.since) }
        }
        let screened = initial.screened.rejections.values.sorted { $0.subnet < $1.subnet }
        var reports = initial.rejectionReports
        pending = Mutex(initial)
        self.interval = interval
        self.logger = logger
        self.observer = observer
        // The leases screened out of the first listing are reported as later ones are.
        for rejection in screened {
            observer(.screened(rejection.subnet, rejection))
            let report = reports.admit(at: .now)
            if report.admitted { logRejection(rejection, heldBack: report.heldBack) }
        }
        pending.withLock { $0.rejectionReports = reports }
    }

    // MARK: Changes from other threads

    /// A lease created or changed at `revision`. One rejected on its own merits is screened
    /// out: it wakes no plan unless it replaces a lease that was planned.
    public func put(_ lease: Lease, revision: Int64) {
        let node = dataplane.settings.planning
        let (planChanged, screening, before) = pending.withLock { state -> (Bool, RejectedLease?, RejectedLease?) in
            let peer = PeerLease(lease, since: state.peers.entries[lease.subnet]?.since ?? revision)
            let before = state.screened.rejections[lease.subnet]
            if let rejection = state.screened.screen(peer, node: node) {
                let wasPlanned = state.peers.remove(lease.subnet) != nil
                state.changed = state.changed || wasPlanned
                return (wasPlanned, rejection, before)
            }
            state.peers.put(lease, revision: revision)
            state.changed = true
            return (true, nil, before)
        }
        if let screening, screening != before {
            // New, or rejected for another reason: reported once; a renewal of it is not news.
            observer(.screened(lease.subnet, screening))
            let report = pending.withLock { $0.rejectionReports.admit(at: .now) }
            if report.admitted { logRejection(screening, heldBack: report.heldBack) }
        } else if screening == nil, before != nil {
            observer(.screened(lease.subnet, nil))
        }
        if planChanged { wakeup.signal() }
    }

    public func remove(_ subnet: IPv4Prefix) {
        let wasScreened = pending.withLock { state in
            if state.screened.remove(subnet) { return true }
            state.peers.remove(subnet)
            state.changed = true
            return false
        }
        if wasScreened { observer(.screened(subnet, nil)) } else { wakeup.signal() }
    }

    /// Every lease at once (after the store was listed again).
    public func replace(_ peers: PeerSet) {
        let node = dataplane.settings.planning
        let (before, after) = pending.withLock { state -> ([IPv4Prefix: RejectedLease], [IPv4Prefix: RejectedLease]) in
            let before = state.screened.rejections
            state.peers = PeerSet()
            state.screened = ScreenedLeases()
            for peer in peers.leases where state.screened.screen(peer, node: node) == nil {
                state.peers.put(peer.lease, revision: peer.since)
            }
            state.changed = true
            return (before, state.screened.rejections)
        }
        for subnet in before.keys where after[subnet] == nil { observer(.screened(subnet, nil)) }
        for (subnet, rejection) in after where before[subnet] != rejection { observer(.screened(subnet, rejection)) }
        wakeup.signal()
    }

    /// The leases the planner sees, as the supervisor holds them now.
    public var peers: PeerSet { pending.withLock { $0.peers } }

    /// Stand-ins for the leases screened out (`ScreenedLeases.placeholders`), for a re-list's diff.
    public var screenedPlaceholders: [Lease] { pending.withLock { $0.screened.placeholders } }

    private func logRejection(_ rejection: RejectedLease, heldBack: Int) {
        if heldBack > 0 {
            logger.warning("held back lease rejections from the log (at most 20 a minute); weft status lists every one", metadata: ["held-back": "\(heldBack)"])
        }
        logger.warning("rejected a lease; it is not programmed", metadata: [
            "subnet": "\(rejection.subnet)", "public-ip": "\(rejection.publicIP)", "reason": "\(rejection.reason)",
        ])
    }

    /// Ends `run` within a moment.
    public func stop() {
        pending.withLock { $0.stopped = true }
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
            let report = pending.withLock { $0.rejectionReports.admit(at: .now) }
            if report.admitted { logRejection(rejection, heldBack: report.heldBack) }
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
        var nextLook = clock.now + .seconds(1)
        var namespaceChanged = false
        while true {
            var until = namespaceChanged ? min(nextFullPass, clock.now + settle) : min(nextFullPass, nextLook)
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
            if clock.now >= nextLook {
                nextLook = clock.now + .seconds(1)
                if let missing = dataplane.missingWithoutNotice() {
                    // Nothing announces it: not ready until the pass that follows puts it back.
                    observer(.failed(.repair, missing))
                    nextFullPass = clock.now
                }
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
