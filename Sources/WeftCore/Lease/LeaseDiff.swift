/// How the set of peer leases changed between two readings of the store.
public struct LeaseDiff: Sendable, Equatable {
    /// Subnets leased now that were not before.
    public var added: [Lease]
    /// Subnets whose attributes changed (a new public IP or VTEP MAC): reprogram them.
    public var changed: [Lease]
    /// Subnets no longer leased.
    public var removed: [IPv4Prefix]

    public var isEmpty: Bool { added.isEmpty && changed.isEmpty && removed.isEmpty }

    /// Compares two lease sets by subnet. Expiration times alone do not count as a change:
    /// a renewal is not news to the dataplane. Results are sorted by subnet.
    public init(from old: [Lease], to new: [Lease]) {
        let before = Dictionary(old.map { ($0.subnet, $0.attributes) }, uniquingKeysWith: { _, last in last })
        let after = Dictionary(new.map { ($0.subnet, $0) }, uniquingKeysWith: { _, last in last })
        added = after.values.filter { before[$0.subnet] == nil }.sorted { $0.subnet < $1.subnet }
        changed = after.values.filter { lease in before[lease.subnet].map { $0 != lease.attributes } ?? false }
            .sorted { $0.subnet < $1.subnet }
        removed = before.keys.filter { after[$0] == nil }.sorted()
    }
}
