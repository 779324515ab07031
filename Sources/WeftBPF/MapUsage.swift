import CWeftBPF
import WeftSystem

/// How full a map of the dataplane is: its entries against its capacity (the shared
/// header's `WEFT_MAX_*`), for `weft maps usage` and the map pressure metric.
public struct MapUsage: Sendable, Equatable {
    public let name: String
    public let entries: Int
    public let capacity: Int

    public var fill: Double { capacity == 0 ? 0 : Double(entries) / Double(capacity) }

    /// The TCP flows from_underlay tracks on the vxlan device's path (an LRU: full means the
    /// oldest flows are forgotten, not that any is refused).
    public static let deviceFlowsName = "weft_device_flows"

    public static func read(_ maps: PinnedMaps) throws(SystemCallError) -> [MapUsage] {
        var usage = [
            MapUsage(name: PeerMap.name, entries: try maps.peers.entries().count, capacity: Int(WEFT_MAX_PEERS)),
            MapUsage(name: TunnelMap.name, entries: try maps.tunnels.entries().count, capacity: Int(WEFT_MAX_PEERS)),
            MapUsage(name: EndpointMap.name, entries: try maps.endpoints.entries().count, capacity: Int(WEFT_MAX_ENDPOINTS)),
        ]
        // Pinned by from_underlay where VXLAN is in use; absent on a host-gw node loaded by an older version.
        if let descriptor = try? PinnedMaps.open(deviceFlowsName, in: maps.directory) {
            let flows = BPFMap<weft_flow_key, weft_device_queue>(descriptor: descriptor, name: deviceFlowsName, owned: true)
            usage.append(MapUsage(name: deviceFlowsName, entries: try flows.keys(initial: weft_flow_key()).count,
                                  capacity: Int(WEFT_MAX_DEVICE_FLOWS)))
        }
        return usage
    }
}
