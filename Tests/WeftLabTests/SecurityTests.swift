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
