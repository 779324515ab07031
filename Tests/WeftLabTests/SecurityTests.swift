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
        let subnet = try lab.node("n1")["subnet"] as? String ?? "?"
        let base = String(subnet.prefix { $0 != "/" }.dropLast(1))     // 10.244.N.
        let otherSubnet = try lab.node("n2")["subnet"] as? String ?? "?"
        let otherNode = String(otherSubnet.prefix { $0 != "/" }.dropLast(1)) + "9"
        let target = try lab.podIP("n2")
        func dropped() throws -> Int {
            let output = try lab.inNode("n1", ["maps", "counters", "--json"]).stdout
            let counters = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: [String: Int]] ?? [:]
            return counters["dropped_pod_spoofed_source"]?["packets"] ?? 0
        }
        let before = try dropped()
        // The gateway, the network address, an unused address of the subnet, another node's pod, the internet.
        for source in [base + "1", base + "0", base + "200", otherNode, "192.0.2.9"] {
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
    @Test("Plain IP to a pod is dropped and counted on the BPF dataplane, from its own source and with a peer pod's (in a host-gw cluster its MAC is not the peer's)", arguments: ["vxlan", "host-gw"])
    func plainIPToPods(backend: String) throws {
        let lab = try LabFixture(nodes: 2, backend: backend)
        let namespaces = Namespaces()
        let attacker = try namespaces.add("attacker")
        try namespaces.topology.plug(.init(attacker, "eth0", "198.18.0.66/24"), into: lab.underlay, as: "\(namespaces.tag)a")
        let n1 = try lab.node("n1")
        let n1Address = n1["publicIP"] as? String ?? "198.18.0.1"
        try namespaces.must(attacker, ["ip", "route", "add", "10.244.0.0/16", "via", n1Address])
        let target = try lab.podIP("n1")
        let peerPod = try lab.podIP("n2")
        func dropped() throws -> Int {
            let output = try lab.inNode("n1", ["maps", "counters", "--json"]).stdout
            let counters = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: [String: Int]] ?? [:]
            return (counters["dropped_untrusted_underlay"]?["packets"] ?? 0) + (counters["dropped_underlay_wrong_hop"]?["packets"] ?? 0)
        }
        let before = try dropped()
        #expect(!(try namespaces.exec(attacker, ["ping", "-c", "2", "-W", "1", target]).succeeded), "its own source")
        try namespaces.must(attacker, ["ip", "addr", "add", "\(peerPod)/32", "dev", "eth0"])
        #expect(!(try namespaces.exec(attacker, ["ping", "-c", "2", "-W", "1", "-I", peerPod, target]).succeeded), "a peer pod's source")
        // With host-gw the spoofed packet passes the address check (a direct peer's pod may
        // send plain IP) and is dropped by the hop check: it comes from the attacker's MAC.
        #expect(try dropped() - before >= 4)
        #expect(try lab.weft(["lab", "check"]).succeeded, "the cluster's own traffic still flows")
    }
}
