import WeftSystem
import CNetlink
import Glibc
import WeftCore

/// A network interface as the kernel reports it.
public struct NetworkLink: Sendable, Equatable {
    public var index: Int32
    public var name: String
    public var mtu: UInt32
    public var mac: MACAddress?
    public var isUp: Bool
    public var usesARP: Bool
    /// `IFLA_INFO_KIND`: "vxlan", "veth", "bridge"; nil for physical devices.
    public var kind: String?
    public var vxlan: VXLANSettings?
}

/// The parameters of a vxlan device: Flannel's (`id`, `local`, `dev`, `dstport`,
/// `nolearning`) or an `external` (collect_md) device whose programs pick the tunnel.
public struct VXLANSettings: Sendable, Equatable {
    public var vni: UInt32?
    public var local: IPv4Address?
    public var underlayIndex: Int32?
    public var port: UInt16
    public var learning: Bool
    public var external: Bool

    /// Flannel's `flannel.<VNI>` device.
    public static func flannel(vni: UInt32, local: IPv4Address, underlayIndex: Int32, port: UInt16) -> VXLANSettings {
        VXLANSettings(vni: vni, local: local, underlayIndex: underlayIndex, port: port, learning: false, external: false)
    }

    /// A collect_md device: one for all peers, the tunnel key set per packet by BPF.
    public static func external(port: UInt16) -> VXLANSettings {
        VXLANSettings(vni: nil, local: nil, underlayIndex: nil, port: port, learning: false, external: true)
    }
}

extension NetlinkSocket {
    static let linkHeaderSize = 16

    static func linkHeader(index: Int32 = 0, flags: UInt32 = 0, change: UInt32 = 0) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: linkHeaderSize)
        header[0] = UInt8(AF_UNSPEC)
        header.write(UInt32(bitPattern: index), at: 4)
        header.write(flags, at: 8)
        header.write(change, at: 12)
        return header
    }

    public func links() throws(SystemCallError) -> [NetworkLink] {
        let request = NetlinkRequest(type: UInt16(RTM_GETLINK), flags: NLM_F_REQUEST | NLM_F_DUMP, header: Self.linkHeader())
        return try dump(request, "list", "interfaces").compactMap(Self.decodeLink)
    }

    /// The interface called `name`, or nil if there is none.
    public func link(named name: String) throws(SystemCallError) -> NetworkLink? {
        var request = NetlinkRequest(type: UInt16(RTM_GETLINK), flags: NLM_F_REQUEST | NLM_F_ACK, header: Self.linkHeader())
        request.append(Int32(IFLA_IFNAME), string: name)
        return try lookupLink(request, name)
    }

    public func link(index: Int32) throws(SystemCallError) -> NetworkLink? {
        let request = NetlinkRequest(type: UInt16(RTM_GETLINK), flags: NLM_F_REQUEST | NLM_F_ACK, header: Self.linkHeader(index: index))
        return try lookupLink(request, "interface \(index)")
    }

    private func lookupLink(_ request: NetlinkRequest, _ object: String) throws(SystemCallError) -> NetworkLink? {
        do {
            return try dump(request, "look up interface", object).compactMap(Self.decodeLink).first
        } catch where error.errno == .operationNotSupportedByDevice {
            return nil
        }
    }

    /// Creates a vxlan device, down; `mac` fixes its address (the VTEP MAC peers cache).
    public func createVXLAN(name: String, settings: VXLANSettings, mtu: UInt32, mac: MACAddress?) throws(SystemCallError) {
        var request = NetlinkRequest(type: UInt16(RTM_NEWLINK), flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                                     header: Self.linkHeader())
        request.append(Int32(IFLA_IFNAME), string: name)
        request.append(Int32(IFLA_MTU), uint32: mtu)
        if let mac { request.append(Int32(IFLA_ADDRESS), mac.bytes) }
        request.beginNest(Int32(IFLA_LINKINFO))
        request.append(Int32(IFLA_INFO_KIND), string: "vxlan")
        request.beginNest(Int32(IFLA_INFO_DATA))
        if let vni = settings.vni { request.append(Int32(IFLA_VXLAN_ID), uint32: vni) }
        if let local = settings.local { request.append(Int32(IFLA_VXLAN_LOCAL), local.octets) }
        if let underlay = settings.underlayIndex { request.append(Int32(IFLA_VXLAN_LINK), uint32: UInt32(bitPattern: underlay)) }
        request.append(Int32(IFLA_VXLAN_PORT), port: settings.port)
        request.append(Int32(IFLA_VXLAN_LEARNING), uint8: settings.learning ? 1 : 0)
        if settings.external { request.append(Int32(IFLA_VXLAN_COLLECT_METADATA), uint8: 1) }
        request.endNest()
        request.endNest()
        try perform(request, "create vxlan device", name)
    }

    /// Whether the kernel can create links of `kind` ("netkit", say), asked without creating one:
    /// the request names the kind with an MTU of 0, which the kernel refuses (EINVAL) only after
    /// it has found the kind, and refuses with EOPNOTSUPP before that when it has no such kind.
    public func kernelKnowsLinkKind(_ kind: String) throws(SystemCallError) -> Bool {
        var request = NetlinkRequest(type: UInt16(RTM_NEWLINK), flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                                     header: Self.linkHeader())
        request.append(Int32(IFLA_IFNAME), string: "weftprobe0")
        request.append(Int32(IFLA_MTU), uint32: 0)
        request.beginNest(Int32(IFLA_LINKINFO))
        request.append(Int32(IFLA_INFO_KIND), string: kind)
        request.endNest()
        do {
            try perform(request, "probe link kind", kind)
        } catch where error.errno == .notSupported || error.errno == .operationNotSupportedByDevice {
            return false
        } catch where error.errno == .invalidArgument {
            return true
        }
        // Created after all (a kind with no lower MTU bound): it exists; remove the probe's link.
        if let probe = try link(named: "weftprobe0") { try deleteLink(index: probe.index) }
        return true
    }

    /// Changes what is given and leaves the rest: up or down, ARP on or off, MTU, MAC.
    public func setLink(index: Int32, up: Bool? = nil, arp: Bool? = nil, mtu: UInt32? = nil, mac: MACAddress? = nil) throws(SystemCallError) {
        var flags: UInt32 = 0
        var change: UInt32 = 0
        if let up {
            change |= UInt32(IFF_UP.rawValue)
            if up { flags |= UInt32(IFF_UP.rawValue) }
        }
        if let arp {
            change |= UInt32(IFF_NOARP.rawValue)
            if !arp { flags |= UInt32(IFF_NOARP.rawValue) }
        }
        var request = NetlinkRequest(type: UInt16(RTM_NEWLINK), flags: NLM_F_REQUEST | NLM_F_ACK,
                                     header: Self.linkHeader(index: index, flags: flags, change: change))
        if let mtu { request.append(Int32(IFLA_MTU), uint32: mtu) }
        if let mac { request.append(Int32(IFLA_ADDRESS), mac.bytes) }
        try perform(request, "configure", "interface \(index)")
    }

    public func deleteLink(index: Int32) throws(SystemCallError) {
        let request = NetlinkRequest(type: UInt16(RTM_DELLINK), flags: NLM_F_REQUEST | NLM_F_ACK, header: Self.linkHeader(index: index))
        try perform(request, "delete", "interface \(index)")
    }

    static func decodeLink(_ message: NetlinkMessage) -> NetworkLink? {
        guard message.type == UInt16(RTM_NEWLINK), message.payload.count >= linkHeaderSize else { return nil }
        let header = message.header(linkHeaderSize)
        let attributes = message.attributes(after: linkHeaderSize)
        guard let name = attributes.string(Int32(IFLA_IFNAME)) else { return nil }
        let info = attributes.nested(Int32(IFLA_LINKINFO))
        let kind = info?.string(Int32(IFLA_INFO_KIND))
        var vxlan: VXLANSettings?
        if kind == "vxlan", let data = info?.nested(Int32(IFLA_INFO_DATA)) {
            let underlay = data.uint32(Int32(IFLA_VXLAN_LINK)).map { Int32(bitPattern: $0) }
            let external = data.uint8(Int32(IFLA_VXLAN_COLLECT_METADATA)) == 1
            vxlan = VXLANSettings(
                vni: external ? nil : data.uint32(Int32(IFLA_VXLAN_ID)),
                local: data[Int32(IFLA_VXLAN_LOCAL)].flatMap(IPv4Address.init(octets:)),
                underlayIndex: underlay == 0 ? nil : underlay,
                port: data.port(Int32(IFLA_VXLAN_PORT)) ?? 0,
                learning: data.uint8(Int32(IFLA_VXLAN_LEARNING)) == 1,
                external: external)
        }
        return NetworkLink(index: Int32(bitPattern: header.read(UInt32.self, at: 4)),
                           name: name,
                           mtu: attributes.uint32(Int32(IFLA_MTU)) ?? 0,
                           mac: attributes[Int32(IFLA_ADDRESS)].flatMap { MACAddress(bytes: $0) },
                           isUp: header.read(UInt32.self, at: 8) & UInt32(IFF_UP.rawValue) != 0,
                           usesARP: header.read(UInt32.self, at: 8) & UInt32(IFF_NOARP.rawValue) == 0,
                           kind: kind,
                           vxlan: vxlan)
    }
}

extension IPv4Address {
    init?(octets: [UInt8]) {
        guard octets.count == 4 else { return nil }
        self.init(octets[0], octets[1], octets[2], octets[3])
    }
}
