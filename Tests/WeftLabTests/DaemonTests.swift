import Foundation
import Glibc
import Testing
import WeftTestSupport

/// `weft daemon` on the embedded store, in lab nodes.
@Suite("weft daemon", .enabled(if: isRoot, "needs root for namespaces and BPF"))
struct DaemonTests {
    @Test("Three daemons form a full mesh; kill -9: traffic keeps flowing; restarted, the node reclaims its subnet and VTEP MAC and no peer sees a change",
          arguments: ["embedded", "etcd"])
    func killAndRestart(store: String) throws {
        let lab = try LabFixture(store: store)
        #expect(try lab.weft(["lab", "check"]).succeeded, "full mesh")
        let before = try lab.inNode("n2", ["leases", "--json"]).stdout
        let n1 = try lab.node("n1")
        kill(pid_t(n1["pid"] as? Int ?? 0), SIGKILL)
        #expect(try lab.weft(["lab", "check"]).succeeded, "pods keep talking without their daemon")
        let restart = try lab.weft(["lab", "restart", "n1"])
        #expect(restart.succeeded, "\(restart.stderr)")
        #expect(restart.stdout.contains("subnet \(n1["subnet"] as? String ?? "?")"), "\(restart.stdout)")
        let after = try lab.inNode("n2", ["leases", "--json"]).stdout
        #expect(Self.identities(before) == Self.identities(after), "subnets, public IPs and VTEP MACs are unchanged")
        #expect(try lab.weft(["lab", "check"]).succeeded)
    }

    @Test("A node's lease deleted by hand: its daemon takes it back, and traffic recovers", arguments: ["embedded", "etcd"])
    func leaseDeletedByHand(store: String) throws {
        let lab = try LabFixture(nodes: 2, store: store)
        let subnet = try lab.node("n1")["subnet"] as? String ?? "?"
        #expect(try lab.inNode("n2", ["leases", "revoke", subnet]).succeeded)
        let back = try waitUntil(seconds: 10) { try lab.inNode("n2", ["leases"]).stdout.contains(subnet) }
        #expect(back, "the lease of \(subnet) is back")
        #expect(try waitUntil(seconds: 10) { try lab.peers(of: "n2").contains(subnet) })
        #expect(try lab.weft(["lab", "check"]).succeeded)
    }

    @Test("A peer's lease deleted: every other node removes it from its dataplane", arguments: ["embedded", "etcd"])
    func peerLeaseRemoved(store: String) throws {
        let lab = try LabFixture(dataplane: "mixed", store: store)
        let n3 = try lab.node("n3")
        kill(pid_t(n3["pid"] as? Int ?? 0), SIGKILL)
        let subnet = n3["subnet"] as? String ?? "?"
        #expect(try lab.inNode("n1", ["leases", "revoke", subnet]).succeeded)
        #expect(try waitUntil(seconds: 10) { !(try lab.peers(of: "n1").contains(subnet)) }, "BPF node n1 forgot \(subnet)")
        #expect(try waitUntil(seconds: 10) {
            try !lab.weft(["lab", "exec", "n2", "--", "ip", "route", "show", subnet]).stdout.contains(subnet)
        }, "kernel node n2 removed its route to \(subnet)")
    }

    @Test("SIGTERM during traffic: exit 0, and pods keep talking")
    func sigterm() throws {
        let lab = try LabFixture(nodes: 2)
        // A daemon of this test's own, in n1's place, so the test sees its exit status.
        let (daemon, log, ready) = try lab.replaceDaemon("n1")
        defer { daemon.kill() }
        #expect(ready)
        let flood = try Command.run(["ip", "netns", "exec", "weft-\(lab.name)-n2-p1", "ping", "-c", "1", "-W", "2",
                                     (lab.node("n1")["pods"] as? [[String: Any]])?.first?["ip"] as? String ?? "?"])
        #expect(flood.succeeded)
        daemon.signal(SIGTERM)
        let termination = daemon.wait()
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(termination == .exited(0), "\(output)")
        #expect(output.contains("the dataplane stays in place"))
        #expect(try lab.weft(["lab", "check"]).succeeded, "pods keep talking after the daemon stopped")
    }

    @Test("--on-stop flannel: SIGTERM leaves the kernel dataplane as flanneld programs it (flannel.1 with the lease's MAC), pods keep talking, and a restarted Weft takes it back with its pods")
    func stopHandsTheNodeToTheKernel() throws {
        let lab = try LabFixture(nodes: 2)
        let namespace = try lab.node("n1")["namespace"] as? String ?? "?"
        let mac = try Command.must(["ip", "netns", "exec", namespace, "cat", "/sys/class/net/weft.1/address"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let (daemon, log, ready) = try lab.replaceDaemon("n1", arguments: ["--on-stop", "flannel", "--cni-data-dir", "\(lab.directory)/n1/cni"])
        defer { daemon.kill() }
        #expect(ready)
        daemon.signal(SIGTERM)
        #expect(daemon.wait() == .exited(0))
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(output.contains("handed to the kernel as Flannel programs it"), "\(output.suffix(2000))")
        let links = try Command.must(["ip", "-n", namespace, "-d", "link", "show"])
        #expect(!links.contains("weft.1"), "\(links)")
        let flannel = try Command.must(["ip", "-n", namespace, "-d", "link", "show", "flannel.1"])
        #expect(flannel.contains(mac) && flannel.contains("dstport 8472"), "\(flannel)")
        let filters = try Command.must(["tc", "-n", namespace, "filter", "show", "dev", "eth0", "ingress"])
        #expect(!filters.contains("from_underlay"), "no Weft program is left: \(filters)")
        #expect(try lab.weft(["lab", "check"]).succeeded, "pods talk over the kernel's path with no daemon")
        let restart = try lab.weft(["lab", "restart", "n1"])
        #expect(restart.succeeded, "\(restart.stderr)")
        #expect(try lab.inNode("n1", ["maps", "endpoints", "--json"]).stdout.contains(try lab.podIP("n1")), "the pod is registered again")
        #expect(try lab.weft(["lab", "check"]).succeeded)
    }

    @Test("Started on a read-only disk: the daemon stays up, /readyz says why, and it becomes ready once the disk is writable")
    func startedOnAReadOnlyStore() throws {
        let lab = try LabFixture(nodes: 1)
        let n1 = try lab.node("n1")
        let namespace = n1["namespace"] as? String ?? "?"
        let pid = pid_t(n1["pid"] as? Int ?? 0)
        kill(pid, SIGTERM)
        #expect(try waitUntil(seconds: 5) { kill(pid, 0) != 0 })
        let disk = "\(lab.directory)/n1/ro-disk"
        try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
        try Command.must(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", disk])
        defer { umount2(disk, Int32(MNT_DETACH)) }
        try Command.must(["mount", "-o", "remount,ro", disk])
        let config = "\(lab.directory)/n1/net-conf-ro.json"
        try #"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}"#.write(toFile: config, atomically: true, encoding: .utf8)
        let log = "\(lab.directory)/n1/ro-daemon.log"
        let daemon = try ChildProcess(["ip", "netns", "exec", namespace, WeftProcess.binary, "daemon", "--store-file", "\(disk)/leases.db",
                                       "--net-config-path", config, "--iface", "eth0", "--subnet-file", "\(lab.directory)/n1/subnet.env",
                                       "--pin-dir", "\(lab.directory)/n1/bpf", "--status-file", "\(lab.directory)/n1/status-ro.json",
                                       "--dataplane", "bpf", "--healthz-ip", "127.0.0.1", "--healthz-port", "9100"],
                                      output: .file(log), error: .file(log))
        defer { daemon.kill(); _ = daemon.wait() }
        func readyz() -> String {
            let probe = """
                import urllib.request, urllib.error
                try:
                    print(urllib.request.urlopen("http://127.0.0.1:9100/readyz", timeout=2).read().decode())
                except urllib.error.HTTPError as e:
                    print(e.read().decode())
                except Exception as e:
                    print("no answer:", e)
                """
            return (try? Command.run(["ip", "netns", "exec", namespace, "python3", "-c", probe]))?.stdout ?? ""
        }
        #expect(try waitUntil(seconds: 10) { readyz().contains("the lease store cannot be used") },
                "\(readyz()) \(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").suffix(1500))")
        #expect(readyz().contains("read-only mount"), "\(readyz())")
        Thread.sleep(forTimeInterval: 3)
        #expect(daemon.isRunning, "the daemon waits for the disk rather than exit: \(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").suffix(1500))")
        // `ip netns exec` gave the daemon a mount namespace of its own, with its own copy of the
        // read-only flag: the disk is fixed where the daemon sees it.
        try Command.must(["nsenter", "--target", "\(daemon.pid)", "--mount", "mount", "-o", "remount,rw", disk])
        #expect(try waitUntil(seconds: 45) { readyz().hasPrefix("ready") }, "\(readyz()) \(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").suffix(2500))")
    }

    @Test("The store goes away: the daemons retry and log it, and the dataplane stays as it is")
    func storeUnreachable() throws {
        let lab = try LabFixture(nodes: 2, store: "etcd")
        let etcd = try #require(try lab.status()["etcdPID"] as? Int)
        kill(pid_t(etcd), SIGKILL)
        #expect(try waitUntil(seconds: 10) { lab.log("n1").contains("lease watch interrupted; resuming") }, "\(lab.log("n1"))")
        #expect(try lab.weft(["lab", "check"]).succeeded, "pods keep talking while the store is down")
        let n1 = try lab.node("n1")
        #expect(n1["health"] as? String == "ready", "the daemon keeps running: \(n1)")
    }

    @Test("A TLS configuration etcd refuses (another CA) stops the daemon at start, naming the flag, with a non-zero exit")
    func tlsMisconfigurationIsFatal() throws {
        let cluster = try EtcdCluster(tls: true)
        let server = try #require(cluster.tls)
        let files = try TemporaryDirectory()
        let otherCA = try EtcdCluster.makeCertificates(in: files).ca
        // Everything the daemon would write goes to the test's own directory; it stops before any kernel state.
        let daemon = try WeftProcess.Running(["daemon", "--etcd-endpoints", cluster.endpoints.joined(separator: ","), "--etcd-cafile", otherCA,
                                              "--etcd-certfile", server.clientCertificate, "--etcd-keyfile", server.clientKey,
                                              "--etcd-username", "root", "--etcd-password", "pw-never-shown",
                                              "--pin-dir", files.file("pins"), "--subnet-file", files.file("subnet.env"),
                                              "--status-file", files.file("status.json"), "--iface", "lo", "--log-level", "debug"])
        let exited = try waitUntil(seconds: 15) { kill(daemon.pid, 0) != 0 || (try? String(contentsOfFile: "/proc/\(daemon.pid)/stat", encoding: .utf8))?.contains(") Z ") == true }
        if !exited { daemon.stop() }
        let result = daemon.finish()
        #expect(exited, "the daemon kept retrying a configuration no retry fixes")
        #expect(result.status != 0)
        #expect(result.stderr.contains("not signed by the CA in --etcd-cafile \(otherCA)"), "\(result.stderr)")
        #expect(!(result.stderr + result.stdout).contains("pw-never-shown"), "the password stays out of the log, even at debug level")
        #expect(!FileManager.default.fileExists(atPath: files.file("subnet.env")))
    }

    @Test("File modes after start: pins 0700, the lease database 0600, subnet.env and the status file 0644")
    func fileModes() throws {
        let lab = try LabFixture(nodes: 1)
        // The permission bits (a bpffs root always carries the sticky bit besides).
        func mode(_ path: String) -> String {
            let value = (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1
            return String(value & 0o777, radix: 8)
        }
        #expect(mode("\(lab.directory)/n1/bpf") == "700")
        #expect(mode("\(lab.directory)/leases.db") == "600")
        #expect(mode("\(lab.directory)/n1/subnet.env") == "644")
        #expect(mode("\(lab.directory)/n1/status.json") == "644")
    }

    @Test("/healthz, /readyz and /metrics answer in the node; /metrics parses as Prometheus reads it and carries every family with its labels")
    func health() throws {
        let lab = try LabFixture(nodes: 2)
        func get(_ path: String) throws -> String {
            try lab.weft(["lab", "exec", "n1", "--", "bash", "-c",
                          "exec 3<>/dev/tcp/127.0.0.1/9100; printf 'GET \(path) HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3"]).stdout
        }
        #expect(try get("/healthz").hasPrefix("HTTP/1.1 200 OK"))
        #expect(try get("/readyz").contains("ready"))
        // A drop of each kind the lab can make: a spoofed pod source.
        let spoofed = try lab.address(on: "n1", host: 202)
        #expect(try lab.weft(["lab", "exec", "n1-p1", "--", "ip", "addr", "add", "\(spoofed)/32", "dev", "eth0"]).succeeded)
        _ = try lab.weft(["lab", "exec", "n1-p1", "--", "ping", "-c", "1", "-W", "1", "-I", spoofed, try lab.podIP("n2")])
        #expect(try lab.weft(["lab", "exec", "n1-p1", "--", "ping", "-c", "1", "-W", "2", try lab.podIP("n2")]).succeeded)
        let response = try get("/metrics")
        let metrics = String(response[(response.range(of: "\r\n\r\n")?.upperBound ?? response.startIndex)...])
        let status = (try? String(contentsOfFile: "\(lab.directory)/n1/status.json", encoding: .utf8)) ?? ""
        #expect(status.contains(#""version":"0.5.0""#), "\(status)")

        // Parsed by the Prometheus client library's own parser: each family, its type and its samples' labels.
        let parser = """
            import json, sys
            from prometheus_client.parser import text_string_to_metric_families
            families = {}
            for family in text_string_to_metric_families(sys.stdin.read()):
                families[family.name] = {"type": family.type, "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in family.samples]}
            print(json.dumps(families))
            """
        let python = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.build/tools/python/bin/python").standardized.path
        let parsed = try Command.run([python, "-c", parser], input: metrics)
        try #require(parsed.succeeded, "\(parsed.stderr)")
        let families = try JSONSerialization.jsonObject(with: Data(parsed.stdout.utf8)) as? [String: [String: Any]] ?? [:]
        func samples(_ family: String) -> [[String: Any]] { families[family]?["samples"] as? [[String: Any]] ?? [] }
        /// The first sample of the family whose labels include these.
        func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
            let family = name.hasSuffix("_count") ? String(name.dropLast(6)) : name.hasSuffix("_total") ? String(name.dropLast(6)) : name
            return samples(family).first { sample in
                let have = sample["labels"] as? [String: String] ?? [:]
                return sample["name"] as? String == name && labels.allSatisfy { have[$0.key] == $0.value }
            }?["value"] as? Double
        }
        #expect(value("weft_ready") == 1)
        #expect(value("weft_build_info", ["version": "0.5.0"]) == 1)
        #expect(value("weft_peers") == 1)
        #expect(value("weft_dataplane_mode", ["mode": "bpf"]) == 1)
        #expect(families["weft_lease_events"]?["type"] as? String == "counter", "prometheus_client names counters without _total")
        #expect(value("weft_lease_events_total", ["type": "put"]) != nil && value("weft_lease_events_total", ["type": "delete"]) != nil)
        #expect(families["weft_dataplane_apply_duration_seconds"]?["type"] as? String == "histogram")
        #expect(value("weft_dataplane_apply_duration_seconds_count") ?? 0 >= 1)
        #expect(value("weft_dataplane_applies_total") ?? 0 >= 1)
        #expect(families["weft_dataplane_repairs"]?["type"] as? String == "counter")
        #expect(value("weft_store_request_duration_seconds_count", ["operation": "list"]) ?? 0 >= 1)
        #expect(value("weft_bpf_forwarded_packets_total", ["reason": "encapsulated", "hook": "from_pod", "direction": "egress"]) ?? 0 >= 1)
        #expect(value("weft_bpf_forwarded_packets_total", ["reason": "delivered_local", "direction": "ingress"]) ?? 0 >= 1)
        #expect(value("weft_bpf_dropped_packets_total", ["reason": "pod_spoofed_source", "hook": "from_pod", "direction": "egress"]) ?? 0 >= 1)
        #expect(value("weft_bpf_passed_packets_total", ["reason": "not_ipv4"]) ?? 0 >= 1)
        #expect(value("weft_bpf_map_capacity", ["map": "weft_peers"]) == 65536)
        #expect(value("weft_bpf_map_entries", ["map": "weft_peers"]) == 1)
        #expect(value("weft_bpf_map_pressure", ["map": "weft_endpoints"]) ?? 0 > 0)
        #expect(families["weft_bpf_drop_reports_suppressed"]?["type"] as? String == "counter")
        #expect(value("process_resident_memory_bytes") ?? 0 > 1_000_000)
        #expect(value("process_cpu_seconds_total") ?? 0 > 0)
        #expect(value("process_open_fds") ?? 0 > 3)
        #expect(value("process_start_time_seconds") ?? 0 > 1_700_000_000)
        #expect(try get("/nope").hasPrefix("HTTP/1.1 404"))
    }

    static func identities(_ json: String) -> Set<String> {
        let leases = (try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]]) ?? []
        return Set(leases.map { "\($0["subnet"] ?? "") \($0["publicIP"] ?? "") \($0["vtepMAC"] ?? "")" })
    }
}

/// The daemon's bad days: each gives a message that says what is wrong and what to do.
@Suite("weft daemon errors", .enabled(if: isRoot, "needs root for namespaces"))
struct DaemonErrorTests {
    func daemon(_ namespaces: Namespaces, _ ns: String, _ files: TemporaryDirectory, _ extra: [String], prefix: [String] = []) throws -> Command.Result {
        try Command.run(prefix + ["ip", "netns", "exec", ns, WeftProcess.binary, "daemon", "--store-file", files.file("leases.db"),
                                  "--subnet-file", files.file("subnet.env"), "--status-file", files.file("status.json"),
                                  "--dataplane", "kernel"] + extra)
    }

    @Test("No network config, unknown interface, out of subnets, no privileges")
    func badDays() throws {
        let namespaces = Namespaces()
        let ns = try namespaces.add("node")
        try namespaces.topology.addLoneLink(.init(ns, "eth0", "198.18.0.1/24"))
        let files = try TemporaryDirectory()

        let noConfig = try daemon(namespaces, ns, files, ["--iface", "eth0"])
        #expect(noConfig.status != 0)
        #expect(noConfig.stderr.contains("no network config: looked for /coreos.com/network/config in"), "\(noConfig.stderr)")
        #expect(noConfig.stderr.contains("weft config put"))

        try files.write("net-conf.json", #"{"Network":"10.244.0.0/22","SubnetLen":24,"Backend":{"Type":"host-gw"}}"#)
        try Command.must([WeftProcess.binary, "config", "put", files.file("net-conf.json"), "--store-file", files.file("leases.db")])
        let noInterface = try daemon(namespaces, ns, files, ["--iface", "ens9"])
        #expect(noInterface.status != 0)
        #expect(noInterface.stderr.contains("no interface matches --iface ens9"), "\(noInterface.stderr)")
        #expect(noInterface.stderr.contains("eth0 (198.18.0.1)"), "it lists the interfaces there are")
        // flanneld's environment variables work the same, and the command line wins over them.
        // As flanneld, a variable is one value: FLANNELD_IFACE=ens8,ens7 names one interface.
        let fromEnvironment = try daemon(namespaces, ns, files, [], prefix: ["env", "FLANNELD_IFACE=ens8,ens7", "FLANNELD_PUBLIC_IPV6=fd00::1"])
        #expect(fromEnvironment.stderr.contains("no interface matches --iface ens8,ens7"), "\(fromEnvironment.stderr)")
        // A variable for a flag Weft lacks is named; one it has is not.
        #expect(fromEnvironment.stderr.contains("variable=FLANNELD_PUBLIC_IPV6"), "\(fromEnvironment.stderr)")
        #expect(!fromEnvironment.stderr.contains("variable=FLANNELD_IFACE"), "\(fromEnvironment.stderr)")
        let flagWins = try daemon(namespaces, ns, files, ["--iface", "ens6"], prefix: ["env", "FLANNELD_IFACE=ens8"])
        #expect(flagWins.stderr.contains("no interface matches --iface ens6"), "\(flagWins.stderr)")

        // 10.244.0.0/22 in /24s, the first skipped: three subnets, all taken by other nodes.
        for host in 2...4 {
            try Command.must([WeftProcess.binary, "leases", "acquire", "--public-ip", "198.18.0.\(host)", "--store-file", files.file("leases.db")])
        }
        let full = try daemon(namespaces, ns, files, ["--iface", "eth0"])
        #expect(full.status != 0)
        #expect(full.stderr.contains("out of subnets"), "\(full.stderr)")

        let unprivileged = try daemon(namespaces, ns, files, ["--iface", "eth0"],
                                      prefix: ["setpriv", "--inh-caps=-all", "--bounding-set=-net_admin", "--"])
        #expect(unprivileged.status != 0)
        #expect(unprivileged.stderr.contains("missing capability CAP_NET_ADMIN"), "\(unprivileged.stderr)")
    }
}
