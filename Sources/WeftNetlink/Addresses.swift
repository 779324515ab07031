import WeftSystem
import CNetlink
import Glibc
import WeftCore

/// An IPv4 address on an interface, with its prefix length.
public struct InterfaceAddress: Sendable, Equatable {
    public var interfaceIndex: Int32
    public var address: IPv4Address
    public var prefixLength: Int

    public init(interfaceIndex: Int32, address: IPv4Address, prefixLength: Int) {
        self.interfaceIndex = interfaceIndex
        self.address = address
        self.prefixLength = prefixLength
    }

    /// The connected network: the peers that are on-link through this address.
    public var network: IPv4Prefix { IPv4Prefix(masking: address, length: prefixLength) }
}

extension NetlinkSocket {
    static let addressHeaderSize = 8

    static func addressHeader(prefixLength: Int = 0, index: Int32 = 0) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: addressHeaderSize)
        header[0] = UInt8(AF_INET)
        header[1] = UInt8(prefixLength)
        header.write(UInt32(bitPattern: index), at: 4)
        return header
    }

    /// The IPv4 addresses of one interface, or of all when `index` is nil.
    public func addresses(index: Int32? = nil) throws(SystemCallError) -> [InterfaceAddress] {
        let request = NetlinkRequest(type: UInt16(RTM_GETADDR), flags: NLM_F_REQUEST | NLM_F_DUMP,
                                     header: Self.addressHeader(index: index ?? 0))
        return try dump(request, "list", "IPv4 addresses").compactMap(Self.decodeAddress)
            .filter { index == nil || $0.interfaceIndex == index }
    }

    /// Adds an address; one that is already there is left as it is.
    public func addAddress(_ address: InterfaceAddress) throws(SystemCallError) {
        var request = NetlinkRequest(type: UInt16(RTM_NEWADDR), flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
                                     header: Self.addressHeader(prefixLength: address.prefixLength, index: address.interfaceIndex))
        request.append(Int32(IFA_LOCAL), address.address.octets)
        request.append(Int32(IFA_ADDRESS), address.address.octets)
        try perform(request, "add address \(address.address)/\(address.prefixLength) to", "interface \(address.interfaceIndex)")
    }

    public func deleteAddress(_ address: InterfaceAddress) throws(SystemCallError) {
        var request = NetlinkRequest(type: UInt16(RTM_DELADDR), flags: NLM_F_REQUEST | NLM_F_ACK,
                                     header: Self.addressHeader(prefixLength: address.prefixLength, index: address.interfaceIndex))
        request.append(Int32(IFA_LOCAL), address.address.octets)
        try perform(request, "delete address \(address.address)/\(address.prefixLength) from", "interface \(address.interfaceIndex)")
    }

    static func decodeAddress(_ message: NetlinkMessage) -> InterfaceAddress? {
        guard message.type == UInt16(RTM_NEWADDR), message.payload.count >= addressHeaderSize else { return nil }
        let header = message.header(addressHeaderSize)
        guard header[0] == UInt8(AF_INET) else { return nil }
        let attributes = message.attributes(after: addressHeaderSize)
        guard let address = (attributes[Int32(IFA_LOCAL)] ?? attributes[Int32(IFA_ADDRESS)]).flatMap(IPv4Address.init(octets:)) else { return nil }
        return InterfaceAddress(interfaceIndex: Int32(bitPattern: header.read(UInt32.self, at: 4)),
                                address: address, prefixLength: Int(header[1]))
    }
}
