import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WeftCore
import WeftDataplane
import WeftStore

/// `--kube-subnet-mgr`: how to reach the API and which Node is this node's.
public struct KubeSubnetManager: Sendable {
    public let client: KubeClient
    public let nodeName: String
    public let annotations: KubeAnnotations
    /// `--set-node-network-unavailable`: set the Node's `NetworkUnavailable` condition false once ready.
    public let setNodeNetworkUnavailable: Bool
    /// How long the server keeps one watch of Nodes open before the daemon opens the next.
    public var watchSeconds = 300

    public init(client: KubeClient, nodeName: String, annotations: KubeAnnotations, setNodeNetworkUnavailable: Bool = true) {
        self.client = client
        self.nodeName = nodeName
        self.annotations = annotations
        self.setNodeNetworkUnavailable = setNodeNetworkUnavailable
    }

    /// flanneld's default `--net-config-path` in kube mode (kube-flannel.yml mounts its ConfigMap there).
    public static let defaultNetConfigPath = "/etc/kube-flannel/net-conf.json"
}

/// Leases from the Kubernetes API, as flanneld v0.20.2 keeps them: the node's lease is its
/// Node's podCIDR (waited for, with what sets it, while there is none), advertised with
/// flanneld's annotations by a strategic-merge patch of `nodes/<name>/status`; the peers are
/// the Nodes a subnet manager has taken, listed and then watched.
final class KubeLeaseSource: LeaseSource {
    let kube: KubeSubnetManager
    let settings: DaemonSettings
    let state: DaemonState
    let logger: Logger
    private let learnt = Mutex<(own: Lease?, resourceVersion: String, subnets: [String: IPv4Prefix])>((nil, "", [:]))

    init(_ kube: KubeSubnetManager, settings: DaemonSettings, state: DaemonState, logger: Logger) {
        self.kube = kube
        self.settings = settings
        self.state = state
        self.logger = logger
    }

    /// net-conf.json from its file: kube mode has no store to hold it (kube-flannel.yml mounts its ConfigMap there).
    func networkConfig() async throws -> NetworkConfig {
        try NetworkConfigFile.load(settings.netConfigPath ?? KubeSubnetManager.defaultNetConfigPath).config
    }

    func acquire(_ attributes: LeaseAttributes, config: NetworkConfig, previousSubnet: IPv4Prefix?, hostAddresses: Set<IPv4Address>) async throws -> Lease {
        let name = kube.nodeName
        var told = false
        while true {
            let node = try await withStoreRetry("read node \(name) from the Kubernetes API", state: state, logger: logger) {
                do {
                    return try await self.kube.client.node(name)
                } catch KubeError.notFound {
                    // The kubelet registers the Node; until it has, wait as for the API.
                    throw KubeError.unavailable("node \(name) is not registered yet; the kubelet registers it (or NODE_NAME names another node)")
                }
            }
            let cidr: IPv4Prefix?
            do {
                cidr = try node.ipv4PodCIDR()
            } catch {
                throw DaemonError("\(error)")
            }
            guard let cidr else {
                let reason = KubeNodeLease.waitingForPodCIDR(name)
                if !told { logger.warning("\(reason)") }
                told = true
                state.update { $0.storeProblem = reason }
                try await Task.sleep(for: .seconds(1))
                continue
            }
            guard config.network.contains(cidr) else {
                throw DaemonError("node \(name)'s podCIDR \(cidr) is outside the network config's Network \(config.network): give kube-controller-manager --cluster-cidr=\(config.network), or change Network in net-conf.json")
            }
            var advertised = attributes
            advertised.publicIP = KubeNodeLease.advertisedPublicIP(node, own: attributes.publicIP, kube.annotations)
            // The VTEP MAC the Node already advertises, for the same VNI: a restart keeps it.
            if let wanted = attributes.vxlan,
               case .success(let previous)? = KubeNodeLease.lease(of: node, kube.annotations), let held = previous.lease.attributes.vxlan, held.vni == wanted.vni {
                advertised = .vxlan(publicIP: advertised.publicIP, vni: held.vni, vtepMAC: held.vtepMAC)
            }
            if let patch = KubeNodeLease.annotationPatch(for: node, advertising: advertised, kube.annotations) {
                try await withStoreRetry("write node \(name)'s annotations", state: state, logger: logger) {
                    try await self.kube.client.patchNodeStatus(name, patch)
                }
                logger.notice("advertised the lease in the node's annotations", metadata: ["node": "\(name)", "subnet": "\(cidr)"])
            }
            state.update { $0.storeProblem = nil }
            let lease = Lease(subnet: cidr, attributes: advertised)
            learnt.withLock { $0.own = lease }
            return lease
        }
    }

    func listPeers() async throws -> [PeerLease] {
        let (nodes, version) = try await withStoreRetry("list the nodes", state: state, logger: logger) { try await self.kube.client.nodes() }
        let (peers, subnets) = Self.peers(nodes, own: kube.nodeName, kube.annotations, logger: logger)
        learnt.withLock {
            $0.resourceVersion = version
            $0.subnets = subnets
        }
        return peers
    }

    /// The leases of `nodes` but `own`'s, and which Node holds which subnet; an unreadable one is logged, not programmed.
    static func peers(_ nodes: [KubeNode], own: String, _ keys: KubeAnnotations, logger: Logger) -> ([PeerLease], [String: IPv4Prefix]) {
        var peers: [PeerLease] = []
        var subnets: [String: IPv4Prefix] = [:]
        for node in nodes where node.name != own {
            switch KubeNodeLease.lease(of: node, keys) {
            case .success(let peer)?:
                peers.append(peer)
                subnets[node.name] = peer.lease.subnet
            case .failure(let problem)?:
                logger.warning("a node's annotations are not a lease; it is not programmed", metadata: ["problem": "\(problem)"])
            case nil:
                break
            }
        }
        return (peers, subnets)
    }

    func service(supervisor: DataplaneSupervisor) -> any Service {
        let (own, version, subnets) = learnt.withLock { ($0.own!, $0.resourceVersion, $0.subnets) }
        return KubeLeaseService(kube: kube, own: own, resourceVersion: version, subnets: subnets, supervisor: supervisor, state: state, logger: logger)
    }

    func nodeReady() async {
        guard kube.setNodeNetworkUnavailable else { return }
        do {
            try await kube.client.patchNodeStatus(kube.nodeName, KubeNodeLease.networkAvailablePatch(at: Date()))
        } catch {
            logger.error("could not set the node's NetworkUnavailable condition to False; pods may not be scheduled here", metadata: ["error": "\(error)"])
        }
    }
}

/// Follows the Nodes into the supervisor for the daemon's life: a watch from the list's
/// resourceVersion, with bookmarks; when the server ends the stream it watches on from the last
/// version seen, and when that is too old (410 Gone) it lists again and replaces the peer set,
/// so nothing is lost or repeated. The own Node's annotations are written back when another
/// writer changes them, and a podCIDR that changes under the running node is reported (the
/// node keeps its addresses; a restart takes the new range).
struct KubeLeaseService: Service {
    let kube: KubeSubnetManager
    let own: Lease
    let resourceVersion: String
    let subnets: [String: IPv4Prefix]
    let supervisor: DataplaneSupervisor
    let state: DaemonState
    let logger: Logger

    func run() async throws {
        do {
            try await cancellingOnShutdown { try await follow() }
        } catch is CancellationError {
            // Shutdown.
        }
    }

    private func follow() async throws {
        var version = resourceVersion
        var held = subnets
        var retry = StoreRetry()
        while true {
            do {
                for try await event in kube.client.watchNodes(from: version, timeoutSeconds: kube.watchSeconds) {
                    retry.succeeded()
                    version = try await handle(event, held: &held) ?? version
                }
                try Task.checkCancellation()
            } catch is CancellationError {
                throw CancellationError()
            } catch KubeError.expired {
                logger.notice("the node watch fell too far behind (410 Gone); listing the nodes again")
                let (nodes, listed) = try await withStoreRetry("list the nodes", state: state, logger: logger) { try await kube.client.nodes() }
                let (peers, subnets) = KubeLeaseSource.peers(nodes, own: kube.nodeName, kube.annotations, logger: logger)
                supervisor.replace(PeerSet(peers))
                held = subnets
                version = listed
                if let ours = nodes.first(where: { $0.name == kube.nodeName }) { try await defend(ours) }
            } catch {
                try await retry.wait(after: error, "watch the nodes", logger: logger, state: state)
            }
        }
    }

    /// Acts on one event; returns the resourceVersion it brings.
    private func handle(_ event: KubeNodeEvent, held: inout [String: IPv4Prefix]) async throws -> String? {
        switch event {
        case .bookmark(let version):
            return version
        case .added(let node), .modified(let node):
            if node.name == kube.nodeName {
                try await defend(node)
            } else {
                switch KubeNodeLease.lease(of: node, kube.annotations) {
                case .success(let peer)?:
                    if let previous = held[node.name], previous != peer.lease.subnet { supervisor.remove(previous) }
                    held[node.name] = peer.lease.subnet
                    supervisor.put(peer.lease, revision: peer.since)
                case .failure(let problem)?:
                    logger.warning("a node's annotations are not a lease; it is not programmed", metadata: ["problem": "\(problem)"])
                    if let previous = held.removeValue(forKey: node.name) { supervisor.remove(previous) }
                case nil:
                    if let previous = held.removeValue(forKey: node.name) { supervisor.remove(previous) }
                }
            }
            count(event)
            return node.resourceVersion
        case .deleted(let node):
            if let previous = held.removeValue(forKey: node.name) { supervisor.remove(previous) }
            count(event)
            return node.resourceVersion
        }
    }

    private func count(_ event: KubeNodeEvent) {
        state.update { $0.leaseEvents += 1 }
        if case .deleted = event { state.metrics.recordLeaseEvent("delete") } else { state.metrics.recordLeaseEvent("put") }
    }

    /// The own Node: its annotations back if another writer changed them; a changed podCIDR reported.
    private func defend(_ node: KubeNode) async throws {
        if let cidr = try? node.ipv4PodCIDR(), cidr != own.subnet {
            let problem = "node \(node.name)'s podCIDR changed from \(own.subnet) to \(cidr) while the node runs; its pods keep \(own.subnet) until the daemon is restarted (and the pods recreated)"
            logger.error("\(problem)")
            state.update { $0.storeProblem = problem }
            return
        }
        guard let patch = KubeNodeLease.annotationPatch(for: node, advertising: own.attributes, kube.annotations) else { return }
        logger.warning("our node's annotations were changed by another writer; writing ours back", metadata: ["node": "\(node.name)"])
        state.update { $0.leaseDefended += 1 }
        try await withStoreRetry("write node \(node.name)'s annotations", state: state, logger: logger) {
            try await kube.client.patchNodeStatus(node.name, patch)
        }
    }
}
