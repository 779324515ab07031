import Foundation
import Glibc
import Testing
import WeftTestSupport

/// The kernel fallback: Flannel's programming, done by Weft, between real namespaces.
@Suite("Kernel dataplane end to end", .enabled(if: isRoot, "needs root for namespaces"))
struct KernelDataplaneTests {
    @Test("Two kernel nodes, VXLAN: ping and TCP both ways")
    func vxlan() throws {
        let lab = try TwoNodes(backend: .vxlan)
        try lab.startKernel(1)
        try lab.startKernel(2)
        try expectPodsReachEachOther(lab)
    }

    @Test("weft dataplane run --ip-masq keeps flanneld's rules as the daemon does: FLANNEL-POSTRTG and FLANNEL-FWD installed, and put back after a flush", arguments: ["bpf", "kernel"])
    func dataplaneRunKeepsTheRules(dataplane: String) throws {
        let lab = try TwoNodes(backend: .vxlan)
        let run = try lab.runDataplane(1, dataplane: dataplane, arguments: ["--ip-masq", "--iptables-resync", "1"])
        defer { run.signal(SIGTERM); _ = run.wait() }
        func saved() -> String { (try? lab.namespaces.must(lab.node(1), ["iptables-save"])) ?? "" }
        #expect(try waitUntil(seconds: 5) { saved().contains("-A POSTROUTING -m comment --comment \"flanneld masq\" -j FLANNEL-POSTRTG") },
                "\(saved())")
        #expect(saved().contains("-A FORWARD -m comment --comment \"flanneld forward\" -j FLANNEL-FWD"))
        #expect(saved().contains("WEFT-UNDERLAY") == (dataplane == "kernel"), "the underlay guard only where the kernel checks the underlay")
        try lab.namespaces.must(lab.node(1), ["iptables", "-t", "nat", "-F", "FLANNEL-POSTRTG"])
        #expect(try waitUntil(seconds: 5) { saved().contains("-A FLANNEL-POSTRTG") && saved().contains("MASQUERADE") }, "\(saved())")
    }

    @Test("weft dataplane down with --net-config-path and --iface removes the kernel dataplane: flannel.1 and its peer routes, from the config alone", arguments: [TwoNodes.BackendKind.vxlan, .hostGateway])
    func downRemovesTheKernelDataplane(backend: TwoNodes.BackendKind) throws {
        let lab = try TwoNodes(backend: backend)
        try lab.startKernel(1)
        #expect(try lab.namespaces.must(lab.node(1), ["ip", "route", "show", "10.244.2.0/24"]).contains("10.244.2.0/24"))
        let down = try lab.weft(1, ["dataplane", "down", "--pin-dir", lab.pinDirectory(1), "--net-config-path", lab.files.file("net-conf.json"), "--iface", "u1"])
        #expect(down.succeeded, "\(down.stderr)")
        #expect(!(try lab.namespaces.must(lab.node(1), ["ip", "route", "show", "10.244.2.0/24"]).contains("10.244.2.0/24")))
        #expect(!(try lab.namespaces.must(lab.node(1), ["ip", "link", "show"]).contains("flannel.1")))
    }

    @Test("Two kernel nodes, VXLAN with DirectRouting: routed over the underlay, both ways")
    func directRouting() throws {
        let lab = try TwoNodes(backend: .vxlan, directRouting: true)
        try lab.startKernel(1)
        try lab.startKernel(2)
        try expectPodsReachEachOther(lab)
        #expect(try lab.namespaces.must(lab.node(1), ["ip", "route", "show", "10.244.2.0/24"]).contains("via 198.18.0.2 dev u1"))
    }

    @Test("Two kernel nodes, host-gw: ping and TCP both ways")
    func hostGateway() throws {
        let lab = try TwoNodes(backend: .hostGateway)
        try lab.startKernel(1)
        try lab.startKernel(2)
        try expectPodsReachEachOther(lab)
    }

    @Test("A mixed pair, one BPF node and one kernel node: both ways", arguments: [TwoNodes.BackendKind.vxlan, .hostGateway])
    func mixed(backend: TwoNodes.BackendKind) throws {
        let lab = try TwoNodes(backend: backend)
        try lab.startBPF(1)
        try lab.startKernel(2)
        try expectPodsReachEachOther(lab)
        let counters = try lab.counters(1)
        #expect(counters["delivered_local"]! > 100, "\(counters)")
    }

    @Test("The kernel node's programming is Flannel's, entry for entry, and a second apply changes nothing")
    func matchesFlannel() throws {
        let lab = try TwoNodes(backend: .vxlan)
        try lab.startKernel(1)
        let ns = lab.node(1)
        let link = try lab.namespaces.must(ns, ["ip", "-d", "link", "show", "flannel.1"])
        #expect(link.contains("mtu 1450"))
        #expect(link.contains("link/ether \(lab.vtepMAC(1))"))
        #expect(link.contains("vxlan id 1 local 198.18.0.1 dev u1 srcport 0 0 dstport 8472 nolearning"))
        #expect(try lab.namespaces.must(ns, ["ip", "-4", "-o", "addr", "show", "flannel.1"]).contains("inet 10.244.1.0/32"))
        #expect(try lab.namespaces.must(ns, ["ip", "neigh", "show", "dev", "flannel.1"])
            == "10.244.2.0 lladdr \(lab.vtepMAC(2)) PERMANENT \n")
        #expect(try Command.must(["bridge", "-n", ns, "fdb", "show", "dev", "flannel.1"]).contains("\(lab.vtepMAC(2)) dst 198.18.0.2 self permanent"))
        // Flannel's route, marked as Weft's own (`proto 87`) so no other tool's route is taken for it.
        #expect(try lab.namespaces.must(ns, ["ip", "route", "show", "10.244.2.0/24"]) == "10.244.2.0/24 via 10.244.2.0 dev flannel.1 proto 87 onlink \n")

        // The same entries a hand-built Flannel node holds for its peer, with the names swapped.
        try lab.startFlannelKernelNode(2)
        let flannel = try lab.namespaces.must(lab.node(2), ["ip", "route", "show", "10.244.1.0/24"])
        #expect(flannel.replacingOccurrences(of: "10.244.1.0", with: "10.244.2.0")
            == (try lab.namespaces.must(ns, ["ip", "route", "show", "10.244.2.0/24"])).replacingOccurrences(of: "proto 87 ", with: ""))
        try expectPodsReachEachOther(lab)

        let again = try lab.weft(1, ["dataplane", "up"] + lab.nodeArguments(1, dataplane: "kernel"))
        #expect(again.stdout.contains("1 peers, 0 written, 0 removed"), "\(again.stdout)\(again.stderr)")
    }

    @Test("auto falls back to the kernel when BPF cannot run, and says why; bpf refuses")
    func autoFallsBack() throws {
        let lab = try TwoNodes(backend: .vxlan)
        let arguments = try lab.nodeArguments(1, dataplane: "auto") + ["--bpf-dir", lab.files.file("no-programs")]
        let auto = try lab.weft(1, ["dataplane", "up"] + arguments)
        #expect(auto.succeeded, "\(auto.stderr)")
        #expect(auto.stdout.hasPrefix("kernel dataplane up"))
        #expect(auto.stderr.contains("BPF cannot run here (compiled BPF programs missing in \(lab.files.file("no-programs"))"), "\(auto.stderr)")
        #expect(try lab.namespaces.exec(lab.node(1), ["ip", "link", "show", "flannel.1"]).succeeded)

        let bpf = try lab.weft(1, ["dataplane", "up"] + lab.nodeArguments(1, dataplane: "bpf") + ["--bpf-dir", lab.files.file("no-programs")])
        #expect(!bpf.succeeded)
        #expect(bpf.stderr.contains("--dataplane bpf was requested but BPF cannot run here"), "\(bpf.stderr)")
    }
}

/// What the host network loses, Weft puts back within 5 seconds, with no restart.
@Suite("Self-healing", .enabled(if: isRoot, "needs root for namespaces"))
struct SelfHealingTests {
    enum Damage: String, CaseIterable, CustomTestStringConvertible {
        case routeDeleted, neighbourDeleted, fdbEntryDeleted, deviceDeleted, underlayFlapped
        var testDescription: String { rawValue }
    }

    @Test("Kernel dataplane repairs", arguments: Damage.allCases)
    func kernel(damage: Damage) throws {
        let (lab, daemon) = try supervisedPair(dataplane: "kernel")
        let ns = lab.node(1)
        switch damage {
        case .routeDeleted: try lab.namespaces.must(ns, ["ip", "route", "del", "10.244.2.0/24"])
        case .neighbourDeleted: try lab.namespaces.must(ns, ["ip", "neigh", "del", "10.244.2.0", "dev", "flannel.1"])
        case .fdbEntryDeleted: try Command.must(["bridge", "-n", ns, "fdb", "del", lab.vtepMAC(2), "dev", "flannel.1", "dst", "198.18.0.2"])
        case .deviceDeleted: try lab.namespaces.must(ns, ["ip", "link", "del", "flannel.1"])
        case .underlayFlapped: try flapUnderlay(lab)
        }
        let seconds = try lab.secondsUntilReachable(from: 1, to: 2)
        #expect(seconds != nil, "\(damage): pod 2 unreachable 5 s later")
        #expect(daemon.isRunning, "repaired without a restart")
        // Peers cache the VTEP MAC: a re-created device must keep it.
        #expect(try lab.namespaces.must(ns, ["ip", "link", "show", "flannel.1"]).contains("link/ether \(lab.vtepMAC(1))"))
    }

    enum BPFDamage: String, CaseIterable, CustomTestStringConvertible {
        case podFilterDeleted, overlayFilterDeleted, deviceDeleted, underlayFlapped
        var testDescription: String { rawValue }
    }

    @Test("BPF dataplane repairs", arguments: BPFDamage.allCases)
    func bpf(damage: BPFDamage) throws {
        let (lab, daemon) = try supervisedPair(dataplane: "bpf")
        let ns = lab.node(1)
        switch damage {
        case .podFilterDeleted: try lab.namespaces.must(ns, ["tc", "filter", "del", "dev", "vp1", "ingress"])
        case .overlayFilterDeleted: try lab.namespaces.must(ns, ["tc", "filter", "del", "dev", "weft.1", "ingress"])
        case .deviceDeleted: try lab.namespaces.must(ns, ["ip", "link", "del", "weft.1"])
        case .underlayFlapped: try flapUnderlay(lab)
        }
        let seconds = try lab.secondsUntilReachable(from: 1, to: 2)
        #expect(seconds != nil, "\(damage): pod 2 unreachable 5 s later")
        // The kernel path alone can carry a ping (to_overlay); repaired means the programs are
        // back on every hook within the same 5 seconds.
        let attached = try waitUntil(seconds: 5) {
            try ["vp1", "weft.1", "u1"].allSatisfy { device in
                try lab.namespaces.exec(ns, ["tc", "filter", "show", "dev", device, "ingress"]).stdout.contains("handle 0x5746")
            }
        }
        #expect(attached, "\(damage): the programs are not all attached again")
        #expect(daemon.isRunning, "repaired without a restart")
        let before = try lab.counters(1)["encapsulated"]!
        #expect(try lab.ping(from: 1, to: 2, count: 2))
        #expect(try lab.counters(1)["encapsulated"]! >= before + 2, "pod traffic goes through from_pod again")
    }
}

@Suite("Kernel state Weft can prove it owns", .enabled(if: getuid() == 0, "needs root for namespaces"))
struct OwnedKernelStateTests {
    @Test("A route another tool adds inside the cluster network, on Weft's interfaces, is left alone", arguments: ["bpf", "kernel"])
    func foreignRoutesStay(dataplane: String) throws {
        let (lab, daemon) = try supervisedPair(dataplane: dataplane)
        defer { daemon.kill() }
        let ns = lab.node(1)
        try lab.namespaces.must(ns, ["ip", "route", "add", "10.244.99.0/24", "via", "198.18.0.2", "dev", "u1", "proto", "static"])
        // The netlink event triggers a full pass; a further one follows on the timer (1 s).
        sleep(3)
        #expect(try lab.namespaces.must(ns, ["ip", "route", "show", "10.244.99.0/24"]).contains("via 198.18.0.2 dev u1 proto static"))
        #expect(daemon.isRunning)
        // Weft's own stale route is still removed: the peer goes, its route with it.
        #expect(try lab.ping(from: 1, to: 2))
    }
}

/// Node 1 under `weft dataplane run`, node 2 set up once; pod 1 reaches pod 2.
func supervisedPair(dataplane: String) throws -> (TwoNodes, ChildProcess) {
    let lab = try TwoNodes(backend: .vxlan)
    let daemon = try lab.runDataplane(1, dataplane: dataplane)
    if dataplane == "bpf" { try lab.startBPF(2) } else { try lab.startKernel(2) }
    #expect(try lab.ping(from: 1, to: 2))
    return (lab, daemon)
}

/// Takes node 1's underlay down and up again: the kernel drops the routes through it.
func flapUnderlay(_ lab: TwoNodes) throws {
    try lab.namespaces.must(lab.node(1), ["ip", "link", "set", "u1", "down"])
    usleep(300_000)
    try lab.namespaces.must(lab.node(1), ["ip", "link", "set", "u1", "up"])
}
