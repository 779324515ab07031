import Foundation

/// `/run/flannel/subnet.env`: what the node daemon tells the CNI plugin.
///
///     FLANNEL_NETWORK=10.244.0.0/16
///     FLANNEL_SUBNET=10.244.1.1/24
///     FLANNEL_MTU=1450
///     FLANNEL_IPMASQ=true
///     WEFT_DATAPLANE=bpf
///     WEFT_PIN_DIR=/sys/fs/bpf/weft
///
/// The `WEFT_` lines are how the daemon tells weft-cni which dataplane the node runs, and
/// where its pins are: Flannel's own CNI plugin skips keys it does not know, and a file
/// flanneld wrote has none (the kernel path: nothing for weft-cni to register).
public struct SubnetEnv: Sendable, Equatable {
    public static let defaultPath = "/run/flannel/subnet.env"

    public var network: IPv4Prefix
    /// The node's subnet. Written as its first host address (the bridge gateway) and length.
    public var subnet: IPv4Prefix
    public var mtu: Int
    public var ipMasquerade: Bool
    /// The dataplane the node's daemon runs (`WEFT_DATAPLANE`); nil in a file flanneld wrote.
    public var dataplane: DataplaneMode?
    /// The BPF dataplane's pin directory (`WEFT_PIN_DIR`).
    public var pinDirectory: String?

    public init(network: IPv4Prefix, subnet: IPv4Prefix, mtu: Int, ipMasquerade: Bool, dataplane: DataplaneMode? = nil, pinDirectory: String? = nil) {
        self.network = network
        self.subnet = subnet
        self.mtu = mtu
        self.ipMasquerade = ipMasquerade
        self.dataplane = dataplane
        self.pinDirectory = pinDirectory
    }

    public func rendered() -> String {
        """
        FLANNEL_NETWORK=\(network)
        FLANNEL_SUBNET=\(subnet.firstHost)/\(subnet.length)
        FLANNEL_MTU=\(mtu)
        FLANNEL_IPMASQ=\(ipMasquerade)

        """ + (dataplane.map { "WEFT_DATAPLANE=\($0.rawValue)\n" } ?? "") + (pinDirectory.map { "WEFT_PIN_DIR=\($0)\n" } ?? "")
    }

    /// Reads the file as Flannel's CNI plugin does: `KEY=VALUE` lines; blank lines and
    /// `#` comments are skipped; other keys are ignored.
    public static func parse(_ text: String) throws(SubnetEnvError) -> SubnetEnv {
        var values: [String: (line: Int, value: String)] = [:]
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw SubnetEnvError(line: index + 1, message: "\"\(line)\" is not KEY=VALUE")
            }
            values[String(line[..<equals])] = (index + 1, String(line[line.index(after: equals)...]))
        }
        func required(_ key: String) throws(SubnetEnvError) -> (line: Int, value: String) {
            guard let entry = values[key] else {
                throw SubnetEnvError(line: nil, message: "\(key) is missing")
            }
            return entry
        }
        let networkEntry = try required("FLANNEL_NETWORK")
        guard let network = IPv4Prefix(networkEntry.value) else {
            throw SubnetEnvError(line: networkEntry.line, message: "FLANNEL_NETWORK=\(networkEntry.value) is not an IPv4 network such as 10.244.0.0/16")
        }
        let subnetEntry = try required("FLANNEL_SUBNET")
        guard case let (subnet, _)? = IPv4Prefix.parseMasking(subnetEntry.value) else {
            throw SubnetEnvError(line: subnetEntry.line, message: "FLANNEL_SUBNET=\(subnetEntry.value) is not an address and prefix such as 10.244.1.1/24")
        }
        let mtuEntry = try required("FLANNEL_MTU")
        guard let mtu = Int(mtuEntry.value), (68...65535).contains(mtu) else {
            throw SubnetEnvError(line: mtuEntry.line, message: "FLANNEL_MTU=\(mtuEntry.value) is not an MTU from 68 to 65535")
        }
        let masqueradeEntry = try required("FLANNEL_IPMASQ")
        guard let ipMasquerade = Bool(masqueradeEntry.value) else {
            throw SubnetEnvError(line: masqueradeEntry.line, message: "FLANNEL_IPMASQ=\(masqueradeEntry.value) is not true or false")
        }
        var dataplane: DataplaneMode?
        if let entry = values["WEFT_DATAPLANE"] {
            guard let mode = DataplaneMode(rawValue: entry.value) else {
                throw SubnetEnvError(line: entry.line, message: "WEFT_DATAPLANE=\(entry.value) is not bpf or kernel; the Weft daemon writes this file, restart it")
            }
            dataplane = mode
        }
        var pinDirectory: String?
        if let entry = values["WEFT_PIN_DIR"] {
            guard entry.value.hasPrefix("/") else {
                throw SubnetEnvError(line: entry.line, message: "WEFT_PIN_DIR=\(entry.value) is not an absolute path; the Weft daemon writes this file, restart it")
            }
            pinDirectory = entry.value
        }
        return SubnetEnv(network: network, subnet: subnet, mtu: mtu, ipMasquerade: ipMasquerade, dataplane: dataplane, pinDirectory: pinDirectory)
    }
}

/// A `subnet.env` that cannot be read.
public struct SubnetEnvError: Error, Sendable, Equatable, CustomStringConvertible {
    public let line: Int?
    public let message: String

    public var description: String {
        if let line { "subnet.env line \(line): \(message)" } else { "subnet.env: \(message)" }
    }
}
