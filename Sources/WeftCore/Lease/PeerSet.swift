/// Every lease in the store as this node last heard of it, its own included: the one copy
/// the daemon keeps, fed by the lease watch and read by the planner. Each entry remembers
/// the revision it first appeared at, so the planner can let the older of two contested
/// leases win.
public struct PeerSet: Sendable, Equatable {
    public private(set) var entries: [IPv4Prefix: PeerLease] = [:]

    public init(_ leases: [PeerLease] = []) {
        for lease in leases { entries[lease.lease.subnet] = lease }
    }

    /// A lease created or changed at `revision`; a changed one keeps its age.
    public mutating func put(_ lease: Lease, revision: Int64) {
        entries[lease.subnet] = PeerLease(lease, since: entries[lease.subnet]?.since ?? revision)
    }

    /// Forgets a lease; returns it, if it was there.
    @discardableResult
    public mutating func remove(_ subnet: IPv4Prefix) -> PeerLease? {
        entries.removeValue(forKey: subnet)
    }

    /// The leases, without copying them.
    public var leases: Dictionary<IPv4Prefix, PeerLease>.Values { entries.values }
    public var count: Int { entries.count }
}
