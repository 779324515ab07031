import WeftSystem
import CNetlink
import Glibc
import WeftCore

/// An IPv4 unicast route in the main table, as Flannel programs them:
/// `<subnet> via <gateway> dev <interface> [onlink]`, or `<subnet> dev <interface>`.
/// Weft's own carry `proto weft` (`Route.weftProtocol`), so it never mistakes another
/// tool's route for one of its own.
public struct Route: Sendable, Hashable, CustomStringConvertible {
    /// Weft's routing protocol number (`ip route ... proto 87`): 'W', unused by the
    /// protocols iproute2 names.
    public static let weftProtocol: UInt8 = 87

    public var destination: IPv4Prefix
    public var gateway: IPv4Address?
    public var interfaceIndex: Int32
    public var onlink: Bool
    /// Who installed it (`rtm_protocol`): `weftProtocol` for the routes Weft makes.
    public var routingProtocol: UInt8

    public init(destination: IPv4Prefix, gateway: IPv4Address?, interfaceIndex: Int32, onlink: Bool = false,
                routingProtocol: UInt8 = Route.weftProtocol) {
        self.destination = destination
        self.gateway = gateway
        self.interfaceIndex = interfaceIndex
        self.onlink = onlink
        self.routingProtocol = routingProtocol
    }

    /// Installed by Weft.
    public var isWefts: Bool { routingProtocol == Self.weftProtocol }

    public var description: String {
        var text = "\(destination)"
        if let gateway { text += " via \(gateway)" }
        text += " dev \(interfaceIndex)"
        if onlink { text += " onlink" }
        if !isWefts { text += " proto \(routingProtocol)" }
        return text
    }
}

extension NetlinkSocket {
    static let routeHeaderSize = 12

    static func routeHeader(for route: Route?) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: routeHeaderSize)
        header[0] = UInt8(AF_INET)
        guard let route else { return header }
        header[1] = UInt8(route.destination.length)
        header[4] = UInt8(RT_TABLE_MAIN.rawValue)
        header[5] = route.routingProtocol
        header[6] = UInt8(route.gateway == nil ? RT_SCOPE_LINK.rawValue : RT_SCOPE_UNIVERSE.rawValue)
        header[7] = UInt8(RTN_UNICAST)
        header.write(route.onlink ? UInt32(RTNH_F_ONLINK) : 0, at: 8)
        return header
    }

    /// The IPv4 unicast routes of the main table.
    public func routes() throws(SystemCallError) -> [Route] {
        let request = NetlinkRequest(type: UInt16(RTM_GETROUTE), flags: NLM_F_REQUEST | NLM_F_DUMP, header: Self.routeHeader(for: nil))
        return try dump(request, "list", "IPv4 routes").compactMap(Self.decodeRoute)
    }

    /// The interface the kernel would send a packet to `destination` through (`ip route get`).
    public func outgoingInterface(toward destination: IPv4Address) throws(SystemCallError) -> Int32? {
        var header = Self.routeHeader(for: nil)
        header[1] = 32
        var request = NetlinkRequest(type: UInt16(RTM_GETROUTE), flags: NLM_F_REQUEST | NLM_F_ACK, header: header)
        request.append(Int32(RTA_DST.rawValue), destination.octets)
        do {
            let replies = try dump(request, "look up the route to", destination.description)
            for reply in replies where reply.type == UInt16(RTM_NEWROUTE) {
                if let index = reply.attributes(after: Self.routeHeaderSize).uint32(Int32(RTA_OIF.rawValue)) { return Int32(bitPattern: index) }
            }
            return nil
        } catch where error.errno == .networkUnreachable || error.errno == .noRouteToHost {
            return nil
        }
    }

    /// Adds the route, or replaces the one to the same destination.
    public func replaceRoute(_ route: Route) throws(SystemCallError) {
        var request = NetlinkRequest(type: UInt16(RTM_NEWROUTE), flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
                                     header: Self.routeHeader(for: route))
        Self.appendRouteAttributes(route, to: &request)
        try perform(request, "install route", route.description)
    }

    public func deleteRoute(_ route: Route) throws(SystemCallError) {
        var request = NetlinkRequest(type: UInt16(RTM_DELROUTE), flags: NLM_F_REQUEST | NLM_F_ACK, header: Self.routeHeader(for: route))
        Self.appendRouteAttributes(route, to: &request)
        try perform(request, "delete route", route.description)
    }

    private static func appendRouteAttributes(_ route: Route, to request: inout NetlinkRequest) {
        request.append(Int32(RTA_DST.rawValue), route.destination.network.octets)
        if let gateway = route.gateway { request.append(Int32(RTA_GATEWAY.rawValue), gateway.octets) }
        request.append(Int32(RTA_OIF.rawValue), uint32: UInt32(bitPattern: route.interfaceIndex))
    }

    static func decodeRoute(_ message: NetlinkMessage) -> Route? {
        guard message.type == UInt16(RTM_NEWROUTE), message.payload.count >= routeHeaderSize else { return nil }
        let header = message.header(routeHeaderSize)
        let attributes = message.attributes(after: routeHeaderSize)
        let table = attributes.uint32(Int32(RTA_TABLE.rawValue)) ?? UInt32(header[4])
        guard header[0] == UInt8(AF_INET), header[7] == UInt8(RTN_UNICAST), table == RT_TABLE_MAIN.rawValue,
              let interface = attributes.uint32(Int32(RTA_OIF.rawValue))
        else { return nil }
        let network = attributes[Int32(RTA_DST.rawValue)].flatMap(IPv4Address.init(octets:)) ?? IPv4Address(0)
        guard let destination = IPv4Prefix(network: network, length: Int(header[1])) else { return nil }
        return Route(destination: destination,
                     gateway: attributes[Int32(RTA_GATEWAY.rawValue)].flatMap(IPv4Address.init(octets:)),
                     interfaceIndex: Int32(bitPattern: interface),
                     onlink: header.read(UInt32.self, at: 8) & UInt32(RTNH_F_ONLINK) != 0,
                     routingProtocol: header[5])
    }
}
