import Foundation

/// Leases in the Kubernetes API, as flanneld's `--kube-subnet-mgr` keeps them (v0.20.2's
/// `subnet/kube`): a Node's lease is its `spec.podCIDR`, given by kube-controller-manager, and
/// its node's `backend-type`, `backend-data` and `public-ip` annotations, written by the
/// node's own daemon with `kube-subnet-manager: "true"`. Pure: the Node comes in as JSON and
/// what to write goes out as JSON.
public struct KubeAnnotations: Sendable, Equatable {
    public let subnetKubeManaged: String
    public let backendData: String
    public let backendType: String
    public let publicIP: String
    public let publicIPOverwrite: String

    public static let defaultPrefix = "flannel.alpha.coreos.com"

    /// The keys under `--kube-annotation-prefix`, formed as flanneld forms them: a prefix with no
    /// slash gets one; one that ends in neither `/` nor `-` gets a `-`.
    public init(prefix: String = KubeAnnotations.defaultPrefix) throws(KubeNodeProblem) {
        var prefix = prefix
        let slashes = prefix.filter { $0 == "/" }.count
        guard slashes <= 1 else { throw KubeNodeProblem("--kube-annotation-prefix \(prefix): at most one slash, as in example.com/flannel") }
        if slashes == 0 { prefix += "/" }
        if !prefix.hasSuffix("/") && !prefix.hasSuffix("-") { prefix += "-" }
        let domain = prefix[..<prefix.firstIndex(of: "/")!]
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789_-.")
        guard domain.contains("."), domain.allSatisfy(allowed.contains), !domain.hasPrefix("."), !domain.hasSuffix("."),
              prefix[prefix.index(after: prefix.firstIndex(of: "/")!)...].allSatisfy(allowed.contains) else {
            throw KubeNodeProblem("--kube-annotation-prefix \(prefix): must be a domain name and an optional name, lowercase, as flannel.alpha.coreos.com")
        }
        subnetKubeManaged = prefix + "kube-subnet-manager"
        backendData = prefix + "backend-data"
        backendType = prefix + "backend-type"
        publicIP = prefix + "public-ip"
        publicIPOverwrite = prefix + "public-ip-overwrite"
    }
}

/// What Weft reads of a Node.
public struct KubeNode: Sendable, Equatable {
    public var name: String
    public var resourceVersion: String
    /// `metadata.creationTimestamp`, in seconds since 1970: a Node's age, which settles an overlap.
    public var created: Int64
    public var podCIDR: String?
    public var podCIDRs: [String]
    public var annotations: [String: String]

    public init(name: String, resourceVersion: String = "", created: Int64 = 0, podCIDR: String? = nil, podCIDRs: [String] = [],
                annotations: [String: String] = [:]) {
        self.name = name
        self.resourceVersion = resourceVersion
        self.created = created
        self.podCIDR = podCIDR
        self.podCIDRs = podCIDRs
        self.annotations = annotations
    }

    /// Reads a Node object of the API.
    public init(json: JSONValue) throws(KubeNodeProblem) {
        guard case .object(let metadata)? = json.member("metadata")?.value, case .string(let name)? = metadata["name"] else {
            throw KubeNodeProblem("an object with no metadata.name is not a Node")
        }
        self.name = name
        if case .string(let version)? = metadata["resourceVersion"] { resourceVersion = version } else { resourceVersion = "" }
        if case .string(let stamp)? = metadata["creationTimestamp"], let date = ISO8601DateFormatter().date(from: stamp) {
            created = Int64(date.timeIntervalSince1970)
        } else {
            created = 0
        }
        annotations = [:]
        if case .object(let members)? = metadata["annotations"] {
            for (key, value) in members { if case .string(let text) = value { annotations[key] = text } }
        }
        podCIDR = nil
        podCIDRs = []
        if case .object(let spec)? = json.member("spec")?.value {
            if case .string(let cidr)? = spec["podCIDR"], !cidr.isEmpty { podCIDR = cidr }
            if case .array(let cidrs)? = spec["podCIDRs"] {
                podCIDRs = cidrs.compactMap { if case .string(let text) = $0 { text } else { nil } }
            }
        }
    }

    /// The IPv4 podCIDR, as flanneld picks it: `spec.podCIDRs`' IPv4 entry, else `spec.podCIDR`.
    /// Nil while the controller manager has not given one.
    public func ipv4PodCIDR() throws(KubeNodeProblem) -> IPv4Prefix? {
        let candidates = podCIDRs.isEmpty ? (podCIDR.map { [$0] } ?? []) : podCIDRs
        guard candidates.count < 3 else { throw KubeNodeProblem("node \(name): spec.podCIDRs \(candidates) holds more than one IPv4 and one IPv6 range") }
        for text in candidates where !text.contains(":") {
            guard let prefix = IPv4Prefix(text) else {
                throw KubeNodeProblem("node \(name): spec.podCIDR \(text) is not an IPv4 network such as 10.244.1.0/24")
            }
            return prefix
        }
        return nil
    }
}

/// Why a Node's lease cannot be read or written.
public struct KubeNodeProblem: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public enum KubeNodeLease {
    /// A peer Node's lease, as flanneld reads it: nil for a Node no subnet manager has taken
    /// (no `kube-subnet-manager: "true"`, or no podCIDR yet), which flanneld ignores too; an
    /// error naming the Node and the annotation for one whose annotations cannot be a lease.
    /// The lease then goes through the same planner checks as a lease from etcd.
    public static func lease(of node: KubeNode, _ keys: KubeAnnotations) -> Result<PeerLease, KubeNodeProblem>? {
        guard node.annotations[keys.subnetKubeManaged] == "true" else { return nil }
        let subnet: IPv4Prefix?
        do {
            subnet = try node.ipv4PodCIDR()
        } catch {
            return .failure(error)
        }
        guard let subnet else { return nil }
        let ipText = node.annotations[keys.publicIP] ?? ""
        guard let publicIP = IPv4Address(ipText) else {
            return .failure(KubeNodeProblem("node \(node.name): annotation \(keys.publicIP) \"\(ipText)\" is not an IPv4 address"))
        }
        let dataText = node.annotations[keys.backendData] ?? "null"
        let data: JSONValue
        do {
            data = try JSONValue.parse(dataText)
        } catch {
            return .failure(KubeNodeProblem("node \(node.name): annotation \(keys.backendData) is not JSON: \(error)"))
        }
        // The etcd value's shape, read by the one decoder, so a Node's lease is checked as an etcd one is.
        let value = JSONValue.object(["PublicIP": .string(publicIP.description), "BackendType": .string(node.annotations[keys.backendType] ?? ""),
                                      "BackendData": data])
        do {
            let attributes = try LeaseAttributes.parse(Data(value.serialized().utf8))
            return .success(PeerLease(Lease(subnet: subnet, attributes: attributes), since: node.created))
        } catch {
            return .failure(KubeNodeProblem("node \(node.name): \(error.reason)"))
        }
    }

    /// The `backend-data` annotation flanneld writes: Go's JSON of the backend's data (`null` for host-gw).
    public static func backendDataAnnotation(_ attributes: LeaseAttributes) -> String {
        (attributes.backendData ?? .null).serialized(keyOrder: ["VNI", "VtepMAC"])
    }

    /// The strategic-merge patch of `nodes/<name>/status` that makes the own Node advertise
    /// `attributes`, as flanneld's AcquireLease writes it, or nil when the Node already does. The
    /// public IP a `public-ip-overwrite` annotation names wins over the node's own, as in flanneld.
    public static func annotationPatch(for node: KubeNode, advertising attributes: LeaseAttributes, _ keys: KubeAnnotations) -> JSONValue? {
        let overwrite = node.annotations[keys.publicIPOverwrite].flatMap { $0.isEmpty ? nil : $0 }
        let wanted: [String: String] = [
            keys.backendType: attributes.backendType,
            keys.backendData: backendDataAnnotation(attributes),
            keys.publicIP: overwrite ?? attributes.publicIP.description,
            keys.subnetKubeManaged: "true",
        ]
        let changed = wanted.filter { node.annotations[$0.key] != $0.value }
        guard !changed.isEmpty else { return nil }
        return .object(["metadata": .object(["annotations": .object(changed.mapValues(JSONValue.string))])])
    }

    /// The public IP the node advertises: `public-ip-overwrite` when its Node has one, as flanneld reads it.
    public static func advertisedPublicIP(_ node: KubeNode, own: IPv4Address, _ keys: KubeAnnotations) -> IPv4Address {
        node.annotations[keys.publicIPOverwrite].flatMap(IPv4Address.init) ?? own
    }

    /// The status patch flanneld's CompleteLease sends: `NetworkUnavailable` false, reason `FlannelIsUp`.
    public static func networkAvailablePatch(at date: Date) -> JSONValue {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        let now = JSONValue.string(formatter.string(from: date))
        return .object(["status": .object(["conditions": .array([.object([
            "type": .string("NetworkUnavailable"), "status": .string("False"), "reason": .string("FlannelIsUp"),
            "message": .string("Flannel is running on this node"), "lastTransitionTime": now, "lastHeartbeatTime": now,
        ])])])])
    }

    /// Why the node cannot start yet while its Node has no podCIDR, and what fixes it.
    public static func waitingForPodCIDR(_ node: String) -> String {
        "node \(node) has no spec.podCIDR yet: kube-controller-manager gives one with --allocate-node-cidrs=true and --cluster-cidr "
            + "(kubeadm: init --pod-network-cidr), or set it on the Node; waiting for it"
    }
}
