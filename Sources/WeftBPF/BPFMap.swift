import WeftSystem
import CLibBPF
import CWeftBPF
import Foundation
import WeftCore

/// A map's file descriptor, closed when the last user lets go of it if it was opened
/// for this process (a pin); one a loaded object lends stays the object's to close.
public final class MapDescriptor: @unchecked Sendable {
    public let value: Int32
    private let owned: Bool

    public init(_ value: Int32, owned: Bool) {
        self.value = value
        self.owned = owned
    }

    deinit {
        if owned { close(value) }
    }
}

/// A map file descriptor with typed, plain-struct keys and values.
public struct BPFMap<Key, Value> {
    private let handle: MapDescriptor
    public let name: String

    public var descriptor: Int32 { handle.value }

    /// `owned`: close the descriptor when the map is no longer used (one from `bpf_obj_get`).
    public init(descriptor: Int32, name: String, owned: Bool = false) {
        handle = MapDescriptor(descriptor, owned: owned)
        self.name = name
    }

    public func update(_ key: Key, _ value: Value) throws(SystemCallError) {
        var key = key
        var value = value
        let result = bpf_map_update_elem(descriptor, &key, &value, UInt64(BPF_ANY))
        if result == -E2BIG {
            throw SystemCallError("update map", "\(name), which is full (all \(capacity.map { "\($0) " } ?? "")entries are taken; remove stale ones, or see `weft maps usage`)", errno: result)
        }
        guard result == 0 else { throw SystemCallError("update map", name, errno: result) }
    }

    /// How many entries the map holds at most, as the kernel says.
    public var capacity: UInt32? {
        var info = bpf_map_info()
        var length = UInt32(MemoryLayout<bpf_map_info>.size)
        return bpf_obj_get_info_by_fd(descriptor, &info, &length) == 0 ? info.max_entries : nil
    }

    /// Removes a key; false if it was not there.
    @discardableResult
    public func delete(_ key: Key) throws(SystemCallError) -> Bool {
        var key = key
        let result = bpf_map_delete_elem(descriptor, &key)
        if result == -ENOENT { return false }
        guard result == 0 else { throw SystemCallError("delete from map", name, errno: result) }
        return true
    }

    public func lookup(_ key: Key, initial: Value) throws(SystemCallError) -> Value? {
        var key = key
        var value = initial
        let result = bpf_map_lookup_elem(descriptor, &key, &value)
        if result == -ENOENT { return nil }
        guard result == 0 else { throw SystemCallError("look up in map", name, errno: result) }
        return value
    }

    /// Every key, in the map's iteration order.
    public func keys(initial: Key) throws(SystemCallError) -> [Key] {
        var keys: [Key] = []
        var current = initial
        var next = initial
        var result = bpf_map_get_next_key(descriptor, nil, &next)
        while result == 0 {
            keys.append(next)
            current = next
            result = bpf_map_get_next_key(descriptor, &current, &next)
        }
        guard result == -ENOENT else { throw SystemCallError("iterate map", name, errno: result) }
        return keys
    }

    /// Every key with its value. A key deleted between the two reads is left out.
    public func entries(initialKey: Key, initialValue: Value) throws(SystemCallError) -> [(key: Key, value: Value)] {
        var entries: [(key: Key, value: Value)] = []
        for key in try keys(initial: initialKey) {
            if let value = try lookup(key, initial: initialValue) { entries.append((key, value)) }
        }
        return entries
    }
}

/// MACs as the map structs hold them: C arrays, which Swift imports as 6-tuples.
extension MACAddress {
    typealias CBytes = (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)

    init(cBytes tuple: CBytes) {
        self = MACAddress(bytes: [tuple.0, tuple.1, tuple.2, tuple.3, tuple.4, tuple.5])!
    }

    var cBytes: CBytes {
        (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5])
    }
}
