import WeftSystem
import CNetlink
import Glibc
import WeftCore

/// A permanent ARP entry: `<ip> lladdr <mac> PERMANENT dev <interface>`.
public struct NeighbourEntry: Sendable, Hashable {
    public var interfaceIndex: Int32
    public var address: IPv4Address
    public var mac: MACAddress
    public var permanent: Bool

    public init(interfaceIndex: Int32, address: IPv4Address, mac: MACAddress, permanent: Bool = true) {
        self.interfaceIndex = interfaceIndex
        self.address = address
        self.mac = mac
        self.permanent = permanent
    }
}

/// A vxlan forwarding entry: `<mac> dst <underlay ip> dev <vxlan device>` (bridge fdb, self).
public struct ForwardingEntry: Sendable, Hashable {
    public var interfaceIndex: Int32
    public var mac: MACAddress
    public var destination: IPv4Address

    public init(interfaceIndex: Int32, mac: MACAddress, destination: IPv4Address) {
        self.interfaceIndex = interfaceIndex
        self.mac = mac
        self.destination = destination
    }
}

extension NetlinkSocket {
    static let neighbourHeaderSize = 12

    /// `ndmsg`. Dump requests must leave state and type zero (the kernel checks strictly).
    static func neighbourHeader(family: Int32, index: Int32, state: Int32 = 0, flags: Int32 = 0) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: neighbourHeaderSize)
        header[0] = UInt8(family)
        header.write(UInt32(bitPattern: index), at: 4)
        header.write(UInt16(state), at: 8)
        header[10] = UInt8(flags)
        header[11] = state == 0 ? 0 : UInt8(RTN_UNICAST)
        return header
    }

    public func neighbours(index: Int32) throws(SystemCallError) -> [NeighbourEntry] {
        // A neighbour dump filters by NDA_IFINDEX; the header's index must stay zero.
        var request = NetlinkRequest(type: UInt16(RTM_GETNEIGH), flags: NLM_F_REQUEST | NLM_F_DUMP,
                                     header: Self.neighbourHeader(family: AF_INET, index: 0))
        request.append(Int32(NDA_IFINDEX), uint32: UInt32(bitPattern: index))
        return try neighbourDump(request, family: AF_INET, index: index, "neighbours").compactMap { entry in
            entry.mac.map { NeighbourEntry(interfaceIndex: index, address: entry.address, mac: $0, permanent: entry.state & UInt16(NUD_PERMANENT) != 0) }
        }
    }

    /// The addresses of the managed entries on one interface (`ip neigh ... managed`),
    /// resolved or not.
    public func managedNeighbours(index: Int32) throws(SystemCallError) -> [IPv4Address] {
        var request = NetlinkRequest(type: UInt16(RTM_GETNEIGH), flags: NLM_F_REQUEST | NLM_F_DUMP,
                                     header: Self.neighbourHeader(family: AF_INET, index: 0))
        request.append(Int32(NDA_IFINDEX), uint32: UInt32(bitPattern: index))
        return try neighbourDump(request, family: AF_INET, index: index, "neighbours").filter(\.managed).map(\.address)
    }

    /// `ip neigh replace <ip> dev <interface> managed extern_learn`: an entry the kernel
    /// resolves and keeps resolved by itself (Linux 5.16+), so that a BPF program's FIB
    /// lookup finds the MAC of a peer that has sent nothing yet.
    public func addManagedNeighbour(_ address: IPv4Address, interfaceIndex: Int32) throws(SystemCallError) {
        var request = NetlinkRequest(type: UInt16(RTM_NEWNEIGH), flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
                                     header: Self.neighbourHeader(family: AF_INET, index: interfaceIndex, flags: NTF_EXT_LEARNED))
        request.append(Int32(NDA_DST), address.octets)
        request.append(Int32(NDA_FLAGS_EXT), uint32: UInt32(NTF_EXT_MANAGED))
        try perform(request, "install managed neighbour \(address) on", "interface \(interfaceIndex)")
    }

    public func replaceNeighbour(_ entry: NeighbourEntry) throws(SystemCallError) {
        var request = NetlinkRequest(type: UInt16(RTM_NEWNEIGH), flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
                                     header: Self.neighbourHeader(family: AF_INET, index: entry.interfaceIndex,
                                                                  state: entry.permanent ? NUD_PERMANENT : NUD_REACHABLE))
        request.append(Int32(NDA_DST), entry.address.octets)
        request.append(Int32(NDA_LLADDR), entry.mac.bytes)
        try perform(request, "install neighbour \(entry.address) lladdr \(entry.mac) on", "interface \(entry.interfaceIndex)")
    }

    public func deleteNeighbour(_ entry: NeighbourEntry) throws(SystemCallError) {
        var request = NetlinkRequest(type: UInt16(RTM_DELNEIGH), flags: NLM_F_REQUEST | NLM_F_ACK,
                                     header: Self.neighbourHeader(family: AF_INET, index: entry.interfaceIndex))
        request.append(Int32(NDA_DST), entry.address.octets)
        try perform(request, "delete neighbour \(entry.address) on", "interface \(entry.interfaceIndex)")
    }

    /// The forwarding entries with a remote destination on a vxlan device.
    public func forwardingEntries(index: Int32) throws(SystemCallError) -> [ForwardingEntry] {
        let request = NetlinkRequest(type: UInt16(RTM_GETNEIGH), flags: NLM_F_REQUEST | NLM_F_DUMP,
                                     header: Self.neighbourHeader(family: AF_BRIDGE, index: index))
        return try neighbourDump(request, family: AF_BRIDGE, index: index, "forwarding entries").compactMap { entry in
            entry.mac.map { ForwardingEntry(interfaceIndex: index, mac: $0, destination: entry.address) }
        }
    }

    public func replaceForwardingEntry(_ entry: ForwardingEntry) throws(SystemCallError) {
        var request = NetlinkRequest(type: UInt16(RTM_NEWNEIGH), flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
                                     header: Self.neighbourHeader(family: AF_BRIDGE, index: entry.interfaceIndex,
                                                                  state: NUD_PERMANENT, flags: NTF_SELF))
        request.append(Int32(NDA_LLADDR), entry.mac.bytes)
        request.append(Int32(NDA_DST), entry.destination.octets)
        try perform(request, "install forwarding entry \(entry.mac) dst \(entry.destination) on", "interface \(entry.interfaceIndex)")
    }

    public func deleteForwardingEntry(_ entry: ForwardingEntry) throws(SystemCallError) {
        var request = NetlinkRequest(type: UInt16(RTM_DELNEIGH), flags: NLM_F_REQUEST | NLM_F_ACK,
                                     header: Self.neighbourHeader(family: AF_BRIDGE, index: entry.interfaceIndex, flags: NTF_SELF))
        request.append(Int32(NDA_LLADDR), entry.mac.bytes)
        request.append(Int32(NDA_DST), entry.destination.octets)
        try perform(request, "delete forwarding entry \(entry.mac) on", "interface \(entry.interfaceIndex)")
    }

    /// The entries of one family on one interface that carry an IPv4 address, with their
    /// MAC if they have one (an unresolved entry has none).
    private func neighbourDump(_ request: NetlinkRequest, family: Int32, index: Int32, _ what: String) throws(SystemCallError)
        -> [(address: IPv4Address, mac: MACAddress?, state: UInt16, managed: Bool)] {
        try dump(request, "list", "\(what) of interface \(index)").compactMap { message in
            guard message.type == UInt16(RTM_NEWNEIGH), message.payload.count >= Self.neighbourHeaderSize else { return nil }
            let header = message.header(Self.neighbourHeaderSize)
            let attributes = message.attributes(after: Self.neighbourHeaderSize)
            guard header[0] == UInt8(family), Int32(bitPattern: header.read(UInt32.self, at: 4)) == index,
                  let address = attributes[Int32(NDA_DST)].flatMap(IPv4Address.init(octets:))
            else { return nil }
            let mac = attributes[Int32(NDA_LLADDR)].flatMap { MACAddress(bytes: $0) }
            let extendedFlags = attributes[Int32(NDA_FLAGS_EXT)].map { $0.count >= 4 ? $0.read(UInt32.self, at: 0) : 0 } ?? 0
            return (address, mac, header.read(UInt16.self, at: 8), extendedFlags & UInt32(NTF_EXT_MANAGED) != 0)
        }
    }
}
