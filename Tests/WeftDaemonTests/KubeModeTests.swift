import Foundation
import Testing
import WeftCore
import WeftDaemon
import WeftStore
import WeftTestSupport

/// The daemon assembled from test parts, in `--kube-subnet-mgr` mode against the real
/// kube-apiserver and kube-controller-manager, as the user kube-flannel.yml's ClusterRole binds.
final class KubeComposedDaemon: @unchecked Sendable {
    let files: TemporaryDirectory
    let dataplanes = RecordingDataplanes()
    let log = LogRecorder()
    let daemon: NodeDaemon
    private var task: Task<Void, any Error>?

    /// - Parameter watchSeconds: how long each watch of Nodes stays open.
    init(_ plane: KubeControlPlane, node: String, kubeconfig: String? = nil, backend: String = #"{"Type":"vxlan"}"#, watchSeconds: Int = 300) throws {
        files = try TemporaryDirectory()
        var settings = DaemonSettings()
        settings.netConfigPath = try files.write("net-conf.json", #"{"Network":"10.244.0.0/16","Backend":\#(backend)}"#)
        settings.interfaces.names = ["eth0"]
        settings.subnetFile = files.file("subnet.env")
        settings.statusFile = files.file("status.json")
        settings.pinDirectory = files.file("pins")
        settings.repairInterval = .seconds(1)
        let client = try KubeClient(KubeConnection.fromKubeconfig(kubeconfig ?? plane.flannelKubeconfig))
        var kube = KubeSubnetManager(client: client, nodeName: node, annotations: try KubeAnnotations())
        kube.watchSeconds = watchSeconds
        daemon = NodeDaemon(settings: settings, kube: kube, host: TestHost(), dataplanes: dataplanes, logger: log.logger(),
                            serviceManager: ServiceManager(environment: [:]))
    }

    func start() {
        let daemon = self.daemon
        task = Task(executorPreference: daemonThreads) { try await daemon.run(signals: []) }
    }

    func stop() async throws {
        await daemon.shutDown()
        try await task?.value
    }

    /// How the run ended, once it has.
    func ending() async -> (any Error)? {
        do {
            try await task?.value
            return nil
        } catch {
            return error
        }
    }

    var programmed: [IPv4Prefix: PeerPlan.Path] { dataplanes.dataplane?.lastPlan?.paths ?? [:] }
}

/// What flanneld writes on a Node, as a peer's annotations.
func flannelAnnotations(publicIP: String, mac: String) -> [String: String] {
    ["flannel.alpha.coreos.com/backend-type": "vxlan", "flannel.alpha.coreos.com/backend-data": #"{"VNI":1,"VtepMAC":"\#(mac)"}"#,
     "flannel.alpha.coreos.com/public-ip": publicIP, "flannel.alpha.coreos.com/kube-subnet-manager": "true"]
}

extension KubeControlPlane {
    func annotations(of node: String) throws -> [String: String] {
        ((try self.node(node)["metadata"] as? [String: Any])?["annotations"] as? [String: String]) ?? [:]
    }

    /// Annotates a Node as its own daemon would (a strategic-merge patch of its status, as the admin).
    func annotate(_ node: String, _ annotations: [String: String?]) throws {
        let values = annotations.mapValues { $0.map { JSONValue.string($0) } ?? .null }
        let patch = JSONValue.object(["metadata": .object(["annotations": .object(values)])]).serialized()
        let response = try admin(["PATCH", "/api/v1/nodes/\(node)/status"], body: patch, contentType: "application/strategic-merge-patch+json")
        guard response.status == 200 else { throw KubeRequestFailed(what: "annotate \(node)", response: response) }
    }
}

@Suite("--kube-subnet-mgr against the real kube-apiserver and kube-controller-manager", .serialized,
       .enabled(if: KubeControlPlane.isAvailable, "\(KubeControlPlane.unavailable)"))
struct KubeModeTests {
    @Test("The lease is the controller's podCIDR; the Node gets flanneld's annotations and the NetworkUnavailable=False condition, under kube-flannel.yml's role; peers come and go through the watch; a hostile annotation is not programmed; our annotations are written back")
    func leaseAnnotationsAndPeers() async throws {
        try await onOwnThreads {
            let plane = try KubeControlPlane()
            try plane.grantFlannelRole()
            try plane.registerNode("n1", address: "198.18.0.1")
            let podCIDR = try #require(try plane.podCIDR(of: "n1"), "the controller manager gives n1 a podCIDR")
            let node = try KubeComposedDaemon(plane, node: "n1")
            node.start()
            defer { Task { try? await node.stop() } }
            #expect(try await eventually(seconds: 30) { node.daemon.state.current.ready }, "\(node.log.messages.suffix(10))")
            #expect(node.daemon.state.current.subnet == IPv4Prefix(podCIDR))
            let subnetEnv = try String(contentsOfFile: node.files.file("subnet.env"), encoding: .utf8)
            #expect(subnetEnv.contains("FLANNEL_SUBNET=\(podCIDR.replacingOccurrences(of: ".0/", with: ".1/"))"), "\(subnetEnv)")

            let written = try plane.annotations(of: "n1")
            #expect(written["flannel.alpha.coreos.com/backend-type"] == "vxlan")
            #expect(written["flannel.alpha.coreos.com/backend-data"] == #"{"VNI":1,"VtepMAC":"0a:58:00:00:00:01"}"#)
            #expect(written["flannel.alpha.coreos.com/public-ip"] == "198.18.0.1")
            #expect(written["flannel.alpha.coreos.com/kube-subnet-manager"] == "true")
            #expect(written["volumes.kubernetes.io/controller-managed-attach-detach"] == "true", "the kubelet's annotation stays")
            let status = try plane.node("n1")["status"] as? [String: Any]
            let conditions = status?["conditions"] as? [[String: Any]] ?? []
            let network = conditions.first { $0["type"] as? String == "NetworkUnavailable" }
            #expect(network?["status"] as? String == "False" && network?["reason"] as? String == "FlannelIsUp", "\(conditions)")

            // A peer as flanneld advertises it.
            try plane.registerNode("n2", address: "198.18.0.2")
            let peerCIDR = try #require(try plane.podCIDR(of: "n2"))
            let peer = IPv4Prefix(peerCIDR)!
            try plane.annotate("n2", flannelAnnotations(publicIP: "198.18.0.2", mac: "0a:58:00:00:00:02"))
            #expect(try await eventually { node.programmed[peer] == .vxlan(underlayIP: IPv4Address("198.18.0.2")!, vtepMAC: MACAddress("0a:58:00:00:00:02")!) },
                    "\(node.programmed)")
            // Changed: the new address is programmed.
            try plane.annotate("n2", ["flannel.alpha.coreos.com/public-ip": "198.18.0.22"])
            #expect(try await eventually { node.programmed[peer]?.underlayIP == IPv4Address("198.18.0.22")! })
            // Hostile: backend-data that is no VXLAN data; it is taken out, never programmed.
            try plane.annotate("n2", ["flannel.alpha.coreos.com/backend-data": #"{"VNI":"one"}"#])
            #expect(try await eventually { node.programmed[peer] == nil })
            #expect(node.log.messages.contains { $0.contains("not a lease") && $0.contains("n2") }, "the bad annotation is reported")
            try plane.annotate("n2", flannelAnnotations(publicIP: "198.18.0.2", mac: "0a:58:00:00:00:02"))
            #expect(try await eventually { node.programmed[peer] != nil })
            // Deleted: removed.
            try plane.admin(["DELETE", "/api/v1/nodes/n2"])
            #expect(try await eventually { node.programmed[peer] == nil })

            // Our own annotations overwritten: written back.
            try plane.annotate("n1", ["flannel.alpha.coreos.com/public-ip": "203.0.113.9"])
            #expect(try await eventually { try plane.annotations(of: "n1")["flannel.alpha.coreos.com/public-ip"] == "198.18.0.1" })
            #expect(node.daemon.state.current.leaseDefended >= 1)
        }
    }

    @Test("No podCIDR yet: the node waits, /readyz says why and what sets it, and it starts once the Node has one")
    func waitsForThePodCIDR() async throws {
        try await onOwnThreads {
            let plane = try KubeControlPlane(allocateNodeCIDRs: false)
            try plane.grantFlannelRole()
            try plane.registerNode("n1", address: "198.18.0.1")
            let node = try KubeComposedDaemon(plane, node: "n1")
            node.start()
            defer { Task { try? await node.stop() } }
            #expect(try await eventually(seconds: 20) { node.daemon.state.current.notReadyReason?.contains("no spec.podCIDR yet") == true })
            let reason = node.daemon.state.current.notReadyReason ?? ""
            #expect(reason.contains("--allocate-node-cidrs") && reason.contains("--pod-network-cidr"), "\(reason)")
            let set = try plane.admin(["PATCH", "/api/v1/nodes/n1"], body: #"{"spec":{"podCIDR":"10.244.7.0/24","podCIDRs":["10.244.7.0/24"]}}"#,
                                      contentType: "application/strategic-merge-patch+json")
            #expect(set.status == 200, "\(set.body)")
            #expect(try await eventually(seconds: 20) { node.daemon.state.current.ready })
            #expect(node.daemon.state.current.subnet == IPv4Prefix("10.244.7.0/24"))
        }
    }

    @Test("kube-flannel.yml's role less nodes/status patch: the daemon stops with an error naming the verb and the resource")
    func refusedPermissionIsNamed() async throws {
        try await onOwnThreads {
            let plane = try KubeControlPlane()
            try plane.grantFlannelRole(rules: KubeControlPlane.flannelRules.filter { ($0["resources"] as? [String]) != ["nodes/status"] })
            try plane.registerNode("n1", address: "198.18.0.1")
            _ = try #require(try plane.podCIDR(of: "n1"))
            let node = try KubeComposedDaemon(plane, node: "n1")
            node.start()
            let error = await node.ending()
            #expect("\(error.map { "\($0)" } ?? "none")".contains("refused patch on nodes/status (403)"), "\(String(describing: error))")
        }
    }

    @Test("The API server killed and started again: the node stays ready with its peers, and sees a peer added after the restart")
    func apiServerRestart() async throws {
        try await onOwnThreads {
            let plane = try KubeControlPlane()
            try plane.grantFlannelRole()
            for (name, address) in [("n1", "198.18.0.1"), ("n2", "198.18.0.2")] { try plane.registerNode(name, address: address) }
            _ = try #require(try plane.podCIDR(of: "n2"))
            try plane.annotate("n2", flannelAnnotations(publicIP: "198.18.0.2", mac: "0a:58:00:00:00:02"))
            let node = try KubeComposedDaemon(plane, node: "n1")
            node.start()
            defer { Task { try? await node.stop() } }
            #expect(try await eventually(seconds: 30) { node.daemon.state.current.ready && node.programmed.count == 1 })
            plane.killAPIServer()
            try await Task.sleep(for: .seconds(2))
            #expect(node.programmed.count == 1, "the dataplane keeps its peers while the API is away")
            try plane.startAPIServer()
            try plane.registerNode("n3", address: "198.18.0.3")
            let third = IPv4Prefix(try #require(try plane.podCIDR(of: "n3")))!
            try plane.annotate("n3", flannelAnnotations(publicIP: "198.18.0.3", mac: "0a:58:00:00:00:03"))
            #expect(try await eventually(seconds: 60) { node.programmed[third] != nil }, "\(node.log.messages.suffix(8))")
            #expect(node.programmed.count == 2)
        }
    }

    @Test("A watch resuming from a compacted revision is told 410 Gone: the node lists the Nodes again and replaces its peers, losing and keeping nothing it should not")
    func goneListsAgain() async throws {
        try await onOwnThreads {
            let plane = try KubeControlPlane(watchCache: false)
            try plane.grantFlannelRole()
            for (name, address) in [("n1", "198.18.0.1"), ("n2", "198.18.0.2")] { try plane.registerNode(name, address: address) }
            let second = IPv4Prefix(try #require(try plane.podCIDR(of: "n2")))!
            try plane.annotate("n2", flannelAnnotations(publicIP: "198.18.0.2", mac: "0a:58:00:00:00:02"))
            let node = try KubeComposedDaemon(plane, node: "n1", watchSeconds: 2)
            node.start()
            defer { Task { try? await node.stop() } }
            #expect(try await eventually { node.daemon.state.current.ready && node.programmed[second] != nil })
            // The API server goes away; while it is, the store moves on and is compacted past the
            // daemon's last version, so the watch it opens on the server's return is told 410 Gone.
            plane.killAPIServer()
            try plane.advanceStore()
            try plane.compactStore()
            try plane.startAPIServer()
            // What it must not miss, whenever its next watch opens: n2 gone, n3 new.
            try plane.admin(["DELETE", "/api/v1/nodes/n2"])
            try plane.registerNode("n3", address: "198.18.0.3")
            let third = IPv4Prefix(try #require(try plane.podCIDR(of: "n3")))!
            try plane.annotate("n3", flannelAnnotations(publicIP: "198.18.0.3", mac: "0a:58:00:00:00:03"))
            #expect(try await eventually { Set(node.programmed.keys) == [third] }, "\(node.programmed)")
            #expect(node.log.messages.contains { $0.contains("410 Gone") }, "the watch was told its revision is gone: \(node.log.messages.suffix(6))")
        }
    }
}
