import Foundation

/// What a node publishes about itself in its lease: Flannel's `LeaseAttrs`, with the
/// same JSON field names and types so that Weft and Flannel nodes read each other.
public struct LeaseAttributes: Sendable, Equatable {
    /// The node's underlay address: VXLAN's outer destination, host-gw's next hop.
    public var publicIP: IPv4Address
    /// Flannel's dual-stack field, kept as found; Weft runs IPv4 only.
    public var publicIPv6: String?
    /// `vxlan`, `host-gw`, or another Flannel backend name.
    public var backendType: String
    /// Backend-specific data, kept verbatim so that unknown backends round-trip.
    public var backendData: JSONValue?
    public var backendV6Data: JSONValue?

    public init(publicIP: IPv4Address, publicIPv6: String? = nil, backendType: String,
                backendData: JSONValue? = nil, backendV6Data: JSONValue? = nil) {
        self.publicIP = publicIP
        self.publicIPv6 = publicIPv6
        self.backendType = backendType
        self.backendData = backendData
        self.backendV6Data = backendV6Data
    }

    /// A VXLAN node's lease: `BackendData` carries the VNI and the VTEP MAC peers must use.
    public static func vxlan(publicIP: IPv4Address, vni: UInt32, vtepMAC: MACAddress) -> LeaseAttributes {
        LeaseAttributes(publicIP: publicIP, backendType: "vxlan",
                        backendData: .object(["VNI": .integer(Int64(vni)), "VtepMAC": .string(vtepMAC.description)]))
    }

    /// A host-gw node's lease: no `BackendData`.
    public static func hostGateway(publicIP: IPv4Address) -> LeaseAttributes {
        LeaseAttributes(publicIP: publicIP, backendType: "host-gw")
    }

    /// The VXLAN data, when this is a VXLAN lease with a well-formed `BackendData`.
    public var vxlan: VXLANLeaseData? {
        guard backendType == "vxlan", let data = backendData,
              case .integer(let vni)? = data.member("VNI")?.value, (0...0xFF_FFFF).contains(vni),
              case .string(let macText)? = data.member("VtepMAC")?.value, let mac = MACAddress(macText)
        else { return nil }
        return VXLANLeaseData(vni: UInt32(vni), vtepMAC: mac)
    }

    /// Flannel's JSON, in the field order Go writes it.
    public func serialized() -> String {
        var members: [String: JSONValue] = [
            "PublicIP": .string(publicIP.description),
            "PublicIPv6": publicIPv6.map(JSONValue.string) ?? .null,
            "BackendType": .string(backendType),
        ]
        members["BackendData"] = backendData
        members["BackendV6Data"] = backendV6Data
        return JSONValue.object(members).serialized(keyOrder: [
            "PublicIP", "PublicIPv6", "BackendType", "BackendData", "BackendV6Data", "VNI", "VtepMAC",
        ])
    }

    /// Reads a lease value as Flannel writes it.
    public static func parse(_ data: Data) throws(LeaseFormatError) -> LeaseAttributes {
        let document: JSONValue
        do {
            document = try JSONValue.parse(data)
        } catch {
            throw LeaseFormatError(reason: "\(error)")
        }
        guard case .object = document else {
            throw LeaseFormatError(reason: "the value is \(document.typeName), not a JSON object")
        }
        guard case .string(let ipText)? = document.member("PublicIP")?.value, let publicIP = IPv4Address(ipText) else {
            throw LeaseFormatError(reason: "PublicIP is missing or not an IPv4 address")
        }
        var publicIPv6: String?
        switch document.member("PublicIPv6")?.value {
        case nil, .null?: publicIPv6 = nil
        case .string(let text)?: publicIPv6 = text
        case let other?: throw LeaseFormatError(reason: "PublicIPv6 is \(other.typeName), not a string or null")
        }
        var backendType = ""
        switch document.member("BackendType")?.value {
        case nil: break
        case .string(let text)?: backendType = text
        case let other?: throw LeaseFormatError(reason: "BackendType is \(other.typeName), not a string")
        }
        let backendData = document.member("BackendData")?.value
        let attributes = LeaseAttributes(
            publicIP: publicIP, publicIPv6: publicIPv6, backendType: backendType,
            backendData: backendData == .null ? nil : backendData,
            backendV6Data: document.member("BackendV6Data")?.value)
        if backendType == "vxlan", attributes.vxlan == nil {
            throw LeaseFormatError(reason: "a vxlan lease needs BackendData with a numeric VNI and a VtepMAC such as \"a6:12:34:56:78:9a\"")
        }
        return attributes
    }
}

/// The decoded `BackendData` of a VXLAN lease.
public struct VXLANLeaseData: Sendable, Equatable {
    public var vni: UInt32
    public var vtepMAC: MACAddress

    public init(vni: UInt32, vtepMAC: MACAddress) {
        self.vni = vni
        self.vtepMAC = vtepMAC
    }
}

/// A lease value that is not Flannel's lease JSON.
public struct LeaseFormatError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
}
