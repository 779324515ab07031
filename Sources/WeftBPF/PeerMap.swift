import WeftSystem
import CLibBPF
import CWeftBPF
import Foundation
import WeftCore

/// Peer subnets and how to reach them (`weft_peers`, an LPM trie).
public struct PeerMap {
    public static let name = "weft_peers"
    public let map: BPFMap<weft_peer_key, weft_peer>

    public init(descriptor: Int32, owned: Bool = false) {
        map = BPFMap(descriptor: descriptor, name: Self.name, owned: owned)
    }

    public func set(_ subnet: IPv4Prefix, _ peer: PeerRoute) throws(SystemCallError) {
        try map.update(Self.key(subnet), peer.mapValue)
    }

    @discardableResult
    public func remove(_ subnet: IPv4Prefix) throws(SystemCallError) -> Bool {
        try map.delete(Self.key(subnet))
    }

    /// The entry for exactly `subnet`, if there is one.
    public func lookup(_ subnet: IPv4Prefix) throws(SystemCallError) -> PeerRoute? {
        try map.lookup(Self.key(subnet), initial: weft_peer()).map(PeerRoute.init(mapValue:))
    }

    public func entries() throws(SystemCallError) -> [IPv4Prefix: PeerRoute] {
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
