import Foundation
import Testing
import WeftCore

@Suite("Leases in Node objects, as flanneld --kube-subnet-mgr reads and writes them")
struct KubeNodeLeaseTests {
    let keys = try! KubeAnnotations()

    func node(_ annotations: [String: String], podCIDR: String? = "10.244.2.0/24", podCIDRs: [String] = []) -> KubeNode {
        KubeNode(name: "n2", created: 1700, podCIDR: podCIDR, podCIDRs: podCIDRs, annotations: annotations)
    }

    let flannels = ["flannel.alpha.coreos.com/backend-type": "vxlan", "flannel.alpha.coreos.com/backend-data": #"{"VNI":1,"VtepMAC":"0a:58:00:00:00:02"}"#,
                    "flannel.alpha.coreos.com/public-ip": "198.18.0.2", "flannel.alpha.coreos.com/kube-subnet-manager": "true"]

    @Test("The annotation keys are flanneld's for any --kube-annotation-prefix; a bad prefix is named")
    func annotationKeys() throws {
        #expect(keys.backendData == "flannel.alpha.coreos.com/backend-data")
        #expect(keys.subnetKubeManaged == "flannel.alpha.coreos.com/kube-subnet-manager")
        #expect(try KubeAnnotations(prefix: "example.com/net").publicIP == "example.com/net-public-ip")
        #expect(try KubeAnnotations(prefix: "example.com/net-").publicIP == "example.com/net-public-ip")
        #expect(try KubeAnnotations(prefix: "example.com/").publicIP == "example.com/public-ip")
        #expect(throws: KubeNodeProblem.self) { try KubeAnnotations(prefix: "a/b/c") }
        #expect(throws: KubeNodeProblem.self) { try KubeAnnotations(prefix: "Not_A_Domain") }
    }

    @Test("A Node flanneld annotated is a lease of its podCIDR, aged by its creation; one no subnet manager took, or with no podCIDR, is none")
    func readsALease() throws {
        let peer = try #require(try KubeNodeLease.lease(of: node(flannels), keys)?.get())
        #expect(peer.lease == Lease(subnet: IPv4Prefix("10.244.2.0/24")!,
                                    attributes: .vxlan(publicIP: IPv4Address("198.18.0.2")!, vni: 1, vtepMAC: MACAddress("0a:58:00:00:00:02")!)))
        #expect(peer.since == 1700)
        var unmanaged = flannels
        unmanaged["flannel.alpha.coreos.com/kube-subnet-manager"] = nil
        #expect(KubeNodeLease.lease(of: node(unmanaged), keys) == nil)
        #expect(KubeNodeLease.lease(of: node(flannels, podCIDR: nil), keys) == nil)
        // Dual-stack podCIDRs: the IPv4 one.
        let dual = try #require(try KubeNodeLease.lease(of: node(flannels, podCIDR: "fd00:10:244:2::/64", podCIDRs: ["fd00:10:244:2::/64", "10.244.9.0/24"]), keys)?.get())
        #expect(dual.lease.subnet == IPv4Prefix("10.244.9.0/24"))
        var hostGateway = flannels
        hostGateway["flannel.alpha.coreos.com/backend-type"] = "host-gw"
        hostGateway["flannel.alpha.coreos.com/backend-data"] = "null"
        #expect(try KubeNodeLease.lease(of: node(hostGateway), keys)?.get().lease.attributes == .hostGateway(publicIP: IPv4Address("198.18.0.2")!))
    }

    @Test("Hostile or broken annotations are errors naming the Node and the annotation, never a lease", arguments: [
        ("flannel.alpha.coreos.com/public-ip", "999.1.1.1", "public-ip \"999.1.1.1\" is not an IPv4 address"),
        ("flannel.alpha.coreos.com/backend-data", "{not json", "backend-data is not JSON"),
        ("flannel.alpha.coreos.com/backend-data", #"{"VNI":"one","VtepMAC":"x"}"#, "a vxlan lease needs BackendData"),
    ])
    func hostileAnnotations(key: String, value: String, expected: String) throws {
        var annotations = flannels
        annotations[key] = value
        let result = try #require(KubeNodeLease.lease(of: node(annotations), keys))
        guard case .failure(let problem) = result else { Issue.record("\(result) is a lease"); return }
        #expect(problem.description.contains("node n2") && problem.description.contains(expected), "\(problem)")
    }

    @Test("A podCIDR that is not a network is an error")
    func badPodCIDR() {
        guard case .failure(let problem)? = KubeNodeLease.lease(of: node(flannels, podCIDR: "10.244.2.7/24"), keys) else {
            Issue.record("accepted"); return
        }
        #expect(problem.description.contains("spec.podCIDR 10.244.2.7/24"))
    }

    @Test("Our annotations as flanneld writes them: only what differs is patched, nothing when all match, and public-ip-overwrite wins")
    func annotationPatch() throws {
        let ours = LeaseAttributes.vxlan(publicIP: IPv4Address("198.18.0.2")!, vni: 1, vtepMAC: MACAddress("0a:58:00:00:00:02")!)
        let fresh = node(["volumes.kubernetes.io/controller-managed-attach-detach": "true"])
        let patch = try #require(KubeNodeLease.annotationPatch(for: fresh, advertising: ours, keys))
        #expect(patch.serialized(keyOrder: ["metadata", "annotations"]) == JSONValue.object(["metadata": .object(["annotations": .object(flannels.mapValues(JSONValue.string))])]).serialized(keyOrder: ["metadata", "annotations"]))
        #expect(KubeNodeLease.annotationPatch(for: node(flannels), advertising: ours, keys) == nil)
        var changed = flannels
        changed["flannel.alpha.coreos.com/public-ip"] = "203.0.113.9"
        #expect(KubeNodeLease.annotationPatch(for: node(changed), advertising: ours, keys)
            == .object(["metadata": .object(["annotations": .object(["flannel.alpha.coreos.com/public-ip": .string("198.18.0.2")])])]))
        var overwritten = flannels
        overwritten["flannel.alpha.coreos.com/public-ip-overwrite"] = "203.0.113.5"
        #expect(KubeNodeLease.advertisedPublicIP(node(overwritten), own: ours.publicIP, keys) == IPv4Address("203.0.113.5"))
        #expect(KubeNodeLease.annotationPatch(for: node(overwritten), advertising: ours, keys)
            == .object(["metadata": .object(["annotations": .object(["flannel.alpha.coreos.com/public-ip": .string("203.0.113.5")])])]))
        #expect(KubeNodeLease.backendDataAnnotation(.hostGateway(publicIP: ours.publicIP)) == "null", "Go's JSON of host-gw's nil data")
    }

    @Test("The condition flanneld sets once up: NetworkUnavailable False, FlannelIsUp")
    func condition() {
        let patch = KubeNodeLease.networkAvailablePatch(at: Date(timeIntervalSince1970: 1_800_000_000))
        #expect(patch.serialized(keyOrder: ["type", "status", "reason", "message", "lastTransitionTime", "lastHeartbeatTime"])
            == #"{"status":{"conditions":[{"type":"NetworkUnavailable","status":"False","reason":"FlannelIsUp","message":"Flannel is running on this node","lastTransitionTime":"2027-01-15T08:00:00Z","lastHeartbeatTime":"2027-01-15T08:00:00Z"}]}}"#)
    }

    @Test("A Node object of the API is read: name, version, age, podCIDRs and annotations")
    func decodesANode() throws {
        let json = try JSONValue.parse(#"{"kind":"Node","metadata":{"name":"n1","resourceVersion":"42","creationTimestamp":"2026-12-03T10:00:00Z","annotations":{"a":"b"}},"spec":{"podCIDR":"10.244.1.0/24","podCIDRs":["10.244.1.0/24"]}}"#)
        let node = try KubeNode(json: json)
        #expect(node == KubeNode(name: "n1", resourceVersion: "42", created: 1_796_292_000, podCIDR: "10.244.1.0/24", podCIDRs: ["10.244.1.0/24"], annotations: ["a": "b"]))
        #expect(throws: KubeNodeProblem.self) { try KubeNode(json: JSONValue.parse(#"{"kind":"Node"}"#)) }
    }
}
