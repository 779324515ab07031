import Foundation
import Glibc
import Testing
import WeftBPF
import WeftCore
import WeftTestSupport

/// The control plane on a bad day: a hostile or broken store, a second daemon, lost pins
/// and routes. Each test reproduces what an operator saw and checks what the node does and
/// what it tells them.
@Suite("weft daemon on a bad day", .enabled(if: isRoot, "needs root for namespaces and BPF"))
struct BadDayTests {
    func status(_ lab: LabFixture, _ node: String) throws -> [String: Any] {
        let output = try lab.inNode(node, ["status", "--json"]).stdout
        return try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any] ?? [:]
    }

    func leases(_ lab: LabFixture, from node: String) throws -> [String: String] {
        let output = try lab.inNode(node, ["leases", "--json"]).stdout
        let leases = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]] ?? []
        return Dictionary(uniqueKeysWithValues: leases.map { ($0["subnet"] as? String ?? "?", $0["publicIP"] as? String ?? "?") })
    }

    @Test("Our own lease overwritten (another PublicIP and VTEP MAC): the node writes its own back and says what was there",
          arguments: ["embedded", "etcd"])
    func ownLeaseOverwritten(store: String) throws {
        let lab = try LabFixture(nodes: 2, store: store)
        let subnet = try lab.node("n1")["subnet"] as? String ?? "?"
        let forged = #"{"PublicIP":"198.18.0.66","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:58:00:00:00:66"}}"#
        let put = try lab.inNode("n2", ["leases", "put", subnet, "--value", forged])
        #expect(put.succeeded, "\(put.stderr)")
        #expect(try waitUntil(seconds: 10) { try leases(lab, from: "n2")[subnet] == "198.18.0.1" }, "n1 put its lease back")
        let log = lab.log("n1")
        #expect(log.contains("another writer changed our lease; writing ours back"), "\(log.suffix(2000))")
        #expect(log.contains("198.18.0.66"), "the warning names what was there")
        #expect(try waitUntil(seconds: 10) { try lab.peers(of: "n2").contains(subnet) })
        #expect(try lab.weft(["lab", "check"]).succeeded)
        #expect(try waitUntil(seconds: 5) { try status(lab, "n1")["leaseDefended"] as? Int ?? 0 >= 1 })
    }

    @Test("Hostile peer leases are rejected, each logged once with its reason, listed in weft status, and nothing is programmed")
    func hostilePeerLeases() throws {
        let lab = try LabFixture(nodes: 2)
        let n2 = try lab.node("n2")["subnet"] as? String ?? "?"
        let mac = #""BackendData":{"VNI":1,"VtepMAC":"0a:58:00:00:00:99"}"#
        let hostile = [
            ("0.0.0.0/0", #"{"PublicIP":"198.18.0.99","BackendType":"vxlan",\#(mac)}"#, "outside_network"),
            (n2.replacingOccurrences(of: "/24", with: "/25"), #"{"PublicIP":"198.18.0.98","BackendType":"vxlan",\#(mac)}"#, "wrong_prefix_length"),
            ("10.244.250.0/24", #"{"PublicIP":"198.18.0.97","BackendType":"vxlan","BackendData":{"VNI":7,"VtepMAC":"0a:58:00:00:00:97"}}"#, "foreign_vni"),
            ("10.244.251.0/24", #"{"PublicIP":"198.18.0.96","BackendType":"host-gw"}"#, "foreign_backend"),
        ]
        for (subnet, value, _) in hostile {
            let put = try lab.inNode("n2", ["leases", "put", subnet, "--value", value])
            #expect(put.succeeded, "\(subnet): \(put.stderr)")
        }
        let listed = try waitUntil(seconds: 10) { (try status(lab, "n1")["rejectedLeases"] as? [[String: Any]])?.count == hostile.count }
        #expect(listed)
        let rejected = try status(lab, "n1")["rejectedLeases"] as? [[String: Any]] ?? []
        for (subnet, _, reason) in hostile {
            #expect(rejected.contains { $0["subnet"] as? String == subnet && $0["reason"] as? String == reason }, "\(subnet): \(rejected)")
        }
        #expect(try lab.peers(of: "n1") == [n2], "only the real peer is programmed")
        // More passes: a sound lease joins, and once it is programmed each rejection is
        // still in the log once.
        let sound = #"{"PublicIP":"198.18.0.77","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:58:00:00:00:77"}}"#
        #expect(try lab.inNode("n2", ["leases", "put", "10.244.252.0/24", "--value", sound]).succeeded)
        #expect(try waitUntil(seconds: 10) { try lab.peers(of: "n1").contains("10.244.252.0/24") })
        let log = lab.log("n1")
        for (subnet, _, _) in hostile {
            let lines = log.split(separator: "\n").filter { $0.contains("rejected a lease") && $0.contains("subnet=\(subnet) ") }
            #expect(lines.count == 1, "\(subnet): \(lines)")
        }
        let text = try lab.inNode("n1", ["status"]).stdout
        #expect(text.contains("the subnet is outside the cluster network 10.244.0.0/16"), "\(text)")
        #expect(text.contains("a pod cannot reach another: weft monitor --type drop"), "weft status points at what to run: \(text)")
        _ = try lab.inNode("n2", ["leases", "revoke", "10.244.252.0/24"])
        #expect(try lab.weft(["lab", "check"]).succeeded)
    }

    @Test("A second daemon on a node exits at once, naming the PID that runs it; the first is untouched")
    func secondDaemon() throws {
        let lab = try LabFixture(nodes: 2)
        let n1 = try lab.node("n1")
        let pid = n1["pid"] as? Int ?? 0
        let directory = "\(lab.directory)/n1"
        let start = ContinuousClock.now
        let second = try Command.run(["ip", "netns", "exec", n1["namespace"] as? String ?? "?", WeftProcess.binary, "daemon",
                                      "--store-file", "\(lab.directory)/leases.db", "--iface", "eth0", "--subnet-file", "\(directory)/subnet.env",
                                      "--pin-dir", "\(directory)/bpf", "--status-file", "\(directory)/status-2.json", "--dataplane", "bpf"])
        #expect(ContinuousClock.now - start < .seconds(5))
        #expect(second.status != 0)
        #expect(second.stderr.contains("another weft daemon (pid \(pid)) already runs this node"), "\(second.stderr)")
        #expect(second.stderr.contains("kill \(pid)"))
        #expect(kill(pid_t(pid), 0) == 0, "the first daemon still runs")
        #expect(try lab.weft(["lab", "check"]).succeeded)
    }

    @Test("Pins inside a mounted bpffs (--pin-dir /sys/fs/bpf/weft, as a DaemonSet mounts the host's): the daemon runs; a second one in the same network namespace is refused whatever its --pin-dir")
    func pinsInsideAMountedBPFFilesystem() throws {
        let lab = try LabFixture(nodes: 2)
        let n1 = try lab.node("n1")
        let host = "\(lab.directory)/n1/host-bpffs"
        try FileManager.default.createDirectory(atPath: host, withIntermediateDirectories: true)
        try Command.must(["mount", "-t", "bpf", "bpf", host])
        defer { umount2(host, Int32(MNT_DETACH)) }
        let (daemon, log, ready) = try lab.replaceDaemon("n1", pinDirectory: "\(host)/weft")
        defer { daemon.kill(); _ = daemon.wait() }
        #expect(ready, "\((try? String(contentsOfFile: log, encoding: .utf8))?.suffix(2000) ?? "")")
        #expect(FileManager.default.fileExists(atPath: "\(host)/weft/weft_peers"), "the maps are pinned inside the host's bpffs")
        #expect(!FileManager.default.fileExists(atPath: "\(host)/weft.lock"), "no regular file in a bpffs")
        #expect(try waitUntil(seconds: 10) { try lab.weft(["lab", "check"]).succeeded })
        let directory = "\(lab.directory)/n1"
        for pinDirectory in ["\(host)/weft", "\(host)/weft-2", "\(directory)/bpf-2"] {
            let second = try Command.run(["ip", "netns", "exec", n1["namespace"] as? String ?? "?", WeftProcess.binary, "daemon",
                                          "--store-file", "\(lab.directory)/leases.db", "--iface", "eth0", "--subnet-file", "\(directory)/subnet-2.env",
                                          "--pin-dir", pinDirectory, "--status-file", "\(directory)/status-2.json", "--dataplane", "bpf"])
            #expect(second.status != 0, "\(pinDirectory)")
            #expect(second.stderr.contains("another weft daemon (pid \(daemon.pid)) already runs this node"), "\(pinDirectory): \(second.stderr)")
        }
        #expect(daemon.isRunning, "the first daemon still runs")
    }

    @Test("Two daemons in two network namespaces on one pin directory: the second is refused, naming the first")
    func onePinDirectoryTwoNamespaces() throws {
        let lab = try LabFixture(nodes: 2)
        let n1 = try lab.node("n1")
        let n2 = try lab.node("n2")
        let n1PID = pid_t(n1["pid"] as? Int ?? 0)
        // n2's own daemon stops, so n2's namespace is free and only the pin directory is shared.
        let n2PID = pid_t(n2["pid"] as? Int ?? 0)
        kill(n2PID, SIGTERM)
        #expect(try waitUntil(seconds: 5) { kill(n2PID, 0) != 0 })
        let directory = "\(lab.directory)/n2"
        let second = try Command.run(["ip", "netns", "exec", n2["namespace"] as? String ?? "?", WeftProcess.binary, "daemon",
                                      "--store-file", "\(lab.directory)/leases.db", "--iface", "eth0", "--subnet-file", "\(directory)/subnet.env",
                                      "--pin-dir", "\(lab.directory)/n1/bpf", "--status-file", "\(directory)/status-2.json", "--dataplane", "bpf"])
        #expect(second.status != 0)
        #expect(second.stderr.contains("another weft daemon (pid \(n1PID)) uses the pin directory \(lab.directory)/n1/bpf"), "\(second.stderr)")
        #expect(kill(n1PID, 0) == 0)
    }

    @Test("etcd replaced by an empty one: every node re-creates its lease with the same subnet and sees a node that joins afterwards")
    func etcdWiped() throws {
        let lab = try LabFixture(nodes: 2, store: "etcd")
        let before = try leases(lab, from: "n1")
        let wipe = try lab.weft(["lab", "wipe-store"])
        #expect(wipe.succeeded, "\(wipe.stderr)")
        #expect(try waitUntil(seconds: 20) { try leases(lab, from: "n1") == before }, "both leases are back with the same subnets")
        // A node that joins the new store: both daemons watch from its new revisions.
        let newcomer = #"{"PublicIP":"198.18.0.50","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:58:00:00:00:50"}}"#
        #expect(try lab.inNode("n1", ["leases", "put", "10.244.200.0/24", "--value", newcomer]).succeeded)
        #expect(try waitUntil(seconds: 10) { try lab.peers(of: "n1").contains("10.244.200.0/24") })
        #expect(try waitUntil(seconds: 10) { try lab.peers(of: "n2").contains("10.244.200.0/24") })
        #expect(lab.log("n1").contains("the lease store went back in time"))
        #expect(try waitUntil(seconds: 5) { try status(lab, "n1")["storeResyncs"] as? Int ?? 0 >= 1 })
        #expect(try lab.weft(["lab", "check"]).succeeded)
    }

    @Test("Pins deleted: noticed within seconds, not at the next 10 s pass, and every pin comes back under its full name")
    func pinsDeletedAreNoticedAtOnce() throws {
        let lab = try LabFixture(nodes: 2)
        let pins = "\(lab.directory)/n1/bpf"
        // Past the start's own passes, so the timer is not what finds it.
        Thread.sleep(forTimeInterval: 1)
        for pin in try FileManager.default.contentsOfDirectory(atPath: pins) { unlink("\(pins)/\(pin)") }
        #expect(try waitUntil(seconds: 4) { lab.log("n1").contains("were gone: pinned 8 maps again from the running programs") },
                "\(lab.log("n1").suffix(1500))")
        let names = Set(try FileManager.default.contentsOfDirectory(atPath: pins))
        #expect(names.isSuperset(of: PinnedMaps.allNames), "\(names.sorted())")
        #expect(!names.contains { $0.count == 15 && $0.hasPrefix("weft_") && !PinnedMaps.allNames.contains($0) }, "no name cut to the kernel's 15 characters: \(names.sorted())")
        #expect(try waitUntil(seconds: 5) { try status(lab, "n1")["ready"] as? Bool == true })
    }

    @Test("Pins deleted: the node pins its maps again from the running programs, keeps its pods, and says so")
    func pinsDeleted() throws {
        let lab = try LabFixture(nodes: 2)
        let pins = "\(lab.directory)/n1/bpf"
        for pin in try FileManager.default.contentsOfDirectory(atPath: pins) { unlink("\(pins)/\(pin)") }
        // Deleting pins makes no netlink event: the next full check (every 10 s) finds it. from_underlay
        // holds all 8: peers, tunnels, endpoints, counters, events, the monitor switch, the event budget
        // and the TCP flows waiting on the vxlan device.
        #expect(try waitUntil(seconds: 25) { lab.log("n1").contains("were gone: pinned 8 maps again from the running programs") },
                "\(lab.log("n1").suffix(1500))")
        let pod = (try lab.node("n1")["pods"] as? [[String: Any]])?.first?["ip"] as? String ?? "?"
        #expect(try lab.inNode("n1", ["maps", "endpoints", "--json"]).stdout.contains(pod), "the pod's endpoint was kept")
        #expect(try waitUntil(seconds: 5) { try status(lab, "n1")["ready"] as? Bool == true })
        #expect(try lab.weft(["lab", "check"]).succeeded)
    }

    @Test("Started again after weft dataplane down --for-flanneld, a node registers its pods from weft-cni's records: their endpoints, from_pod and the source check are back")
    func podsFoundAgainAfterTheHandBack() throws {
        let lab = try LabFixture(nodes: 2)
        let n1 = try lab.node("n1")
        let pid = pid_t(n1["pid"] as? Int ?? 0)
        let pod = try lab.podIP("n1")
        kill(pid, SIGTERM)
        #expect(try waitUntil(seconds: 5) { kill(pid, 0) != 0 })
        let down = try lab.weft(["lab", "exec", "n1", "--", "weft", "dataplane", "down", "--pin-dir", "\(lab.directory)/n1/bpf", "--for-flanneld", "--iface", "eth0"])
        #expect(down.succeeded, "\(down.stderr)")
        let restart = try lab.weft(["lab", "restart", "n1"])
        #expect(restart.succeeded, "\(restart.stderr)")
        #expect(try lab.inNode("n1", ["maps", "endpoints", "--json"]).stdout.contains(pod), "the pod's endpoint is back")
        #expect(lab.log("n1").contains("registered pod \(pod) on "), "\(lab.log("n1").suffix(1500))")
        // The source check holds again: a spoofed source reaches nobody.
        let spoofed = try lab.address(on: "n1", host: 200)
        #expect(try lab.weft(["lab", "exec", "n1-p1", "--", "ip", "addr", "add", "\(spoofed)/32", "dev", "eth0"]).succeeded)
        #expect(!(try lab.weft(["lab", "exec", "n1-p1", "--", "ping", "-c", "2", "-W", "1", "-I", spoofed, try lab.podIP("n2")]).succeeded))
        #expect(try lab.weft(["lab", "check"]).succeeded)
    }

    @Test("An endpoint entry naming lo (ifindex 1): the node forgets it, says why, and puts no program on lo")
    func anEndpointOnLoopbackIsForgotten() throws {
        let lab = try LabFixture(nodes: 2)
        let namespace = try lab.node("n1")["namespace"] as? String ?? "?"
        let stray = try lab.address(on: "n1", host: 99)
        try PinnedMaps(directory: "\(lab.directory)/n1/bpf").endpoints.set(IPv4Address(stray)!, LocalEndpoint(
            hostInterfaceIndex: 1, podMAC: MACAddress("02:00:00:00:00:99")!, hostMAC: MACAddress("02:00:00:00:00:98")!))
        #expect(try waitUntil(seconds: 15) { lab.log("n1").contains("forgot pod \(stray), whose entry names lo (ifindex 1), which is no pod's veth") },
                "\(lab.log("n1").suffix(1500))")
        #expect(try PinnedMaps(directory: "\(lab.directory)/n1/bpf").endpoints.entries()[IPv4Address(stray)!] == nil)
        let filters = try Command.must(["tc", "-n", namespace, "filter", "show", "dev", "lo", "ingress"])
        #expect(!filters.contains("from_pod"), "\(filters)")
        #expect(try lab.weft(["lab", "check"]).succeeded)
    }

    @Test("Every route through the overlay device flushed: the node puts them back and traffic recovers", arguments: ["bpf", "kernel"])
    func routesFlushed(dataplane: String) throws {
        let lab = try LabFixture(nodes: 2, dataplane: dataplane)
        let device = dataplane == "bpf" ? "weft.1" : "flannel.1"
        let flush = try lab.weft(["lab", "exec", "n1", "--", "ip", "route", "flush", "dev", device])
        #expect(flush.succeeded, "\(flush.stderr)")
        #expect(try waitUntil(seconds: 10) {
            try lab.weft(["lab", "exec", "n1", "--", "ip", "route", "show", "dev", device]).stdout.contains("10.244.")
        }, "the routes through \(device) are back")
        #expect(try waitUntil(seconds: 5) { lab.log("n1").contains("repaired the dataplane") })
        #expect(try lab.weft(["lab", "check"]).succeeded)
    }

    @Test("Restarted on another interface: the node keeps its subnet under its new address, is never its own peer, and leaves no filter on the old interface")
    func restartOnAnotherInterface() throws {
        let lab = try LabFixture(nodes: 2)
        let n1 = try lab.node("n1")
        let namespace = n1["namespace"] as? String ?? "?"
        let subnet = n1["subnet"] as? String ?? "?"
        let underlay = "weft-\(lab.name)-underlay"
        // A second interface on the same underlay.
        try Topology(prefix: "weft-\(lab.name)-").plug(.init(namespace, "eth1", "198.18.0.101/24"), into: underlay, as: "n1b")
        let (daemon, log, ready) = try lab.replaceDaemon("n1", iface: "eth1") {
            // The old address goes: the node moved. Its lease still names its VTEP MAC.
            try Command.must(["ip", "-n", namespace, "addr", "flush", "dev", "eth0"])
        }
        defer { daemon.kill() }
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(ready, "\(output.suffix(2000))")
        #expect(try leases(lab, from: "n2")[subnet] == "198.18.0.101", "the same subnet, under the new address")
        #expect(try leases(lab, from: "n2").count == 2, "no second lease")
        #expect(output.contains("kept the subnet of our previous run, which had another public IP"))
        #expect(!(try lab.peers(of: "n1").contains(subnet)), "never its own peer")
        let filters = try Command.must(["tc", "-n", namespace, "filter", "show", "dev", "eth0", "ingress"])
        #expect(!filters.contains("from_underlay"), "\(filters)")
        #expect(try waitUntil(seconds: 10) { try lab.weft(["lab", "check"]).succeeded })
    }
}
