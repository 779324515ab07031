import Foundation
import Glibc
import Testing
import WeftTestSupport

/// A hostile pod on a BPF node.
@Suite("A hostile pod", .enabled(if: isRoot, "needs root for namespaces and BPF"))
struct HostilePodTests {
    @Test("A pod sending from 5 foreign sources reaches nobody, and each drop is counted; its own address still works")
    func spoofedSources() throws {
        let lab = try LabFixture(nodes: 2)
        let own = { (host: Int) in try lab.address(on: "n1", host: host) }
        let otherNode = try lab.address(on: "n2", host: 9)
        let target = try lab.podIP("n2")
        func dropped() throws -> Int {
            let output = try lab.inNode("n1", ["maps", "counters", "--json"]).stdout
            let counters = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: [String: Int]] ?? [:]
            return counters["dropped_pod_spoofed_source"]?["packets"] ?? 0
        }
        let before = try dropped()
        // The gateway, the network address, an unused address of the subnet, another node's pod, the internet.
        for source in [try own(1), try own(0), try own(200), otherNode, "192.0.2.9"] {
            #expect(try lab.weft(["lab", "exec", "n1-p1", "--", "ip", "addr", "add", "\(source)/32", "dev", "eth0"]).succeeded)
            let ping = try lab.weft(["lab", "exec", "n1-p1", "--", "ping", "-c", "1", "-W", "1", "-I", source, target])
            #expect(!ping.succeeded, "from \(source): \(ping.stdout)")
            #expect(try lab.weft(["lab", "exec", "n1-p1", "--", "ip", "addr", "del", "\(source)/32", "dev", "eth0"]).succeeded)
        }
        #expect(try dropped() - before >= 5)
        #expect(try lab.weft(["lab", "exec", "n1-p1", "--", "ping", "-c", "1", "-W", "2", target]).succeeded)
    }
}

/// A host on the underlay that is no node, routing to the pods: the case 2.
@Suite("An attacker on the underlay", .enabled(if: isRoot, "needs root for namespaces and BPF"))
struct UnderlayAttackerTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let dataplane: String
        let backend: String
        var testDescription: String { "\(dataplane), \(backend)" }
    }

    /// Packets the node dropped as plain IP from no direct peer: the programs' counters, or
    /// the DROP rule of the kernel dataplane's WEFT-UNDERLAY chain.
    static func dropped(_ lab: LabFixture, _ node: String, dataplane: String) throws -> Int {
        if dataplane == "kernel" {
            let listing = try lab.weft(["lab", "exec", node, "--", "iptables", "-t", "raw", "-n", "-v", "-x", "-L", "WEFT-UNDERLAY"]).stdout
            let drop = listing.split(separator: "\n").first { $0.contains("DROP") }
            return drop.flatMap { Int($0.split(separator: " ").first ?? "") } ?? -1
        }
        let output = try lab.inNode(node, ["maps", "counters", "--json"]).stdout
        let counters = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: [String: Int]] ?? [:]
        return (counters["dropped_untrusted_underlay"]?["packets"] ?? 0) + (counters["dropped_underlay_wrong_hop"]?["packets"] ?? 0)
    }

    @Test("Plain IP to a pod, from the attacker's own source and with a peer pod's, is dropped and counted; the BPF dataplane also tells a host-gw peer's pod from an impostor by its MAC",
          arguments: ["bpf", "kernel"].flatMap { dataplane in ["vxlan", "host-gw"].map { Case(dataplane: dataplane, backend: $0) } })
    func plainIPToPods(shape: Case) throws {
        let lab = try LabFixture(nodes: 2, backend: shape.backend, dataplane: shape.dataplane)
        let namespaces = Namespaces()
        let attacker = try namespaces.add("attacker")
        try namespaces.topology.plug(.init(attacker, "eth0", "198.18.0.66/24"), into: lab.underlay, as: "\(namespaces.tag)a")
        let n1 = try lab.node("n1")
        let n1Address = n1["publicIP"] as? String ?? "198.18.0.1"
        try namespaces.must(attacker, ["ip", "route", "add", "10.244.0.0/16", "via", n1Address])
        let target = try lab.podIP("n1")
        let peerPod = try lab.podIP("n2")
        let before = try Self.dropped(lab, "n1", dataplane: shape.dataplane)
        #expect(before >= 0, "the kernel dataplane has its WEFT-UNDERLAY chain")
        #expect(!(try namespaces.exec(attacker, ["ping", "-c", "2", "-W", "1", target]).succeeded), "its own source")
        try namespaces.must(attacker, ["ip", "addr", "add", "\(peerPod)/32", "dev", "eth0"])
        #expect(!(try namespaces.exec(attacker, ["ping", "-c", "2", "-W", "1", "-I", peerPod, target]).succeeded), "a peer pod's source")
        // With host-gw a packet claiming a direct peer's pod passes the address check. The BPF
        // dataplane drops it by the hop check (it comes from the attacker's MAC); the kernel
        // dataplane's netfilter rule cannot tell, and the pod's answer goes to the real peer.
        let spoofsCaught = shape.backend == "vxlan" || shape.dataplane == "bpf"
        #expect(try Self.dropped(lab, "n1", dataplane: shape.dataplane) - before >= (spoofsCaught ? 4 : 2))
        #expect(try lab.weft(["lab", "check"]).succeeded, "the cluster's own traffic still flows")
    }
}
