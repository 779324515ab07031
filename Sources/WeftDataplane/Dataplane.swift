import WeftCore

/// What the node daemon drives: a dataplane that connects this node's pods to the
/// peers' subnets. Two implementations: the TC eBPF programs (`BPFDataplane`) and, where
/// those cannot run, the kernel programmed as Flannel programs it.
public protocol Dataplane: AnyObject {
    var mode: DataplaneMode { get }
    var settings: NodeSettings { get }

    /// Creates what the node needs, or adopts what an earlier process left: devices,
    /// programs, attachments. Never flushes what peers already reach.
    func setUp() throws

    /// The connected networks of the underlay interface: what the planner needs to know
    /// of the node's links (host-gw and DirectRouting peers must be on one).
    func underlayNetworks() throws -> [IPv4Prefix]

    /// Makes the dataplane hold exactly the plan's paths, changing only what differs. With
    /// `previous`, the plan this dataplane last applied, it writes the difference between
    /// the two without reading the kernel: work in proportion to the change. Without, it
    /// reads what the kernel holds and compares. It decides nothing: every check on the
    /// leases is the planner's.
    @discardableResult
    func apply(_ plan: PeerPlan, since previous: PeerPlan?) throws -> ApplyReport

    /// Checks what `setUp` made and puts back whatever is missing or wrong (a deleted
    /// device, a lost address, a removed filter). Returns what it repaired; cheap enough
    /// to run every few seconds.
    func repair() throws -> [String]

    /// Removes everything this dataplane created on the node.
    func tearDown() throws

    /// What a look costing a few `stat`s finds missing that no netlink event announces
    /// (deleted pins, say), or nil: the supervisor looks every second and repairs at once.
    func missingWithoutNotice() -> String?
}

extension Dataplane {
    public func missingWithoutNotice() -> String? { nil }
}

extension Dataplane {
    /// Applies `plan` against what the kernel holds.
    @discardableResult
    public func apply(_ plan: PeerPlan) throws -> ApplyReport {
        try apply(plan, since: nil)
    }

    /// The plan for `peers` on this node and its underlay as they are now.
    public func plan(peers: some Sequence<PeerLease>) throws -> PeerPlan {
        PeerPlan(node: settings.planning, peers: peers, onLinkNetworks: try underlayNetworks())
    }
}

/// What one `apply` changed.
public struct ApplyReport: Sendable, Equatable {
    public var peersWritten = 0
    public var peersRemoved = 0
    public var routesWritten = 0
    public var routesRemoved = 0

    public init() {}

    public var changedSomething: Bool {
        peersWritten + peersRemoved + routesWritten + routesRemoved > 0
    }
}

/// A failure a user can act on, before any syscall error.
public struct DataplaneError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }

    static func missingInterface(_ name: String, available: [String]) -> DataplaneError {
        DataplaneError("interface \(name) not found; this network namespace has: \(available.sorted().joined(separator: ", ")). Pass one of them with --iface")
    }
}
