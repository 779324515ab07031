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
        try Self.waitUntilBothProgrammed(lab, flannel)
        let there = try lab.weft(["lab", "exec", "n1-p1", "--", "ping", "-c", "3", "-W", "2", "-M", "do", "-s", payload, flannel.podIP])
        #expect(there.succeeded, "Weft pod -> flannel pod: \(there.stdout)\(there.stderr)\n\((try? Self.overlayState(lab, flannel)) ?? "")\n\(flannel.log.suffix(1500))")
        let back = try flannel.namespaces.exec(flannel.pod, ["ping", "-c", "3", "-W", "2", "-M", "do", "-s", payload, weftPod])
        #expect(back.succeeded, "flannel pod -> Weft pod: \(back.stdout)\(back.stderr)\n\((try? Self.overlayState(lab, flannel)) ?? "")")
        // The Weft pod's own interface takes no more than its MTU with DF.
        let tooBig = try lab.weft(["lab", "exec", "n1-p1", "--", "ping", "-c", "1", "-W", "1", "-M", "do", "-s", "\(weftMTU - 27)", flannel.podIP])
        #expect(!tooBig.succeeded)
    }

    @Test("Weft BPF and stock flanneld: 1 GiB of TCP each way arrives intact by SHA-256, and numbered datagrams of mixed sizes all arrive, in order")
    func bulkBothWaysWithFlanneld() throws {
        let lab = try LabFixture(nodes: 1, dataplane: "bpf", store: "etcd")
        let flannel = try FlannelNode(beside: lab)
        let weftPod = (try lab.node("n1")["pods"] as? [[String: Any]])?.first
        let weftNamespace = try #require(weftPod?["namespace"] as? String)
        let weftIP = try #require(weftPod?["ip"] as? String)
        for (from, to, address) in [(weftNamespace, flannel.pod, flannel.podIP), (flannel.pod, weftNamespace, weftIP)] {
            let (transfer, _) = try PodTraffic.checksummedTCP(from: from, to: to, address: address)
            #expect(transfer.intact, "\(from) -> \(to): sent \(transfer.sent), received \(transfer.received)")
            #expect(transfer.sent.hasPrefix("1073741824 "))
            let datagrams = try PodTraffic.numberedUDP(from: from, to: to, address: address)
            #expect(datagrams.received == datagrams.sent && datagrams.inOrder && datagrams.damaged == 0, "\(from) -> \(to): \(datagrams)")
        }
        let counters = try lab.inNode("n1", ["maps", "counters", "--json"])
        let outcomes = try #require(try JSONSerialization.jsonObject(with: Data(counters.stdout.utf8)) as? [String: [String: Int]])
        #expect((outcomes["encapsulated"]?["packets"] ?? 0) > 1000, "the Weft node encapsulated in from_pod: \(counters.stdout)")
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
        let flannelNetwork = flannel.subnet ?? "?"
        let weftSubnet = try lab.node("n1")["subnet"] as? String ?? "?"
        #expect(try waitUntil(seconds: 10) { try Command.must(["ip", "netns", "exec", flannel.node, "iptables-save"]).contains("FLANNEL-POSTRTG") })
        let theirs = flannelChains(try Command.must(["ip", "netns", "exec", flannel.node, "iptables-save"]), subnet: flannelNetwork)
        let ours = flannelChains(try lab.weft(["lab", "exec", "n1", "--", "iptables-save"]).stdout, subnet: weftSubnet)
        #expect(ours == theirs, "Weft:\n\(ours.joined(separator: "\n"))\nflanneld:\n\(theirs.joined(separator: "\n"))")
        #expect(theirs.count == 11, "two chains, two jumps, seven rules: \(theirs)")

        #expect(try Command.run(["ip", "netns", "exec", flannel.node, "iptables", "-P", "FORWARD", "DROP"]).succeeded)
        #expect(try lab.weft(["lab", "exec", "n1", "--", "iptables", "-P", "FORWARD", "DROP"]).succeeded)
        let weftPod = try lab.podIP("n1")
        try Self.waitUntilBothProgrammed(lab, flannel)
        let there = try lab.weft(["lab", "exec", "n1-p1", "--", "ping", "-c", "2", "-W", "2", flannel.podIP])
        #expect(there.succeeded, "Weft pod -> flannel pod: \(there.stdout)\(there.stderr)")
        let back = try flannel.namespaces.exec(flannel.pod, ["ping", "-c", "2", "-W", "2", weftPod])
        #expect(back.succeeded, "flannel pod -> Weft pod: \(back.stdout)\(back.stderr)")
    }

    /// The longest time without a reply in `ping -D` output, with the times of the replies around it.
    /// Waits until each side has programmed the other: Weft's status lists flanneld's subnet
    /// among its peers, and flanneld (which writes subnet.env before it watches the leases)
    /// routes Weft's subnet through flannel.1. Pinging before that measures start-up, not the path.
    static func waitUntilBothProgrammed(_ lab: LabFixture, _ flannel: FlannelNode) throws {
        let flannelSubnet = try #require(flannel.subnet)
        let weftSubnet = try #require(try lab.node("n1")["subnet"] as? String)
        #expect(try waitUntil(seconds: 15) {
            let status = try JSONSerialization.jsonObject(with: Data(try lab.inNode("n1", ["status", "--json"]).stdout.utf8)) as? [String: Any]
            return (status?["peers"] as? [[String: Any]])?.contains { $0["subnet"] as? String == flannelSubnet } == true
        }, "Weft never applied flanneld's lease:\n\(lab.log("n1").suffix(1500))")
        #expect(try waitUntil(seconds: 15) {
            try Command.must(["ip", "-n", flannel.node, "route", "show", weftSubnet]).contains("flannel.1")
        }, "flanneld never programmed Weft's lease:\n\(flannel.log.suffix(1500))")
    }

    /// Both nodes' overlay entries, for a failure's message.
    static func overlayState(_ lab: LabFixture, _ flannel: FlannelNode) throws -> String {
        let namespace = try lab.node("n1")["namespace"] as? String ?? "?"
        return try [namespace, flannel.node].map { node in
            let parts = [["ip", "route"], ["ip", "neigh"], ["bridge", "fdb", "show"]].map { (try? Command.run(["ip", "netns", "exec", node] + $0))?.stdout ?? "" }
            return "\(node):\n" + parts.joined(separator: "\n")
        }.joined(separator: "\n")
    }

    static func longestSilence(_ output: String) -> (seconds: Double, after: Double) {
        let times = output.split(separator: "\n").compactMap { line -> Double? in
            guard line.hasPrefix("["), line.contains("bytes from"), let end = line.firstIndex(of: "]") else { return nil }
            return Double(line[line.index(after: line.startIndex)..<end])
        }
        var longest = (seconds: 0.0, after: 0.0)
        for (earlier, later) in zip(times, times.dropFirst()) where later - earlier > longest.seconds {
            longest = (later - earlier, earlier)
        }
        return longest
    }

    @Test("Takeover in place: flanneld -> weft daemon (same flags) -> flanneld on a node with a pod under a 100 Hz ping: same subnet and VTEP MAC, under 1 s without replies at each switch")
    func takeover() throws {
        let lab = try LabFixture(nodes: 1, dataplane: "bpf", store: "etcd")
        let flannel = try FlannelNode(beside: lab)
        let subnet = try #require(flannel.subnet)
        func vtepMAC() throws -> String {
            let leases = try lab.weft(["lab", "exec", "n1", "--", "weft", "leases", "list", "--json", "--etcd-endpoints", "http://198.18.0.254:2379"]).stdout
            let entries = try JSONSerialization.jsonObject(with: Data(leases.utf8)) as? [[String: Any]] ?? []
            return entries.first { $0["subnet"] as? String == subnet }?["vtepMAC"] as? String ?? "none"
        }
        let mac = try vtepMAC()
        let podIP = flannel.podIP
        let pinger = try ChildProcess(["ip", "netns", "exec", "weft-\(lab.name)-n1-p1", "ping", "-D", "-i", "0.01", "-W", "1", podIP],
                                      output: .pipe, error: .pipe)
        usleep(1_000_000)

        // flanneld -> Weft: the same command line, and where Weft keeps its own state.
        flannel.stopFlanneld()
        let weftState = try TemporaryDirectory()
        let weftLog = weftState.file("daemon.log")
        let weft = try flannel.namespaces.start(flannel.node, [WeftProcess.binary, "daemon"] + flannel.flags
            + ["--pin-dir", weftState.file("bpf"), "--status-file", weftState.file("status.json")], output: .file(weftLog))
        let weftReady = try waitUntil(seconds: 15) {
            (try? String(contentsOfFile: weftState.file("status.json"), encoding: .utf8))?.contains(#""ready":true"#) == true
        }
        let log = (try? String(contentsOfFile: weftLog, encoding: .utf8)) ?? ""
        #expect(weftReady, "\(log.suffix(2000))")
        #expect(flannel.subnet == subnet, "the same subnet")
        #expect(try vtepMAC() == mac, "the same VTEP MAC")
        usleep(1_500_000)

        // Weft -> flanneld: Weft's device makes way for the one flanneld adopts.
        weft.signal(SIGTERM)
        _ = weft.wait()
        let down = try flannel.namespaces.exec(flannel.node, [WeftProcess.binary, "dataplane", "down", "--pin-dir", weftState.file("bpf"),
                                                              "--for-flanneld", "--iface", "eth0"])
        #expect(down.succeeded, "\(down.stderr)")
        try flannel.restartFlanneld()
        #expect(try waitUntil(seconds: 15) { flannel.log.contains("Running backend") || flannel.log.contains("Waiting for") })
        usleep(2_000_000)
        #expect(flannel.subnet == subnet)
        #expect(try vtepMAC() == mac)

        pinger.signal(SIGINT)
        let output = String(decoding: pinger.collect().output, as: UTF8.self)
        let silence = Self.longestSilence(output)
        print("takeover flanneld -> Weft -> flanneld: longest time without a reply \(silence.seconds) s")
        #expect(silence.seconds < 1, "\(silence.seconds) s without replies after \(silence.after); Weft's log:\n\(log.suffix(2500))\nflanneld's:\n\(flannel.log.suffix(1500))")
        #expect(output.split(separator: "\n").filter { $0.contains("bytes from") }.count > 300, "the ping ran throughout")
    }

    @Test("Rollback with no step between (--on-stop flannel): Weft stopped, then stock flanneld started on the node, comes up on the same subnet and VTEP MAC and carries the pod's traffic within seconds")
    func rollbackWithoutTheHandBackStep() throws {
        let lab = try LabFixture(nodes: 1, dataplane: "bpf", store: "etcd")
        let flannel = try FlannelNode(beside: lab)
        let subnet = try #require(flannel.subnet)
        let podIP = flannel.podIP
        flannel.stopFlanneld()
        let weftState = try TemporaryDirectory()
        let weftLog = weftState.file("daemon.log")
        let weft = try flannel.namespaces.start(flannel.node, [WeftProcess.binary, "daemon"] + flannel.flags
            + ["--pin-dir", weftState.file("bpf"), "--status-file", weftState.file("status.json"), "--on-stop", "flannel"], output: .file(weftLog))
        #expect(try waitUntil(seconds: 15) {
            (try? String(contentsOfFile: weftState.file("status.json"), encoding: .utf8))?.contains(#""ready":true"#) == true
        }, "\(((try? String(contentsOfFile: weftLog, encoding: .utf8)) ?? "").suffix(2000))")
        #expect(try lab.weft(["lab", "exec", "n1-p1", "--", "ping", "-c", "2", "-W", "2", podIP]).succeeded, "through Weft")
        let pinger = try ChildProcess(["ip", "netns", "exec", "weft-\(lab.name)-n1-p1", "ping", "-D", "-i", "0.01", "-W", "1", podIP],
                                      output: .pipe, error: .pipe)
        usleep(500_000)
        // The rollback: Weft's process ends (its DaemonSet deleted), flanneld starts (kube-flannel.yml applied).
        weft.signal(SIGTERM)
        _ = weft.wait()
        try flannel.restartFlanneld()
        #expect(try waitUntil(seconds: 15) { flannel.log.contains("Running backend") || flannel.log.contains("Waiting for") }, "\(flannel.log.suffix(1500))")
        usleep(3_000_000)
        #expect(!flannel.log.contains("address already in use"), "\(flannel.log.suffix(1500))")
        #expect(flannel.subnet == subnet)
        pinger.signal(SIGINT)
        let output = String(decoding: pinger.collect().output, as: UTF8.self)
        let silence = Self.longestSilence(output)
        print("rollback Weft -> flanneld with no step: longest time without a reply \(silence.seconds) s")
        #expect(silence.seconds < 3, "\(silence.seconds) s without replies after \(silence.after); flanneld's log:\n\(flannel.log.suffix(1500))")
        #expect(try lab.weft(["lab", "exec", "n1-p1", "--", "ping", "-c", "2", "-W", "2", podIP]).succeeded, "through flanneld")
    }
}
