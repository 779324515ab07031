import CWeftBPF
import WeftSystem

/// How full a map of the dataplane is: its entries against its capacity (the shared
/// header's `WEFT_MAX_*`), for `weft maps usage` and the map pressure metric.
public struct MapUsage: Sendable, Equatable {
    public let name: String
    public let entries: Int
    public let capacity: Int

    public var fill: Double { capacity == 0 ? 0 : Double(entries) / Double(capacity) }

    public static func read(_ maps: PinnedMaps) throws(SystemCallError) -> [MapUsage] {
        [
            MapUsage(name: PeerMap.name, entries: try maps.peers.entries().count, capacity: Int(WEFT_MAX_PEERS)),
            MapUsage(name: TunnelMap.name, entries: try maps.tunnels.entries().count, capacity: Int(WEFT_MAX_PEERS)),
            MapUsage(name: EndpointMap.name, entries: try maps.endpoints.entries().count, capacity: Int(WEFT_MAX_ENDPOINTS)),
        ]
    }
}
