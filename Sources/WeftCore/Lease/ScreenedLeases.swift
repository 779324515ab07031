/// The leases in the store that fail a check on their own (`PeerPlan.rejectionOnItsOwn`):
/// kept as their rejections, never as leases, and out of every plan. A store holding tens
/// of thousands of foreign or broken keys then costs an event for one of them a dictionary
/// update, not a plan of them all, and holds no lease value of theirs.
public struct ScreenedLeases: Sendable, Equatable {
    public private(set) var rejections: [IPv4Prefix: RejectedLease] = [:]

    public init() {}

    /// Records the lease's rejection, or forgets an earlier one when it has none now.
    /// Returns the rejection. This node's own lease is no peer's and never screened: the
    /// planner passes over it.
    @discardableResult
    public mutating func screen(_ peer: PeerLease, node: PlanningNode) -> RejectedLease? {
        guard peer.lease.subnet != node.subnet, let reason = PeerPlan.rejectionOnItsOwn(peer, node: node) else {
            rejections[peer.lease.subnet] = nil
            return nil
        }
        let rejection = RejectedLease(peer.lease, reason)
        rejections[peer.lease.subnet] = rejection
        return rejection
    }

    /// Forgets a deleted lease; true when it was screened out.
    @discardableResult
    public mutating func remove(_ subnet: IPv4Prefix) -> Bool {
        rejections.removeValue(forKey: subnet) != nil
    }

    public var count: Int { rejections.count }

    /// As stand-in leases, for a caller that diffs leases (a compaction's re-list): each
    /// differs from the stored value, so a screened lease still there is screened again,
    /// and one gone is reported deleted.
    public var placeholders: [Lease] {
        rejections.values.map { Lease(subnet: $0.subnet, attributes: .hostGateway(publicIP: $0.publicIP)) }
    }
}

/// Reporting that stays bounded whatever the input: `limit` reports in each `window`, and
/// a count of those held back, said with the next report admitted.
public struct ReportBudget: Sendable, Equatable {
    public let limit: Int
    public let window: Duration
    private var windowStart: ContinuousClock.Instant?
    private var sent = 0
    /// Held back since the last report admitted.
    public private(set) var heldBack = 0

    public init(limit: Int, window: Duration) {
        self.limit = limit
        self.window = window
    }

    /// Whether a report may go out at `now`; when it may, how many were held back before it.
    public mutating func admit(at now: ContinuousClock.Instant) -> (admitted: Bool, heldBack: Int) {
        if windowStart.map({ now - $0 >= window }) ?? true {
            windowStart = now
            sent = 0
        }
        guard sent < limit else {
            heldBack += 1
            return (false, 0)
        }
        sent += 1
        defer { heldBack = 0 }
        return (true, heldBack)
    }
}
