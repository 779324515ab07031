import Foundation
import Glibc
import Testing
import WeftTestSupport

/// Weft nodes and a stock flanneld node (v0.20.2, with Flannel's CNI plugin v1.1.2) on one etcd.
@Suite("Weft beside a stock flanneld", .enabled(if: isRoot, "needs root for namespaces and BPF"),
       .enabled(if: StockFlannel.isAvailable, "needs the stock Flannel binaries in ../shared/flannel"))
struct FlannelInteropTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let dataplane: String
        let mtu: Int?
        var testDescription: String { "\(dataplane), Backend.MTU \(mtu.map(String.init) ?? "unset")" }
    }

    func subnetEnvMTU(_ lab: LabFixture, _ node: String) -> Int? {
        (try? String(contentsOfFile: "\(lab.directory)/\(node)/subnet.env", encoding: .utf8))?.split(separator: "\n")
            .first { $0.hasPrefix("FLANNEL_MTU=") }.flatMap { Int($0.dropFirst("FLANNEL_MTU=".count)) }
    }

    /// Weft reads Backend.MTU as current Flannel does (the underlay MTU to assume; pods get
    /// 50 less). flanneld v0.20.2 ignores it and takes the interface's MTU less 50.
    @Test("Pod MTU by each one's rule, and DF pings at the smaller pod MTU cross both ways",
          arguments: ["bpf", "kernel"].flatMap { dataplane in [nil, 1400].map { Case(dataplane: dataplane, mtu: $0) } })
    func podMTU(shape: Case) throws {
        let lab = try LabFixture(nodes: 1, dataplane: shape.dataplane, store: "etcd", mtu: shape.mtu)
        let flannel = try FlannelNode(beside: lab)
        let weftMTU = (shape.mtu ?? 1500) - 50
        #expect(flannel.mtu == 1450, "flanneld v0.20.2: the interface's 1500 less 50, whatever Backend.MTU says")
        #expect(subnetEnvMTU(lab, "n1") == weftMTU)
        let device = shape.dataplane == "bpf" ? "weft.1" : "flannel.1"
        #expect(try lab.weft(["lab", "exec", "n1", "--", "ip", "link", "show", device]).stdout.contains("mtu \(weftMTU)"))
        #expect(try Command.must(["ip", "-n", flannel.node, "link", "show", "flannel.1"]).contains("mtu 1450"))

        let weftPod = (try lab.node("n1")["pods"] as? [[String: Any]])?.first?["ip"] as? String ?? "?"
        let payload = "\(min(weftMTU, 1450) - 28)"
        let there = try lab.weft(["lab", "exec", "n1-p1", "--", "ping", "-c", "2", "-W", "2", "-M", "do", "-s", payload, flannel.podIP])
        #expect(there.succeeded, "Weft pod -> flannel pod: \(there.stdout)\(there.stderr)\n\(flannel.log.suffix(1500))")
        let back = try flannel.namespaces.exec(flannel.pod, ["ping", "-c", "2", "-W", "2", "-M", "do", "-s", payload, weftPod])
        #expect(back.succeeded, "flannel pod -> Weft pod: \(back.stdout)\(back.stderr)")
        // The Weft pod's own interface takes no more than its MTU with DF.
        let tooBig = try lab.weft(["lab", "exec", "n1-p1", "--", "ping", "-c", "1", "-W", "1", "-M", "do", "-s", "\(weftMTU - 27)", flannel.podIP])
        #expect(!tooBig.succeeded)
    }

    /// The Flannel chains of a node's `iptables-save`, its own subnet written as SUBNET.
    func flannelChains(_ save: String, subnet: String) -> [String] {
        save.split(separator: "\n").map(String.init)
            .filter { $0.contains("FLANNEL-") && !$0.hasPrefix("#") }
            .map { $0.replacingOccurrences(of: subnet, with: "SUBNET") }
    }

    @Test("--ip-masq on every node and FORWARD dropping: the same Flannel chains but for the subnet, and pods reach each other both ways",
          arguments: ["bpf", "kernel"])
    func masqueradeAndForward(dataplane: String) throws {
        let lab = try LabFixture(nodes: 1, dataplane: dataplane, store: "etcd", ipMasq: true)
        let flannel = try FlannelNode(beside: lab, flags: ["--ip-masq"])
        let flannelSubnet = (try? String(contentsOfFile: flannel.subnetFile, encoding: .utf8))?.split(separator: "\n")
            .first { $0.hasPrefix("FLANNEL_SUBNET=") }.map { String($0.dropFirst("FLANNEL_SUBNET=".count)) } ?? "?"
        let flannelNetwork = flannelSubnet.replacingOccurrences(of: ".1/24", with: ".0/24")
        let weftSubnet = try lab.node("n1")["subnet"] as? String ?? "?"
        #expect(try waitUntil(seconds: 10) { try Command.must(["ip", "netns", "exec", flannel.node, "iptables-save"]).contains("FLANNEL-POSTRTG") })
        let theirs = flannelChains(try Command.must(["ip", "netns", "exec", flannel.node, "iptables-save"]), subnet: flannelNetwork)
        let ours = flannelChains(try lab.weft(["lab", "exec", "n1", "--", "iptables-save"]).stdout, subnet: weftSubnet)
        #expect(ours == theirs, "Weft:\n\(ours.joined(separator: "\n"))\nflanneld:\n\(theirs.joined(separator: "\n"))")
        #expect(theirs.count == 11, "two chains, two jumps, seven rules: \(theirs)")

        #expect(try Command.run(["ip", "netns", "exec", flannel.node, "iptables", "-P", "FORWARD", "DROP"]).succeeded)
        #expect(try lab.weft(["lab", "exec", "n1", "--", "iptables", "-P", "FORWARD", "DROP"]).succeeded)
        let weftPod = try lab.podIP("n1")
        let there = try lab.weft(["lab", "exec", "n1-p1", "--", "ping", "-c", "2", "-W", "2", flannel.podIP])
        #expect(there.succeeded, "Weft pod -> flannel pod: \(there.stdout)\(there.stderr)")
        let back = try flannel.namespaces.exec(flannel.pod, ["ping", "-c", "2", "-W", "2", weftPod])
        #expect(back.succeeded, "flannel pod -> Weft pod: \(back.stdout)\(back.stderr)")
    }
}
