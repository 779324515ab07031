import Foundation
import Glibc
import Testing
import WeftTestSupport

/// `weft monitor` on a lab node, as an operator whose pod cannot reach another would run it.
@Suite("weft monitor", .enabled(if: isRoot, "needs root for namespaces and BPF"))
struct MonitorTests {
    /// The monitor of a node, printing JSON lines into a file of the test's own.
    final class Monitor {
        let process: ChildProcess
        let output: TemporaryDirectory
        var path: String { output.file("monitor.jsonl") }

        init(_ lab: LabFixture, node: String, arguments: [String]) throws {
            output = try TemporaryDirectory()
            let namespace = try lab.node(node)["namespace"] as? String ?? "?"
            process = try ChildProcess(["ip", "netns", "exec", namespace, WeftProcess.binary, "monitor", "--json", "--pin-dir",
                                        "\(lab.directory)/\(node)/bpf", "--duration", "60"] + arguments,
                                       output: .file(output.file("monitor.jsonl")), error: .file(output.file("monitor.err")))
            usleep(500_000)
        }

        deinit { process.kill() }

        var events: [[String: Any]] {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        }

        /// The first event with this reason (and destination, if given), waiting at most `seconds` for it.
        func event(_ reason: String, to destination: String? = nil, within seconds: Double = 1) throws -> [String: Any]? {
            var found: [String: Any]?
            _ = try waitUntil(seconds: seconds) {
                found = self.events.first { $0["reason"] as? String == reason && (destination == nil || $0["destination"] as? String == destination) }
                return found != nil
            }
            return found
        }
    }

    @Test("A spoofed packet, a packet to an unknown destination and an oversize DF packet each appear with their reason within a second")
    func drops() throws {
        let lab = try LabFixture(nodes: 2)
        let monitor = try Monitor(lab, node: "n1", arguments: ["--type", "drop"])
        let spoofed = try lab.address(on: "n1", host: 200)
        let target = try lab.podIP("n2")
        func pod(_ arguments: [String]) throws -> Command.Result { try lab.weft(["lab", "exec", "n1-p1", "--"] + arguments) }

        #expect(try pod(["ip", "addr", "add", "\(spoofed)/32", "dev", "eth0"]).succeeded)
        _ = try pod(["ping", "-c", "1", "-W", "1", "-I", spoofed, target])
        let spoof = try monitor.event("dropped_pod_spoofed_source")
        #expect(spoof?["source"] as? String == spoofed && spoof?["destination"] as? String == target, "\(monitor.events)")
        #expect(spoof?["hook"] as? String == "from_pod" && spoof?["protocol"] as? String == "icmp")

        // An address in the cluster network that no node leases: the kernel routes it into the
        // overlay, where no peer owns it.
        let leased = Set(try (lab.status()["nodes"] as? [[String: Any]] ?? []).compactMap { $0["subnet"] as? String })
        let free = (1...254).map { "10.244.\($0).0/24" }.first { !leased.contains($0) } ?? "10.244.254.0/24"
        let unknown = String(free.dropLast(4)) + "9"
        _ = try pod(["ping", "-c", "1", "-W", "1", unknown])
        let noPeer = try monitor.event("dropped_no_peer", to: unknown)
        #expect(noPeer?["destination"] as? String == unknown, "\(monitor.events)")
        #expect(noPeer?["hook"] as? String == "to_overlay")

        // A pod whose MTU is the underlay's, not the tunnel's, sends 1500 bytes with DF.
        let endpoints = try JSONSerialization.jsonObject(with: Data(try lab.inNode("n1", ["maps", "endpoints", "--json"]).stdout.utf8)) as? [[String: Any]] ?? []
        let hostVeth = endpoints.first { $0["ip"] as? String == (try? lab.podIP("n1")) }?["ifindex"] as? Int ?? 0
        let links = try lab.weft(["lab", "exec", "n1", "--", "ip", "-o", "link", "show"]).stdout
        let vethName = links.split(separator: "\n").first { $0.hasPrefix("\(hostVeth):") }?.split(separator: ":")[1]
            .trimmingCharacters(in: .whitespaces).split(separator: "@").first.map(String.init) ?? "?"
        #expect(try lab.weft(["lab", "exec", "n1", "--", "ip", "link", "set", vethName, "mtu", "1500"]).succeeded, "\(vethName)")
        #expect(try pod(["ip", "link", "set", "eth0", "mtu", "1500"]).succeeded)
        _ = try pod(["ping", "-c", "1", "-W", "1", "-M", "do", "-s", "1472", target])
        let tooBig = try monitor.event("passed_too_big_df")
        #expect(tooBig?["type"] as? String == "drop" && tooBig?["length"] as? Int ?? 0 >= 1500, "\(monitor.events)")
        #expect(monitor.events.allSatisfy { $0["type"] as? String == "drop" }, "--type drop shows drops only")
    }

    @Test("--type trace shows the decisions for one pod's traffic while it runs, and tracing stops with it")
    func trace() throws {
        let lab = try LabFixture(nodes: 2)
        let target = try lab.podIP("n2")
        do {
            let monitor = try Monitor(lab, node: "n1", arguments: ["--type", "trace", "--pod", target])
            #expect(try lab.weft(["lab", "exec", "n1-p1", "--", "ping", "-c", "1", "-W", "2", target]).succeeded)
            let out = try monitor.event("encapsulated")
            #expect(out?["type"] as? String == "trace" && out?["destination"] as? String == target && out?["vni"] as? Int == 1, "\(monitor.events)")
            #expect(try monitor.event("delivered_local")?["source"] as? String == target, "the reply, into the pod: \(monitor.events)")
            #expect(monitor.events.allSatisfy { $0["source"] as? String == target || $0["destination"] as? String == target })
            monitor.process.signal(SIGINT)
            _ = monitor.process.wait()
        }
        let events = try JSONSerialization.jsonObject(with: Data(try lab.inNode("n1", ["maps", "events", "--json"]).stdout.utf8)) as? [String: Int]
        #expect(events?["tracingMonitors"] == 0, "tracing ends with the monitor: \(String(describing: events))")
    }

    @Test("A tracing monitor killed (SIGKILL), hung up or cut off by a closed pipe leaves no tracing behind once its lease runs out",
          arguments: ["SIGKILL", "SIGHUP", "closed pipe"])
    func tracingEndsHoweverTheMonitorEnds(ending: String) throws {
        let lab = try LabFixture(nodes: 2)
        func tracing() throws -> Int {
            let output = try lab.inNode("n1", ["maps", "events", "--json"]).stdout
            return (try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Int])?["tracingMonitors"] ?? -1
        }
        if ending == "closed pipe" {
            // `weft monitor --type trace | head -n 1`: head exits after one line, and the next write kills the monitor.
            let namespace = try lab.node("n1")["namespace"] as? String ?? "?"
            let pipeline = try ChildProcess(["ip", "netns", "exec", namespace, "sh", "-c",
                                             "\(WeftProcess.binary) monitor --type trace --pin-dir \(lab.directory)/n1/bpf | head -n 1"])
            #expect(try waitUntil(seconds: 5) { try tracing() == 1 })
            _ = try lab.weft(["lab", "exec", "n1-p1", "--", "ping", "-c", "3", "-i", "0.2", try lab.podIP("n2")])
            #expect(try waitUntil(seconds: 5) { !pipeline.isRunning }, "head took its line and the monitor died of the pipe")
        } else {
            let monitor = try Monitor(lab, node: "n1", arguments: ["--type", "trace"])
            #expect(try waitUntil(seconds: 5) { try tracing() == 1 })
            monitor.process.signal(ending == "SIGKILL" ? SIGKILL : SIGHUP)
            _ = monitor.process.wait()
        }
        #expect(try waitUntil(seconds: 5) { try tracing() == 0 }, "the lease (3 s) runs out")
    }

    @Test("A flood of dropped packets is rate-limited in the monitor and counted in full, while good traffic flows")
    func flood() throws {
        let lab = try LabFixture(nodes: 2)
        let monitor = try Monitor(lab, node: "n1", arguments: ["--type", "drop"])
        let spoofed = try lab.address(on: "n1", host: 201)
        let target = try lab.podIP("n2")
        #expect(try lab.weft(["lab", "exec", "n1-p1", "--", "ip", "addr", "add", "\(spoofed)/32", "dev", "eth0"]).succeeded)
        // 2 s of as many spoofed UDP packets as one Python loop sends.
        let flood = """
            import socket, time
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("\(spoofed)", 0))
            sent, end = 0, time.time() + 2
            while time.time() < end:
                for _ in range(100):
                    s.sendto(b"x" * 18, ("\(target)", 9))
                sent += 100
            print(sent)
            """
        let sent = Int(try lab.weft(["lab", "exec", "n1-p1", "--", "python3", "-c", flood]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        #expect(try lab.weft(["lab", "exec", "n1-p1", "--", "ping", "-c", "1", "-W", "2", target]).succeeded, "good traffic flows")
        usleep(500_000)
        let counters = try JSONSerialization.jsonObject(with: Data(try lab.inNode("n1", ["maps", "counters", "--json"]).stdout.utf8)) as? [String: [String: Int]]
        let dropped = counters?["dropped_pod_spoofed_source"]?["packets"] ?? 0
        let reported = monitor.events.filter { $0["reason"] as? String == "dropped_pod_spoofed_source" }.count
        let events = try JSONSerialization.jsonObject(with: Data(try lab.inNode("n1", ["maps", "events", "--json"]).stdout.utf8)) as? [String: Int]
        let suppressed = events?["suppressedDropReports"] ?? 0
        #expect(sent > 10_000 && dropped >= sent, "every dropped packet is counted: \(dropped) of \(sent) sent")
        // At most the limit per CPU and second, over the flood's 2 s on this machine's CPUs, plus a second's slack.
        let limit = 1000 * ProcessInfo.processInfo.activeProcessorCount * 3
        #expect(reported > 0 && reported <= limit, "\(reported) reported of \(dropped) dropped")
        #expect(suppressed > 0 && reported + suppressed <= dropped, "\(suppressed) held back")
    }
}
