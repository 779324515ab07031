import Foundation
import Testing
import WeftTestSupport

@Suite("weft lab --store kube: every daemon on the real kube-apiserver", .serialized, .enabled(if: isRoot, "needs root for namespaces and BPF"),
       .enabled(if: KubeControlPlane.isAvailable, "\(KubeControlPlane.unavailable)"))
struct KubeLabTests {
    @Test("Three nodes on both dataplanes in kube mode: each takes the podCIDR the controller manager gave its Node, lab check passes, a restarted node keeps its subnet, lab down leaves nothing")
    func kubeLab() throws {
        KubeControlPlane.oneAtATime.wait()
        defer { KubeControlPlane.oneAtATime.signal() }
        let lab = try LabFixture(dataplane: "mixed", store: "kube")
        let check = try lab.weft(["lab", "check"])
        #expect(check.succeeded, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("all pods reach each other across nodes (3 pods, 3 nodes)"), "\(check.stdout)")
        let status = try lab.status()
        #expect((status["store"] as? String)?.hasPrefix("kube https://198.18.0.254:6443") == true, "\(status["store"] ?? "")")
        // Each subnet is the Node's podCIDR, as the API server holds it.
        let kube = "\(lab.directory)/kube"
        for node in ["n1", "n2", "n3"] {
            let subnet = try lab.node(node)["subnet"] as? String ?? "?"
            let object = try Command.must(["ip", "netns", "exec", lab.underlay, "curl", "-sS", "--cacert", "\(kube)/ca.crt", "--cert", "\(kube)/admin.crt",
                                           "--key", "\(kube)/admin.key", "https://198.18.0.254:6443/api/v1/nodes/\(node)"])
            #expect(object.contains(#""podCIDR": "\#(subnet)""#), "\(node): \(subnet) in \(object.prefix(400))")
            #expect(object.contains(#""flannel.alpha.coreos.com/kube-subnet-manager": "true""#))
        }
        let before = try lab.node("n2")["subnet"] as? String
        #expect(try lab.weft(["lab", "restart", "n2"]).succeeded)
        #expect(try lab.node("n2")["subnet"] as? String == before)
        #expect(try lab.weft(["lab", "check"]).succeeded)
        #expect(try lab.weft(["lab", "down"]).succeeded)
        let leftovers = try lab.leftovers()
        #expect(leftovers.isEmpty, "\(leftovers)")
    }

    /// One request as the lab's admin, from its underlay namespace.
    func kube(_ lab: LabFixture, _ method: String, _ path: String, body: String? = nil) throws -> String {
        let kube = "\(lab.directory)/kube"
        return try Command.must(["ip", "netns", "exec", lab.underlay, "curl", "-sS", "--cacert", "\(kube)/ca.crt", "--cert", "\(kube)/admin.crt",
                                 "--key", "\(kube)/admin.key", "-X", method] + (body.map { ["-H", "Content-Type: application/json", "--data-binary", $0] } ?? [])
                                + ["https://198.18.0.254:6443\(path)"])
    }

    func object(_ lab: LabFixture, node: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(try kube(lab, "GET", "/api/v1/nodes/\(node)").utf8)) as? [String: Any] ?? [:]
    }

    @Test("A stock flanneld --kube-subnet-mgr on the same API server: the same annotation keys and shapes and the same condition as Weft's, and pods reach each other both ways, BPF and kernel nodes alike")
    func mixedWithKubeModeFlanneld() throws {
        try #require(StockFlannel.isAvailable, "needs ../shared/flannel")
        KubeControlPlane.oneAtATime.wait()
        defer { KubeControlPlane.oneAtATime.signal() }
        let lab = try LabFixture(nodes: 2, dataplane: "mixed", store: "kube")
        _ = try kube(lab, "POST", "/api/v1/nodes", body: #"{"apiVersion":"v1","kind":"Node","metadata":{"name":"flannel","annotations":{"volumes.kubernetes.io/controller-managed-attach-detach":"true"}}}"#)
        // flanneld exits when its Node has no podCIDR yet, where Weft waits: give the controller its second.
        #expect(try waitUntil(seconds: 20) { ((try self.object(lab, node: "flannel")["spec"] as? [String: Any])?["podCIDR"] as? String) != nil })
        let flannel = try FlannelNode(beside: lab, kubeNode: "flannel")
        let flannelSubnet = try #require(flannel.subnet)
        let theirs = try object(lab, node: "flannel")
        let ours = try object(lab, node: "n1")
        #expect(((theirs["spec"] as? [String: Any])?["podCIDR"] as? String) == flannelSubnet, "flanneld took its Node's podCIDR")
        func flannelAnnotations(_ node: [String: Any]) -> [String: String] {
            ((node["metadata"] as? [String: Any])?["annotations"] as? [String: String] ?? [:]).filter { $0.key.hasPrefix("flannel.alpha.coreos.com/") }
        }
        let theirAnnotations = flannelAnnotations(theirs)
        let ourAnnotations = flannelAnnotations(ours)
        #expect(Set(theirAnnotations.keys) == Set(ourAnnotations.keys), "flanneld: \(theirAnnotations), Weft: \(ourAnnotations)")
        #expect(theirAnnotations["flannel.alpha.coreos.com/backend-type"] == ourAnnotations["flannel.alpha.coreos.com/backend-type"])
        #expect(theirAnnotations["flannel.alpha.coreos.com/kube-subnet-manager"] == "true" && ourAnnotations["flannel.alpha.coreos.com/kube-subnet-manager"] == "true")
        func shape(_ data: String?) -> String {
            (data ?? "").replacingOccurrences(of: #"[0-9a-f]{2}(:[0-9a-f]{2}){5}"#, with: "MAC", options: .regularExpression)
        }
        #expect(shape(theirAnnotations["flannel.alpha.coreos.com/backend-data"]) == shape(ourAnnotations["flannel.alpha.coreos.com/backend-data"]),
                "\(theirAnnotations["flannel.alpha.coreos.com/backend-data"] ?? "") against \(ourAnnotations["flannel.alpha.coreos.com/backend-data"] ?? "")")
        #expect(theirAnnotations["flannel.alpha.coreos.com/public-ip"] == "198.18.0.50")
        func condition(_ node: [String: Any]) -> [String] {
            let conditions = (node["status"] as? [String: Any])?["conditions"] as? [[String: Any]] ?? []
            let network = conditions.first { $0["type"] as? String == "NetworkUnavailable" } ?? [:]
            return ["type", "status", "reason", "message"].map { network[$0] as? String ?? "-" }
        }
        #expect(condition(theirs) == condition(ours), "flanneld: \(condition(theirs)), Weft: \(condition(ours))")
        #expect(condition(ours) == ["NetworkUnavailable", "False", "FlannelIsUp", "Flannel is running on this node"])

        for node in ["n1", "n2"] {
            let weftSubnet = try #require(try lab.node(node)["subnet"] as? String)
            #expect(try waitUntil(seconds: 20) {
                let status = try JSONSerialization.jsonObject(with: Data(try lab.inNode(node, ["status", "--json"]).stdout.utf8)) as? [String: Any]
                return (status?["peers"] as? [[String: Any]])?.contains { $0["subnet"] as? String == flannelSubnet } == true
            }, "\(node) never programmed flanneld's Node:\n\(lab.log(node).suffix(1500))")
            #expect(try waitUntil(seconds: 20) { try Command.must(["ip", "-n", flannel.node, "route", "show", weftSubnet]).contains("flannel.1") },
                    "flanneld never programmed \(node):\n\(flannel.log.suffix(1500))")
            let weftPod = try lab.podIP(node)
            let there = try lab.weft(["lab", "exec", "\(node)-p1", "--", "ping", "-c", "3", "-W", "2", flannel.podIP])
            let dataplane = try lab.node(node)["dataplane"] as? String ?? "?"
            #expect(there.succeeded, "\(node) (\(dataplane)) to flanneld's pod: \(there.stdout)")
            let back = try flannel.namespaces.exec(flannel.pod, ["ping", "-c", "3", "-W", "2", weftPod])
            #expect(back.succeeded, "flanneld's pod to \(node): \(back.stdout)")
        }
    }

    @Test("Taking over a kube-mode flanneld node in place: weft daemon with flanneld's command line keeps the Node's podCIDR and the VTEP MAC in its backend-data, and the pods keep talking")
    func takesOverAKubeModeFlanneld() throws {
        try #require(StockFlannel.isAvailable, "needs ../shared/flannel")
        KubeControlPlane.oneAtATime.wait()
        defer { KubeControlPlane.oneAtATime.signal() }
        let lab = try LabFixture(nodes: 1, dataplane: "bpf", store: "kube")
        _ = try kube(lab, "POST", "/api/v1/nodes", body: #"{"apiVersion":"v1","kind":"Node","metadata":{"name":"flannel","annotations":{"volumes.kubernetes.io/controller-managed-attach-detach":"true"}}}"#)
        #expect(try waitUntil(seconds: 20) { ((try self.object(lab, node: "flannel")["spec"] as? [String: Any])?["podCIDR"] as? String) != nil })
        let flannel = try FlannelNode(beside: lab, kubeNode: "flannel")
        let subnet = try #require(flannel.subnet)
        func backendData() throws -> String {
            ((try object(lab, node: "flannel")["metadata"] as? [String: Any])?["annotations"] as? [String: String])?["flannel.alpha.coreos.com/backend-data"] ?? "none"
        }
        let flannelData = try backendData()
        #expect(flannelData.contains("VtepMAC"), "\(flannelData)")

        flannel.stopFlanneld()
        let state = try TemporaryDirectory()
        let log = state.file("daemon.log")
        _ = try flannel.namespaces.start(flannel.node, ["env", "NODE_NAME=flannel", WeftProcess.binary, "daemon"] + flannel.flags
            + ["--pin-dir", state.file("bpf"), "--status-file", state.file("status.json"), "--dataplane", "bpf"], output: .file(log))
        let ready = try waitUntil(seconds: 30) {
            (try? String(contentsOfFile: state.file("status.json"), encoding: .utf8))?.contains(#""ready":true"#) == true
        }
        #expect(ready, "\((try? String(contentsOfFile: log, encoding: .utf8))?.suffix(2000) ?? "")")
        #expect(flannel.subnet == subnet, "the Node's podCIDR, as flanneld had it")
        #expect(try backendData() == flannelData, "the same VNI and VTEP MAC, so no peer sees a change")
        #expect(try Command.must(["ip", "-n", flannel.node, "link", "show"]).contains("weft.1"), "the BPF dataplane took flannel.1's place")
        let there = try lab.weft(["lab", "exec", "n1-p1", "--", "ping", "-c", "3", "-W", "2", flannel.podIP])
        #expect(there.succeeded, "\(there.stdout)")
        let back = try flannel.namespaces.exec(flannel.pod, ["ping", "-c", "3", "-W", "2", try lab.podIP("n1")])
        #expect(back.succeeded, "\(back.stdout)")
    }
}
