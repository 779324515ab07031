import Foundation
import WeftCore

/// The network config a Flannel CNI user writes (`type` aside), and Weft's additions:
/// `{"cniVersion":"1.0.0","name":"cbr0","type":"weft-cni","delegate":{...},
///   "subnetFile":"/run/flannel/subnet.env","dataDir":"/var/lib/cni/flannel","pinDir":"/run/weft/bpf",
///   "ipamDataDir":"/var/lib/cni/networks"}`.
public struct CNIConfig: Sendable {
    public static let supportedVersions = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]

    public var cniVersion: String
    public var name: String
    public var delegate: [String: JSONValue]
    public var subnetFile: String
    public var dataDirectory: String
    public var pinDirectory: String
    /// Where host-local keeps its allocations (its `dataDir`); nil keeps its default.
    public var ipamDataDirectory: String?
    /// The config's own `ipam`, which Flannel's plugin takes as the start of the delegate's:
    /// its type (host-local unless set), its other keys and its routes are kept.
    public var ipam: [String: JSONValue] = [:]

    public static func parse(_ data: Data) throws(CNIError) -> CNIConfig {
        let document: JSONValue
        do {
            document = try JSONValue.parse(data)
        } catch {
            throw CNIError(CNIError.decodingFailure, "the network config on stdin is not JSON", details: "\(error)")
        }
        guard case .object(let members) = document else {
            throw CNIError(CNIError.invalidConfig, "the network config must be a JSON object")
        }
        guard case .string(let version)? = members["cniVersion"] else {
            throw CNIError(CNIError.invalidConfig, "cniVersion is missing", details: "set it to one of \(supportedVersions.joined(separator: ", "))")
        }
        guard supportedVersions.contains(version) else {
            throw CNIError(CNIError.incompatibleVersion, "cniVersion \(version) is not supported",
                           details: "weft-cni speaks \(supportedVersions.joined(separator: ", "))")
        }
        guard case .string(let name)? = members["name"], !name.isEmpty else {
            throw CNIError(CNIError.invalidConfig, "name is missing", details: "the network config needs a name, e.g. \"cbr0\"")
        }
        var delegate: [String: JSONValue] = [:]
        switch members["delegate"] {
        case nil, .null?: break
        case .object(let object)?: delegate = object
        default: throw CNIError(CNIError.invalidConfig, "delegate must be a JSON object", details: "e.g. {\"hairpinMode\": true}")
        }
        func string(_ key: String, _ fallback: String) throws(CNIError) -> String {
            switch members[key] {
            case nil, .null?: return fallback
            case .string(let text)?: return text
            default: throw CNIError(CNIError.invalidConfig, "\(key) must be a string path")
            }
        }
        var ipam: [String: JSONValue] = [:]
        switch members["ipam"] {
        case nil, .null?: break
        case .object(let object)?:
            switch object["routes"] {
            case nil, .array?: ipam = object
            default: throw CNIError(CNIError.invalidConfig, "ipam.routes must be an array of routes", details: "e.g. [{\"dst\": \"10.96.0.0/12\"}]")
            }
        default: throw CNIError(CNIError.invalidConfig, "ipam must be a JSON object", details: "e.g. {\"type\": \"host-local\"}")
        }
        return CNIConfig(cniVersion: version, name: name, delegate: delegate,
                         subnetFile: try string("subnetFile", SubnetEnv.defaultPath),
                         dataDirectory: try string("dataDir", "/var/lib/cni/flannel"),
                         pinDirectory: try string("pinDir", "/run/weft/bpf"),
                         ipamDataDirectory: members["ipamDataDir"] == nil ? nil : try string("ipamDataDir", ""), ipam: ipam)
    }

    /// The config the delegate plugin gets, as Flannel's plugin renders it: the `bridge`
    /// plugin (unless the user chose another) on `cni0` as the pods' gateway, with the MTU
    /// and masquerading from subnet.env, and host-local IPAM over this node's subnet with a
    /// route to the whole cluster network. What the user set in `delegate` wins; the
    /// config's `ipam` is the start of the delegate's, as in Flannel's plugin (its ranges are
    /// always this node's subnet, and the cluster route is added to its own routes).
    public func delegateConfig(_ env: SubnetEnv) -> [String: JSONValue] {
        var config = delegate
        config["name"] = .string(name)
        config["cniVersion"] = .string(cniVersion)
        if config["type"] == nil { config["type"] = .string("bridge") }
        if config["type"] == .string("bridge") {
            if config["isGateway"] == nil { config["isGateway"] = .bool(true) }
            if config["bridge"] == nil { config["bridge"] = .string("cni0") }
        }
        if config["ipMasq"] == nil { config["ipMasq"] = .bool(!env.ipMasquerade) }
        if config["mtu"] == nil { config["mtu"] = .integer(Int64(env.mtu)) }
        var ipam = self.ipam
        if ipam["type"] == nil { ipam["type"] = .string("host-local") }
        ipam["ranges"] = .array([.array([.object(["subnet": .string(env.subnet.description)])])])
        let ownRoutes: [JSONValue] = if case .array(let routes)? = ipam["routes"] { routes } else { [] }
        // Flannel leaves `gw` out (host-local fills in the gateway); naming it gives the same
        // route and lets the bridge plugin's CHECK find it, which it cannot without.
        ipam["routes"] = .array(ownRoutes + [.object(["dst": .string(env.network.description), "gw": .string(env.subnet.firstHost.description)])])
        if let ipamDataDirectory, ipam["dataDir"] == nil { ipam["dataDir"] = .string(ipamDataDirectory) }
        config["ipam"] = .object(ipam)
        return config
    }
}

/// JSON text with keys in a fixed order, for the CNI's stdout.
enum JSONWriter {
    static func object(_ members: [(String, JSONValue)]) -> String {
        JSONValue.object(Dictionary(uniqueKeysWithValues: members)).serialized(keyOrder: members.map(\.0))
    }
}
