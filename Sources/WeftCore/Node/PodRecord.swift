import Foundation

/// What weft-cni keeps on disk for each pod it added (`<dataDir>/<container>.weft-endpoint`):
/// the pod's address, the host side of its veth pair and the pod's own MAC. The daemon reads
/// the records to register the node's pods again, however it was left (its pins torn down,
/// a run of flanneld in between), so weft-cni writes one for every pod, whatever the mode.
public struct PodRecord: Sendable, Equatable {
    public var address: IPv4Address
    public var hostInterface: String
    public var podMAC: MACAddress

    public init(address: IPv4Address, hostInterface: String, podMAC: MACAddress) {
        (self.address, self.hostInterface, self.podMAC) = (address, hostInterface, podMAC)
    }

    /// The file name's suffix, after the container ID.
    public static let fileSuffix = ".weft-endpoint"

    public var rendered: String {
        JSONValue.object(["address": .string(address.description), "hostInterface": .string(hostInterface), "podMAC": .string(podMAC.description)])
            .serialized(keyOrder: ["address", "hostInterface", "podMAC"]) + "\n"
    }

    /// A record as `rendered` writes it, or the address alone, as weft-cni before this one
    /// wrote it (enough for DEL, not to register the pod again).
    public static func parse(_ text: String) throws(PodRecordError) -> (address: IPv4Address, record: PodRecord?) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if let address = IPv4Address(trimmed) { return (address, nil) }
        guard case .object(let members)? = try? JSONValue.parse(trimmed) else { throw PodRecordError("neither an address nor a JSON object") }
        guard case .string(let addressText)? = members["address"], let address = IPv4Address(addressText) else {
            throw PodRecordError("\"address\" is missing or not an IPv4 address")
        }
        guard case .string(let interface)? = members["hostInterface"], !interface.isEmpty, interface.utf8.count < 16,
              !interface.contains("/") else {
            throw PodRecordError("\"hostInterface\" is missing or not an interface name")
        }
        guard case .string(let macText)? = members["podMAC"], let mac = MACAddress(macText) else {
            throw PodRecordError("\"podMAC\" is missing or not a MAC address")
        }
        return (address, PodRecord(address: address, hostInterface: interface, podMAC: mac))
    }
}

public struct PodRecordError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
