import Foundation
import Glibc
import Testing
import WeftCore
import WeftTestSupport

/// flanneld's masquerade and forward rules on Weft nodes: what they let through, that they
/// are flanneld's, and that they come back.
@Suite("Masquerade and forward rules", .enabled(if: isRoot, "needs root for namespaces and BPF"))
struct NetfilterRulesTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let dataplane: String
        let backend: String
        var testDescription: String { "\(dataplane), \(backend)" }
    }

    /// A host on the lab's underlay, outside the cluster network, with no route to the pods:
    /// only traffic that left under its node's address gets an answer.
    final class OutsideHost {
        let namespaces = Namespaces()
        let namespace: String
        static let address = "198.18.0.200"

        init(on lab: LabFixture) throws {
            namespace = try namespaces.add("outside")
            try namespaces.topology.plug(.init(namespace, "eth0", "\(Self.address)/24"), into: lab.underlay, as: "\(namespaces.tag)o")
        }
    }

    static func iptablesSave(_ lab: LabFixture, _ node: String) throws -> IPTablesSave {
        IPTablesSave(try lab.weft(["lab", "exec", node, "--", "iptables-save"]).stdout)
    }

    static func wanted(_ lab: LabFixture, _ node: String) throws -> FlannelRules {
        let subnet = try #require(IPv4Prefix(try lab.node(node)["subnet"] as? String ?? ""))
        return FlannelRules(network: IPv4Prefix("10.244.0.0/16")!, subnet: subnet, masquerade: true, forward: true)
    }

    /// The source address pod `to` sees on a TCP connection from pod `from` (iperf3's server report).
    static func sourceSeen(_ lab: LabFixture, from: String, to: String, address: String) throws -> String? {
        let namespaces = Namespaces()
        let podNamespace = "weft-\(lab.name)-\(to)"
        let server = try namespaces.start(podNamespace, ["iperf3", "-s", "-1", "-J", "-p", "5301"], output: .pipe)
        var connected = false
        for _ in 0..<50 where !connected {
            connected = try lab.weft(["lab", "exec", from, "--", "iperf3", "-c", address, "-p", "5301", "-n", "1M"]).succeeded
            if !connected { usleep(100_000) }
        }
        guard connected else { return nil }
        let report = server.collect().output
        guard let document = try JSONSerialization.jsonObject(with: Data(report)) as? [String: Any],
              let start = document["start"] as? [String: Any], let connections = start["connected"] as? [[String: Any]]
        else { return nil }
        return connections.first?["remote_host"] as? String
    }

    @Test("--ip-masq with FORWARD dropping: pods reach an outside host as their node and each other as themselves; the rules are flanneld's and come back after a flush",
          arguments: ["bpf", "kernel"].flatMap { dataplane in ["vxlan", "host-gw"].map { Case(dataplane: dataplane, backend: $0) } })
    func masquerade(shape: Case) throws {
        let lab = try LabFixture(nodes: 2, backend: shape.backend, dataplane: shape.dataplane, ipMasq: true)
        let outside = try OutsideHost(on: lab)
        for node in ["n1", "n2"] {
            #expect(try lab.weft(["lab", "exec", node, "--", "iptables", "-P", "FORWARD", "DROP"]).succeeded)
        }
        let saved = try Self.iptablesSave(lab, "n1")
        let wanted = try Self.wanted(lab, "n1")
        #expect(saved.rules("nat", "FLANNEL-POSTRTG") == wanted.masqueradeRules.rules, "\(saved)")
        #expect(saved.rules("filter", "FLANNEL-FWD") == wanted.forwardRules.rules)
        #expect(saved.rules("nat", "POSTROUTING").first == wanted.masqueradeRules.jump)
        #expect(saved.rules("filter", "FORWARD").first == wanted.forwardRules.jump)

        let out = try lab.weft(["lab", "exec", "n1-p1", "--", "ping", "-c", "2", "-W", "2", OutsideHost.address])
        #expect(out.succeeded, "pod -> outside host (it answers only the node's address): \(out.stdout)\(out.stderr)")
        #expect(try lab.weft(["lab", "check"]).succeeded, "pods reach each other with FORWARD dropping")
        let seen = try Self.sourceSeen(lab, from: "n1-p1", to: "n2-p1", address: try lab.podIP("n2"))
        #expect(seen == (try lab.podIP("n1")), "pod to pod keeps the pod's address")

        // A flushed nat table is put back within the resync period (5 s).
        #expect(try lab.weft(["lab", "exec", "n1", "--", "iptables", "-t", "nat", "-F"]).succeeded)
        #expect(try Self.iptablesSave(lab, "n1").rules("nat", "FLANNEL-POSTRTG").isEmpty)
        #expect(try waitUntil(seconds: 8) { try Self.iptablesSave(lab, "n1").rules("nat", "FLANNEL-POSTRTG") == wanted.masqueradeRules.rules })
        #expect(try Self.iptablesSave(lab, "n1").rules("nat", "POSTROUTING") == [wanted.masqueradeRules.jump])
        #expect(lab.log("n1").contains("wrote the nat chain FLANNEL-POSTRTG"), "\(lab.log("n1").suffix(1500))")
        _ = outside
    }

    @Test("Without --ip-masq the outside host gets no answerable traffic; with FORWARD dropping, the kernel dataplane's pods need FLANNEL-FWD (on by default)")
    func withoutTheRules() throws {
        let lab = try LabFixture(nodes: 2, dataplane: "kernel")
        let outside = try OutsideHost(on: lab)
        #expect(!(try lab.weft(["lab", "exec", "n1-p1", "--", "ping", "-c", "1", "-W", "1", OutsideHost.address]).succeeded))
        #expect(!(try Self.iptablesSave(lab, "n1").hasChain("nat", "FLANNEL-POSTRTG")))
        #expect(try Self.iptablesSave(lab, "n1").hasChain("filter", "FLANNEL-FWD"), "forward rules are on by default")
        for node in ["n1", "n2"] {
            #expect(try lab.weft(["lab", "exec", node, "--", "iptables", "-P", "FORWARD", "DROP"]).succeeded)
        }
        #expect(try lab.weft(["lab", "check"]).succeeded)
        // Without FLANNEL-FWD (what the flag would leave out), FORWARD's DROP holds.
        #expect(try lab.weft(["lab", "exec", "n1", "--", "iptables", "-D", "FORWARD", "-m", "comment", "--comment", "flanneld forward",
                              "-j", "FLANNEL-FWD"]).succeeded)
        #expect(!(try lab.weft(["lab", "exec", "n1-p1", "--", "ping", "-c", "1", "-W", "1", try lab.podIP("n2")]).succeeded))
        _ = outside
    }

    @Test("EnableNFTables: the same rules as the flannel-ipv4 table, none in iptables, put back after a flush, and removed by weft dataplane down")
    func nftables() throws {
        let lab = try LabFixture(nodes: 2, dataplane: "bpf", ipMasq: true, nftables: true)
        let outside = try OutsideHost(on: lab)
        let table = try lab.weft(["lab", "exec", "n1", "--", "nft", "list", "table", "ip", "flannel-ipv4"]).stdout
        #expect(table.contains("hook postrouting") && table.contains("masquerade fully-random") && table.contains("hook forward"), "\(table)")
        #expect(!(try Self.iptablesSave(lab, "n1").hasChain("nat", "FLANNEL-POSTRTG")))
        #expect(try lab.weft(["lab", "exec", "n1-p1", "--", "ping", "-c", "2", "-W", "2", OutsideHost.address]).succeeded)

        #expect(try lab.weft(["lab", "exec", "n1", "--", "nft", "flush", "table", "ip", "flannel-ipv4"]).succeeded)
        #expect(try waitUntil(seconds: 8) {
            try lab.weft(["lab", "exec", "n1", "--", "nft", "list", "table", "ip", "flannel-ipv4"]).stdout.contains("masquerade")
        })

        // Stopped, and taken down: the table goes with the rest.
        let pid = pid_t(try lab.node("n1")["pid"] as? Int ?? 0)
        kill(pid, SIGTERM)
        #expect(try waitUntil(seconds: 5) { kill(pid, 0) != 0 })
        let down = try lab.weft(["lab", "exec", "n1", "--", "weft", "dataplane", "down", "--pin-dir", "\(lab.directory)/n1/bpf"])
        #expect(down.succeeded, "\(down.stderr)")
        #expect(!(try lab.weft(["lab", "exec", "n1", "--", "nft", "list", "table", "ip", "flannel-ipv4"]).succeeded))
        _ = outside
    }

    @Test("A node switched from EnableNFTables back to iptables: the flannel-ipv4 table goes at start, and the iptables chains take its place")
    func switchedBackToIPTables() throws {
        let lab = try LabFixture(nodes: 2, dataplane: "bpf", ipMasq: true, nftables: true)
        #expect(try lab.weft(["lab", "exec", "n1", "--", "nft", "list", "table", "ip", "flannel-ipv4"]).succeeded)
        let config = "\(lab.directory)/n1/net-conf-iptables.json"
        try #"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}"#.write(toFile: config, atomically: true, encoding: .utf8)
        let (daemon, log, ready) = try lab.replaceDaemon("n1", arguments: ["--net-config-path", config, "--ip-masq"])
        defer { daemon.kill(); _ = daemon.wait() }
        #expect(ready, "\((try? String(contentsOfFile: log, encoding: .utf8))?.suffix(2000) ?? "")")
        #expect(!(try lab.weft(["lab", "exec", "n1", "--", "nft", "list", "table", "ip", "flannel-ipv4"]).succeeded), "the table is gone")
        #expect(try Self.iptablesSave(lab, "n1").hasChain("nat", "FLANNEL-POSTRTG"))
        #expect((try? String(contentsOfFile: log, encoding: .utf8))?.contains("removed the nftables table ip flannel-ipv4, left by a run with EnableNFTables") == true)
    }
}
