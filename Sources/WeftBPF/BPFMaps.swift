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

    public func update(_ key: Key, _ value: Value) throws(BPFError) {
        var key = key
        var value = value
        let result = bpf_map_update_elem(descriptor, &key, &value, UInt64(BPF_ANY))
        guard result == 0 else { throw BPFError("update map", name, errno: result) }
    }

    /// Removes a key; false if it was not there.
    @discardableResult
    public func delete(_ key: Key) throws(BPFError) -> Bool {
        var key = key
        let result = bpf_map_delete_elem(descriptor, &key)
        if result == -ENOENT { return false }
        guard result == 0 else { throw BPFError("delete from map", name, errno: result) }
        return true
    }

    public func lookup(_ key: Key, initial: Value) throws(BPFError) -> Value? {
        var key = key
        var value = initial
        let result = bpf_map_lookup_elem(descriptor, &key, &value)
        if result == -ENOENT { return nil }
        guard result == 0 else { throw BPFError("look up in map", name, errno: result) }
        return value
    }

    /// Every key, in the map's iteration order.
    public func keys(initial: Key) throws(BPFError) -> [Key] {
        var keys: [Key] = []
        var current = initial
        var next = initial
        var result = bpf_map_get_next_key(descriptor, nil, &next)
        while result == 0 {
            keys.append(next)
            current = next
            result = bpf_map_get_next_key(descriptor, &current, &next)
        }
        guard result == -ENOENT else { throw BPFError("iterate map", name, errno: result) }
        return keys
    }

    /// Every key with its value. A key deleted between the two reads is left out.
    public func entries(initialKey: Key, initialValue: Value) throws(BPFError) -> [(key: Key, value: Value)] {
        var entries: [(key: Key, value: Value)] = []
        for key in try keys(initial: initialKey) {
            if let value = try lookup(key, initial: initialValue) { entries.append((key, value)) }
        }
        return entries
    }
}

/// Peer subnets and how to reach them (`weft_peers`, an LPM trie).
public struct PeerMap {
    public static let name = "weft_peers"
    public let map: BPFMap<weft_peer_key, weft_peer>

    public init(descriptor: Int32, owned: Bool = false) {
        map = BPFMap(descriptor: descriptor, name: Self.name, owned: owned)
    }

    public func set(_ subnet: IPv4Prefix, _ peer: PeerRoute) throws(BPFError) {
        try map.update(Self.key(subnet), peer.mapValue)
    }

    @discardableResult
    public func remove(_ subnet: IPv4Prefix) throws(BPFError) -> Bool {
        try map.delete(Self.key(subnet))
    }

    /// The entry for exactly `subnet`, if there is one.
    public func lookup(_ subnet: IPv4Prefix) throws(BPFError) -> PeerRoute? {
        try map.lookup(Self.key(subnet), initial: weft_peer()).map(PeerRoute.init(mapValue:))
    }

    public func entries() throws(BPFError) -> [IPv4Prefix: PeerRoute] {
        var result: [IPv4Prefix: PeerRoute] = [:]
        for (key, value) in try map.entries(initialKey: weft_peer_key(), initialValue: weft_peer()) {
            guard let subnet = IPv4Prefix(network: IPv4Address(UInt32(bigEndian: key.addr)), length: Int(key.prefixlen)) else { continue }
            result[subnet] = PeerRoute(mapValue: value)
        }
        return result
    }

    static func key(_ subnet: IPv4Prefix) -> weft_peer_key {
        weft_peer_key(prefixlen: UInt32(subnet.length), addr: subnet.network.value.bigEndian)
    }
}

/// How to reach one peer subnet.
public struct PeerRoute: Sendable, Equatable {
    /// `enum weft_peer_mode`: the values come from the shared header.
    public enum Mode: Sendable, CaseIterable {
        case vxlan
        case direct

        public var rawValue: UInt8 {
            switch self {
            case .vxlan: UInt8(WEFT_MODE_VXLAN.rawValue)
            case .direct: UInt8(WEFT_MODE_DIRECT.rawValue)
            }
        }

        public init?(rawValue: UInt8) {
            guard let mode = Self.allCases.first(where: { $0.rawValue == rawValue }) else { return nil }
            self = mode
        }
    }

    public var underlayIP: IPv4Address
    public var vtepMAC: MACAddress
    public var mode: Mode

    public init(underlayIP: IPv4Address, vtepMAC: MACAddress, mode: Mode) {
        self.underlayIP = underlayIP
        self.vtepMAC = vtepMAC
        self.mode = mode
    }

    var mapValue: weft_peer {
        weft_peer(underlay_ip: underlayIP.value.bigEndian,
                         vtep_mac: vtepMAC.cBytes,
                         mode: mode.rawValue, reserved: 0)
    }

    init(mapValue value: weft_peer) {
        underlayIP = IPv4Address(UInt32(bigEndian: value.underlay_ip))
        vtepMAC = MACAddress(cBytes: value.vtep_mac)
        mode = Mode(rawValue: value.mode) ?? .vxlan
    }
}

/// Pods on this node (`weft_endpoints`).
public struct EndpointMap {
    public static let name = "weft_endpoints"
    public let map: BPFMap<weft_endpoint_key, weft_endpoint>

    public init(descriptor: Int32, owned: Bool = false) {
        map = BPFMap(descriptor: descriptor, name: Self.name, owned: owned)
    }

    public func set(_ address: IPv4Address, _ endpoint: LocalEndpoint) throws(BPFError) {
        try map.update(weft_endpoint_key(addr: address.value.bigEndian),
                       weft_endpoint(ifindex: endpoint.hostInterfaceIndex,
                                     pod_mac: endpoint.podMAC.cBytes,
                                     host_mac: endpoint.hostMAC.cBytes,
                                     reserved: 0))
    }

    @discardableResult
    public func remove(_ address: IPv4Address) throws(BPFError) -> Bool {
        try map.delete(weft_endpoint_key(addr: address.value.bigEndian))
    }

    public func entries() throws(BPFError) -> [IPv4Address: LocalEndpoint] {
        var result: [IPv4Address: LocalEndpoint] = [:]
        for (key, value) in try map.entries(initialKey: weft_endpoint_key(), initialValue: weft_endpoint()) {
            result[IPv4Address(UInt32(bigEndian: key.addr))] = LocalEndpoint(
                hostInterfaceIndex: value.ifindex,
                podMAC: MACAddress(cBytes: value.pod_mac),
                hostMAC: MACAddress(cBytes: value.host_mac))
        }
        return result
    }
}

/// A pod on this node, as the dataplane delivers to it.
public struct LocalEndpoint: Sendable, Equatable {
    public var hostInterfaceIndex: UInt32
    public var podMAC: MACAddress
    public var hostMAC: MACAddress

    public init(hostInterfaceIndex: UInt32, podMAC: MACAddress, hostMAC: MACAddress) {
        self.hostInterfaceIndex = hostInterfaceIndex
        self.podMAC = podMAC
        self.hostMAC = hostMAC
    }
}

/// Underlay IP of each VXLAN peer -> its subnet (`weft_tunnels`), for decap checks.
public struct TunnelMap {
    public static let name = "weft_tunnels"
    public let map: BPFMap<weft_tunnel_key, weft_peer_key>

    public init(descriptor: Int32, owned: Bool = false) {
        map = BPFMap(descriptor: descriptor, name: Self.name, owned: owned)
    }

    public func set(_ underlayIP: IPv4Address, subnet: IPv4Prefix) throws(BPFError) {
        try map.update(weft_tunnel_key(underlay_ip: underlayIP.value.bigEndian), PeerMap.key(subnet))
    }

    @discardableResult
    public func remove(_ underlayIP: IPv4Address) throws(BPFError) -> Bool {
        try map.delete(weft_tunnel_key(underlay_ip: underlayIP.value.bigEndian))
    }

    public func entries() throws(BPFError) -> [IPv4Address: IPv4Prefix] {
        var result: [IPv4Address: IPv4Prefix] = [:]
        for (key, value) in try map.entries(initialKey: weft_tunnel_key(), initialValue: weft_peer_key()) {
            guard let subnet = IPv4Prefix(network: IPv4Address(UInt32(bigEndian: value.addr)), length: Int(value.prefixlen)) else { continue }
            result[IPv4Address(UInt32(bigEndian: key.underlay_ip))] = subnet
        }
        return result
    }
}

/// The per-CPU outcome counters (`weft_counters`), summed over CPUs.
public struct CounterMap {
    public static let name = "weft_counters"
    private let handle: MapDescriptor
    public var descriptor: Int32 { handle.value }

    public init(descriptor: Int32, owned: Bool = false) {
        handle = MapDescriptor(descriptor, owned: owned)
    }

    public func totals() throws(BPFError) -> [DataplaneCounter: (packets: UInt64, bytes: UInt64)] {
        let cpus = Int(libbpf_num_possible_cpus())
        guard cpus > 0 else { throw BPFError("count possible CPUs for", Self.name, errno: Int32(-cpus)) }
        var result: [DataplaneCounter: (packets: UInt64, bytes: UInt64)] = [:]
        for counter in DataplaneCounter.allCases {
            var key = counter.index
            var values = [weft_counter_value](repeating: weft_counter_value(), count: cpus)
            let status = bpf_map_lookup_elem(descriptor, &key, &values)
            guard status == 0 else { throw BPFError("read counter \(counter) from", Self.name, errno: status) }
            result[counter] = (values.reduce(0) { $0 + $1.packets }, values.reduce(0) { $0 + $1.bytes })
        }
        return result
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
