import Foundation

/// Reads Flannel's `net-conf.json` the way flanneld does (keys match case-insensitively,
/// Go's type rules, Flannel's defaults and bounds) and collects every problem rather
/// than stopping at the first.
public enum NetworkConfigParser {
    /// Backend types Flannel knows that Weft does not implement.
    static let flannelOnlyBackends: Set<String> = [
        "udp", "ipip", "ipsec", "wireguard", "alloc", "extension",
        "gce", "aws-vpc", "ali-vpc", "tencent-vpc",
    ]
    static let topLevelKeys = [
        "Network", "SubnetLen", "SubnetMin", "SubnetMax", "Backend",
        "EnableIPv4", "EnableIPv6", "EnableNFTables",
        "IPv6Network", "IPv6SubnetLen", "IPv6SubnetMin", "IPv6SubnetMax",
    ]
    static let vxlanKeys = ["Type", "VNI", "Port", "DirectRouting", "MTU", "GBP", "Learning", "MacPrefix"]

    public static func parse(_ text: String) throws(NetworkConfigError) -> ParsedNetworkConfig {
        try parse(Data(text.utf8))
    }

    public static func parse(_ data: Data) throws(NetworkConfigError) -> ParsedNetworkConfig {
        let document: JSONValue
        do {
            document = try JSONValue.parse(data)
        } catch {
            throw NetworkConfigError(problems: [
                ConfigProblem(field: "(document)", value: nil, rule: "\(error) A net-conf.json is one JSON object."),
            ])
        }
        guard case .object = document else {
            throw NetworkConfigError(problems: [
                ConfigProblem(field: "(document)", value: document.typeName,
                              rule: "must be a JSON object such as {\"Network\":\"10.244.0.0/16\",\"Backend\":{\"Type\":\"vxlan\"}}"),
            ])
        }
        var reader = Reader()
        let config = reader.read(document)
        guard let config, reader.problems.isEmpty else {
            throw NetworkConfigError(problems: reader.problems)
        }
        return ParsedNetworkConfig(config: config, warnings: reader.warnings)
    }

    /// Walks the document, recording problems and warnings as it goes.
    struct Reader {
        var problems: [ConfigProblem] = []
        var warnings: [String] = []

        mutating func problem(_ field: String, _ value: JSONValue?, _ rule: String) {
            problems.append(ConfigProblem(field: field, value: value.map(Self.show), rule: rule))
        }

        static func show(_ value: JSONValue) -> String {
            switch value {
            case .object, .array: value.typeName
            default: value.serialized()
            }
        }

        mutating func read(_ document: JSONValue) -> NetworkConfig? {
            warnAboutUnknownKeys(in: document, known: NetworkConfigParser.topLevelKeys, path: "")
            checkAddressFamilies(document)

            let network = readNetwork(document)
            let subnetLength = readSubnetLength(document, network: network)
            var subnetMin: IPv4Address?
            var subnetMax: IPv4Address?
            if let network, let subnetLength {
                let size = UInt32(1) << UInt32(32 - subnetLength)
                // The first subnet is skipped: its network address would be the whole
                // network's, and a host given it conflicts with the network address.
                subnetMin = readBound(document, "SubnetMin", network: network, subnetLength: subnetLength,
                                      default: IPv4Address(network.network.value + size))
                subnetMax = readBound(document, "SubnetMax", network: network, subnetLength: subnetLength,
                                      default: IPv4Address(network.lastAddress.value - size + 1))
                if let low = subnetMin, let high = subnetMax, low > high {
                    problem("SubnetMin", .string(low.description),
                            "must not be above SubnetMax (\(high)); no subnet could ever be handed out")
                }
            } else {
                // Without a usable Network the bounds cannot be checked, but their types can.
                for name in ["SubnetMin", "SubnetMax"] {
                    if case let (key, value)? = document.member(name), !Self.isAddressString(value) {
                        problem(key, value, "must be an IPv4 address string such as \"10.244.1.0\"")
                    }
                }
            }
            let backend = readBackend(document)
            let enableNFTables = readEnableNFTables(document)
            guard let network, let subnetLength, let subnetMin, let subnetMax, let backend else { return nil }
            return NetworkConfig(network: network, subnetLength: subnetLength,
                                 subnetMin: subnetMin, subnetMax: subnetMax, backend: backend, enableNFTables: enableNFTables)
        }

        mutating func warnAboutUnknownKeys(in object: JSONValue, known: [String], path: String) {
            guard case .object(let members) = object else { return }
            let knownFolded = Set(known.map { $0.lowercased() })
            for key in members.keys.sorted() where !knownFolded.contains(key.lowercased()) {
                warnings.append("\(path)\(key): unknown key, ignored (Flannel ignores it too); check its spelling")
            }
        }

        mutating func checkAddressFamilies(_ document: JSONValue) {
            if case let (key, value)? = document.member("EnableIPv4") {
                switch value {
                case .bool(false): problem(key, value, "Weft runs IPv4 overlays only; remove it or set it to true")
                case .bool: break
                default: problem(key, value, "must be true or false")
                }
            }
            if case let (key, value)? = document.member("EnableIPv6") {
                switch value {
                case .bool(true): problem(key, value, "Weft does not support IPv6 overlays yet; remove it or set it to false")
                case .bool: break
                default: problem(key, value, "must be true or false")
                }
            }
        }

        /// `EnableNFTables`: masquerade and forward rules through nftables instead of iptables.
        mutating func readEnableNFTables(_ document: JSONValue) -> Bool {
            guard case let (key, value)? = document.member("EnableNFTables") else { return false }
            guard case .bool(let enabled) = value else {
                problem(key, value, "must be true or false")
                return false
            }
            return enabled
        }

        mutating func readNetwork(_ document: JSONValue) -> IPv4Prefix? {
            guard case let (key, value)? = document.member("Network") else {
                problem("Network", nil, "missing; set it to the cluster's pod CIDR, such as \"10.244.0.0/16\"")
                return nil
            }
            guard case .string(let text) = value, case let (network, hadHostBits)? = IPv4Prefix.parseMasking(text) else {
                problem(key, value, "must be an IPv4 CIDR string such as \"10.244.0.0/16\"")
                return nil
            }
            if hadHostBits {
                warnings.append("\(key): \"\(text)\" has host bits set; read as \(network), as Flannel does")
            }
            guard network.length <= 28 else {
                problem(key, value, "must be a /28 or larger network (a prefix length of 28 or less), to hold at least four subnets")
                return nil
            }
            return network
        }

        static func isAddressString(_ value: JSONValue) -> Bool {
            guard case .string(let text) = value else { return false }
            return IPv4Address(text) != nil
        }

        /// SubnetLen's type is checked even without a Network; its bounds need one.
        mutating func readSubnetLength(_ document: JSONValue, network: IPv4Prefix?) -> Int? {
            let member = document.member("SubnetLen")
            if case let (key, value)? = member, wholeNumber(value) == nil {
                problem(key, value, "must be a whole number (a prefix length such as 24)")
                return nil
            }
            guard let network else { return nil }
            let fallback = network.length <= 22 ? 24 : network.length + 2
            guard case let (key, value)? = member, let length = wholeNumber(value) else { return fallback }
            // Go's zero value: Flannel treats 0 as unset.
            if length == 0 { return fallback }
            guard length <= 30 else {
                problem(key, value, "must be 30 or less: each subnet needs room for a gateway and hosts")
                return nil
            }
            guard length >= network.length + 2 else {
                problem(key, value, "must be at least the Network's prefix length + 2 (\(network.length + 2)), so the network holds at least four subnets")
                return nil
            }
            return Int(length)
        }

        mutating func readBound(_ document: JSONValue, _ name: String, network: IPv4Prefix,
                                subnetLength: Int, default fallback: IPv4Address) -> IPv4Address? {
            guard case let (key, value)? = document.member(name) else { return fallback }
            guard case .string(let text) = value, let address = IPv4Address(text) else {
                problem(key, value, "must be an IPv4 address string such as \"\(fallback)\"")
                return nil
            }
            // Go's zero value again: 0.0.0.0 means unset.
            if address.value == 0 { return fallback }
            guard network.contains(address) else {
                problem(key, value, "must lie inside Network \(network)")
                return nil
            }
            guard address.value & IPv4Prefix.mask(subnetLength) == address.value else {
                let aligned = IPv4Address(address.value & IPv4Prefix.mask(subnetLength))
                problem(key, value, "must be aligned to SubnetLen /\(subnetLength), such as \"\(aligned)\"")
                return nil
            }
            return address
        }

        mutating func readBackend(_ document: JSONValue) -> Backend? {
            guard case let (backendKey, backendValue)? = document.member("Backend") else {
                problem("Backend", nil,
                        "missing; Flannel would pick \"udp\", which Weft does not support: add \"Backend\":{\"Type\":\"vxlan\"}")
                return nil
            }
            guard case .object = backendValue else {
                problem(backendKey, backendValue, "must be an object such as {\"Type\":\"vxlan\"}")
                return nil
            }
            guard case let (typeKey, typeValue)? = backendValue.member("Type") else {
                problem("\(backendKey).Type", nil, "missing; set it to \"vxlan\" or \"host-gw\"")
                return nil
            }
            let field = "\(backendKey).\(typeKey)"
            guard case .string(let typeText) = typeValue else {
                problem(field, typeValue, "must be a string: \"vxlan\" or \"host-gw\"")
                return nil
            }
            // flanneld lower-cases the type before looking the backend up.
            switch typeText.lowercased() {
            case "vxlan":
                return readVXLAN(backendValue, path: backendKey)
            case "host-gw":
                warnAboutUnknownKeys(in: backendValue, known: ["Type"], path: "\(backendKey).")
                return .hostGateway
            case let other where NetworkConfigParser.flannelOnlyBackends.contains(other):
                problem(field, typeValue, "is a Flannel backend that Weft does not support; use \"vxlan\" or \"host-gw\"")
            default:
                problem(field, typeValue, "is not a known backend type; use \"vxlan\" or \"host-gw\"")
            }
            return nil
        }

        mutating func readVXLAN(_ backend: JSONValue, path: String) -> Backend? {
            warnAboutUnknownKeys(in: backend, known: NetworkConfigParser.vxlanKeys, path: "\(path).")
            var options = VXLANOptions()
            var valid = true
            if case let (key, value)? = backend.member("VNI") {
                if let vni = wholeNumber(value), (0...0xFF_FFFF).contains(vni) {
                    options.vni = UInt32(vni)
                } else {
                    problem("\(path).\(key)", value, "must be a whole number from 0 to 16777215 (24 bits)")
                    valid = false
                }
            }
            if case let (key, value)? = backend.member("Port") {
                if let port = wholeNumber(value), (0...65535).contains(port) {
                    options.port = port == 0 ? VXLANOptions.defaultPort : UInt16(port)
                } else {
                    problem("\(path).\(key)", value, "must be a UDP port from 0 to 65535 (0 means \(VXLANOptions.defaultPort))")
                    valid = false
                }
            }
            if case let (key, value)? = backend.member("DirectRouting") {
                if case .bool(let flag) = value {
                    options.directRouting = flag
                } else {
                    problem("\(path).\(key)", value, "must be true or false")
                    valid = false
                }
            }
            if case let (key, value)? = backend.member("MTU") {
                // As current Flannel reads it: the underlay MTU to assume; the tunnel and the
                // pods get 50 bytes less, so the smallest that leaves IPv4's 68 is 118.
                if let mtu = wholeNumber(value), mtu == 0 || (118...65535).contains(mtu) {
                    options.mtu = mtu == 0 ? nil : Int(mtu)
                } else {
                    problem("\(path).\(key)", value, "must be 0 (the interface's MTU) or the underlay MTU to assume, from 118 to 65535 (pods get 50 less)")
                    valid = false
                }
            }
            for name in ["GBP", "Learning"] {
                guard case let (key, value)? = backend.member(name) else { continue }
                switch value {
                case .bool(true):
                    problem("\(path).\(key)", value, "is not supported by Weft; remove it or set it to false")
                    valid = false
                case .bool: break
                default:
                    problem("\(path).\(key)", value, "must be true or false")
                    valid = false
                }
            }
            if case let (key, _)? = backend.member("MacPrefix") {
                warnings.append("\(path).\(key): applies to Windows nodes only; ignored")
            }
            return valid ? .vxlan(options) : nil
        }

        /// An integer as Go's `int` fields accept it: a JSON number with no fraction.
        func wholeNumber(_ value: JSONValue) -> Int64? {
            switch value {
            case .integer(let number): number
            default: nil
            }
        }
    }
}
