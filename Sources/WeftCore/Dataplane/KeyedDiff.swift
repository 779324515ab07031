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

    private init(upserts: [(key: Key, value: Value)], removals: [Key]) {
        self.upserts = upserts
        self.removals = removals
    }

    public var isEmpty: Bool { upserts.isEmpty && removals.isEmpty }

    /// The same changes with each written value transformed (a plan's paths into map entries).
    public func mapValues<T: Equatable>(_ transform: (Value) -> T) -> KeyedDiff<Key, T> {
        KeyedDiff<Key, T>(upserts: upserts.map { (key: $0.key, value: transform($0.value)) }, removals: removals)
    }
}
