/// What turns the entries a table holds into the entries it should hold: the keys to
/// write (new or changed) and the keys to remove. Entries already right are untouched,
/// so applying the same desired state twice changes nothing.
public struct KeyedDiff<Key: Hashable & Comparable, Value: Equatable> {
    public var upserts: [(key: Key, value: Value)]
    public var removals: [Key]

    public init(current: [Key: Value], desired: [Key: Value]) {
        upserts = desired.filter { current[$0.key] != $0.value }
            .map { (key: $0.key, value: $0.value) }
            .sorted { $0.key < $1.key }
        removals = current.keys.filter { desired[$0] == nil }.sorted()
    }

    public var isEmpty: Bool { upserts.isEmpty && removals.isEmpty }
}
