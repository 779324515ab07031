import Foundation
import WeftCore

/// What the bridge plugin's result says about the pod, for the BPF endpoint map: its
/// IPv4 address, its own MAC, and the host side of its veth pair; the record weft-cni keeps.
public typealias PodAttachment = PodRecord

extension PodRecord {
    public init(address: IPv4Address, podMAC: MACAddress, hostInterface: String) {
        self.init(address: address, hostInterface: hostInterface, podMAC: podMAC)
    }

    /// Reads a result in any supported version (0.3.x, 0.4.0 and 1.0.0 share this shape).
    public static func from(result data: Data, containerInterface: String, bridge: String) throws(CNIError) -> PodAttachment {
        guard case .object(let result)? = try? JSONValue.parse(data),
              case .array(let interfaces)? = result["interfaces"], case .array(let ips)? = result["ips"]
        else { throw CNIError(CNIError.decodingFailure, "the delegate's result has no interfaces or ips", details: String(decoding: data, as: UTF8.self)) }
        var podIndex: Int?
        var podMAC: MACAddress?
        var hostInterface: String?
        for (index, entry) in interfaces.enumerated() {
            guard case .object(let interface) = entry, case .string(let name)? = interface["name"] else { continue }
            let mac: MACAddress? = if case .string(let text)? = interface["mac"] { MACAddress(text) } else { nil }
            if case .string(let sandbox)? = interface["sandbox"], !sandbox.isEmpty, name == containerInterface {
                podIndex = index
                podMAC = mac
            } else if name != bridge, interface["sandbox"] == nil || interface["sandbox"] == .string("") {
                hostInterface = name
            }
        }
        for entry in ips {
            guard case .object(let ip) = entry, case .string(let cidr)? = ip["address"],
                  let address = IPv4Address(cidr.split(separator: "/").first ?? "") else { continue }
            if case .integer(let interface)? = ip["interface"], let podIndex, Int(interface) != podIndex { continue }
            guard let podMAC, let hostInterface else { break }
            return PodAttachment(address: address, podMAC: podMAC, hostInterface: hostInterface)
        }
        throw CNIError(CNIError.decodingFailure, "the delegate's result does not name the pod's IPv4 address, MAC and host veth",
                       details: String(decoding: data, as: UTF8.self))
    }
}
