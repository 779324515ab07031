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

/// Round two of the hostile pod (issue 27): what a pod can do below IP, and what it must
/// still be able to reach.
@Suite("A hostile pod, below IP", .enabled(if: isRoot, "needs root for namespaces and BPF"))
struct HostilePodFrameTests {
    /// The MAC the pod's neighbour table holds for its gateway, after one ping through it.
    static func gatewayMAC(_ lab: LabFixture, pod: String, node: String, target: String) throws -> String {
        _ = try lab.weft(["lab", "exec", pod, "--", "ping", "-c", "1", "-W", "2", target])
        let gateway = try lab.address(on: node, host: 1)
        let entry = try lab.weft(["lab", "exec", pod, "--", "ip", "neigh", "show", gateway]).stdout
        let words = entry.split(separator: " ").map(String.init)
        return words.firstIndex(of: "lladdr").map { words[$0 + 1] } ?? "?"
    }

    static func counter(_ lab: LabFixture, _ node: String, _ name: String) throws -> Int {
        let output = try lab.inNode(node, ["maps", "counters", "--json"]).stdout
        let counters = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: [String: Int]] ?? [:]
        return counters[name]?["packets"] ?? 0
    }

    @Test("A pod reaches another node's own address (hostNetwork pods, the kubelet) without --ip-masq, over VXLAN and host-gw",
          arguments: ["vxlan", "host-gw"])
    func aPodReachesAnotherNodesHost(backend: String) throws {
        let lab = try LabFixture(nodes: 2, backend: backend)
        let peerHost = try lab.node("n2")["publicIP"] as? String ?? "?"
        let ping = try lab.weft(["lab", "exec", "n1-p1", "--", "ping", "-c", "3", "-W", "2", peerHost])
        #expect(ping.succeeded, "\(ping.stdout)\(ping.stderr)")
        #expect(try Self.counter(lab, "n1", "dropped_spoofed_source") == 0)
    }

    @Test("A pod's frames tagged for a VLAN reach no pod on another node; the same frames untagged do")
    func vlanTaggedFramesGoNowhere() throws {
        let lab = try LabFixture(nodes: 2)
        let source = try lab.podIP("n1")
        let target = try lab.podIP("n2")
        let gateway = try Self.gatewayMAC(lab, pod: "n1-p1", node: "n1", target: target)
        func arriving(vlan: Int) throws -> Int {
            let output = "\(lab.directory)/listen-\(vlan).txt"
            let listener = try RawFrames.listen(namespace: "weft-\(lab.name)-n2-p1", seconds: 3, output: output)
            Thread.sleep(forTimeInterval: 0.5)
            let sent = try RawFrames.sendICMP(namespace: "weft-\(lab.name)-n1-p1", gatewayMAC: gateway, source: source, destination: target, vlan: vlan)
            #expect(sent.succeeded, "\(sent.stderr)")
            _ = listener.wait()
            return Int((try String(contentsOfFile: output, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        }
        #expect(try arriving(vlan: 5) == 0, "tagged for VLAN 5")
        #expect(try Self.counter(lab, "n1", "passed_vlan_tagged") >= 5)
        #expect(try arriving(vlan: 0) > 0, "the same frames untagged arrive, so the listener hears them")
    }

    @Test("A pod that answers ARP for another pod's address does not move the node's neighbour entry, and the node's pings still reach the victim")
    func arpSpoofingDoesNotHijackAPod() throws {
        let lab = try LabFixture(nodes: 2, podsPerNode: 2)
        let pods = try lab.node("n1")["pods"] as? [[String: Any]] ?? []
        let victim = pods.first { $0["pod"] as? String == "n1-p1" }?["ip"] as? String ?? "?"
        let victimMAC = try lab.weft(["lab", "exec", "n1-p1", "--", "cat", "/sys/class/net/eth0/address"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let hostileMAC = try lab.weft(["lab", "exec", "n1-p2", "--", "cat", "/sys/class/net/eth0/address"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try lab.weft(["lab", "exec", "n1", "--", "ping", "-c", "1", "-W", "2", victim]).succeeded)
        // Past the neighbour entry's lock time, when an answer would override it.
        Thread.sleep(forTimeInterval: 1.5)
        let sent = try RawFrames.sendARP(namespace: "weft-\(lab.name)-n1-p2", claimedIP: victim, targetIP: try lab.address(on: "n1", host: 1))
        #expect(sent.succeeded, "\(sent.stderr)")
        let entry = try lab.weft(["lab", "exec", "n1", "--", "ip", "neigh", "show", victim]).stdout
        #expect(!entry.contains(hostileMAC), "\(entry)")
        #expect(entry.contains(victimMAC) || !entry.contains("lladdr"), "\(entry)")
        #expect(try Self.counter(lab, "n1", "dropped_pod_arp_spoofed") >= 5)
        #expect(try lab.weft(["lab", "exec", "n1", "--", "ping", "-c", "2", "-W", "2", victim]).succeeded)
    }
}
