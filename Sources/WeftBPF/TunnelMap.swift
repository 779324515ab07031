import WeftSystem
import CLibBPF
import CWeftBPF
import Foundation
import WeftCore

/// Underlay IP of each VXLAN peer -> its subnet (`weft_tunnels`), for decap checks.
public struct TunnelMap {
    public static let name = "weft_tunnels"
    public let map: BPFMap<weft_tunnel_key, weft_peer_key>

    public init(descriptor: Int32, owned: Bool = false) {
        map = BPFMap(descriptor: descriptor, name: Self.name, owned: owned)
    }

    public func set(_ underlayIP: IPv4Address, subnet: IPv4Prefix) throws(SystemCallError) {
        try map.update(weft_tunnel_key(underlay_ip: underlayIP.value.bigEndian), PeerMap.key(subnet))
    }

    @discardableResult
    public func remove(_ underlayIP: IPv4Address) throws(SystemCallError) -> Bool {
        try map.delete(weft_tunnel_key(underlay_ip: underlayIP.value.bigEndian))
    }

    public func entries() throws(SystemCallError) -> [IPv4Address: IPv4Prefix] {
        var result: [IPv4Address: IPv4Prefix] = [:]
        for (key, value) in try map.entries(initialKey: weft_tunnel_key(), initialValue: weft_peer_key()) {
            guard let subnet = IPv4Prefix(network: IPv4Address(UInt32(bigEndian: value.addr)), length: Int(value.prefixlen)) else { continue }
            result[IPv4Address(UInt32(bigEndian: key.underlay_ip))] = subnet
        }
        return result
    }
}
