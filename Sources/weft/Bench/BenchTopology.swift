import Foundation
import Glibc
import WeftBPF
import WeftCore
import WeftShell
import WeftTopology

/// Two nodes and a pod on each, in namespaces of the benchmark's own, programmed for one
/// mode: the underlay alone, or a Weft dataplane (kernel or BPF, VXLAN or host-gw) set up
/// with `weft dataplane up`. `remove()` deletes everything it made.
final class BenchTopology {
    let mode: String
    let prefix: String
    let directory: String
    private let topology: Topology
    private var servers: [ChildProcess] = []

    /// `kernel-vxlan-flannel` is Flannel as deployed: the kernel VXLAN path with the masquerade
    /// and forward rules flanneld installs with `--ip-masq`.
    static let modes = ["underlay", "kernel-vxlan", "kernel-vxlan-flannel", "bpf-vxlan", "kernel-host-gw", "bpf-host-gw"]
    /// The BPF modes with the source checks off (`--no-pod-source-check`,
    /// `--no-underlay-source-check`): what the checks cost, measured in the same run.
    static let uncheckedModes = ["bpf-vxlan-unchecked", "bpf-host-gw-unchecked"]

    /// The CPUs the sender and the receiver are pinned to, the same for every mode, as two
    /// machines would keep them apart; nil on a one-CPU machine.
    static let placement: (sender: Int, receiver: Int)? = ProcessInfo.processInfo.activeProcessorCount > 1 ? (0, 1) : nil

    static var placementDescription: String {
        placement.map { "sender and node 1's receive processing on CPU \($0.sender), receiver and node 2's on CPU \($0.receiver) (taskset, threaded NAPI); GRO on the underlay interfaces" }
            ?? "one CPU: sender and receiver share it; GRO on the underlay interfaces"
    }

    init(mode: String, root: String) {
        self.mode = mode
        prefix = "weft-bench-\(mode)-"
        directory = "\(root)/\(mode)"
        topology = Topology(prefix: prefix)
    }

    func node(_ n: Int) -> String { "\(prefix)n\(n)" }
    func pod(_ n: Int) -> String { "\(prefix)p\(n)" }
    var usesPods: Bool { mode != "underlay" }
    /// Where traffic starts and the address it goes to.
    var source: String { usesPods ? pod(1) : node(1) }
    var target: String { usesPods ? pod(2) : node(2) }
    var targetIP: String { usesPods ? "10.244.2.5" : "198.18.0.2" }

    func build(weft: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for n in [1, 2] { try topology.addNode("n\(n)") }
        try topology.join(.init(node(1), "u1", "198.18.0.1/24"), .init(node(2), "u2", "198.18.0.2/24"))
        // As a real NIC has it (veth aggregates only once GRO is on).
        for n in [1, 2] { try Command.must(["ip", "netns", "exec", node(n), "ethtool", "-K", "u\(n)", "gro", "on"]) }
        // A veth pair delivers on the sending CPU. Threaded NAPI, its thread pinned to the node's
        // CPU, moves each node's receive processing there, as a NIC's interrupt on that node's core
        // would (RPS would too, at an inter-processor interrupt per batch, which a VM pays dearly).
        if let placement = Self.placement {
            for (n, cpu) in [(1, placement.sender), (2, placement.receiver)] {
                let before = Self.napiThreads()
                try Command.must(["ip", "netns", "exec", node(n), "sh", "-c", "echo 1 > /sys/class/net/u\(n)/threaded"])
                let started = Self.napiThreads().subtracting(before)
                guard !started.isEmpty else { throw CommandFailure("\(mode): u\(n) started no NAPI thread") }
                for pid in started { try Command.must(["taskset", "-pc", "\(cpu)", "\(pid)"]) }
            }
        }
        guard usesPods else { return }
        let unchecked = mode.hasSuffix("-unchecked")
        let vxlan = mode.hasPrefix("bpf-vxlan") || mode.hasPrefix("kernel-vxlan")
        let dataplane = mode.hasPrefix("bpf") ? "bpf" : "kernel"
        try #"{"Network":"10.244.0.0/16","Backend":{"Type":"\#(vxlan ? "vxlan" : "host-gw")"}}"#
            .write(toFile: "\(directory)/net-conf.json", atomically: true, encoding: .utf8)
        for n in [1, 2] {
            try topology.addBridgePod("p\(n)", on: node(n), hostInterface: "vp\(n)",
                                      gateway: "10.244.\(n).1/24", address: "10.244.\(n).5/24", mtu: vxlan ? 1450 : 1500)
        }
        for n in [1, 2] {
            let other = 3 - n
            let pins = "\(directory)/pins-\(n)"
            try FileManager.default.createDirectory(atPath: pins, withIntermediateDirectories: true)
            if dataplane == "bpf" { try BPFFilesystem.ensureMounted(at: pins) }
            let attributes = vxlan
                ? #"{"PublicIP":"198.18.0.\#(other)","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:58:00:00:00:0\#(other)"}}"#
                : #"{"PublicIP":"198.18.0.\#(other)","PublicIPv6":null,"BackendType":"host-gw"}"#
            try #"[{"subnet":"10.244.\#(other).0/24","attributes":\#(attributes)}]"#
                .write(toFile: "\(directory)/peers-\(n).json", atomically: true, encoding: .utf8)
            try Command.must(["ip", "netns", "exec", node(n), weft, "dataplane", "up", "--net-config-path", "\(directory)/net-conf.json",
                              "--subnet", "10.244.\(n).0/24", "--iface", "u\(n)", "--vtep-mac", "0a:58:00:00:00:0\(n)",
                              "--peers", "\(directory)/peers-\(n).json", "--pin-dir", pins, "--dataplane", dataplane,
                              "--log-level", "warning"] + (unchecked ? ["--no-pod-source-check", "--no-underlay-source-check"] : []))
            if mode == "kernel-vxlan-flannel" {
                let rules = FlannelRules(network: IPv4Prefix("10.244.0.0/16")!, subnet: IPv4Prefix("10.244.\(n).0/24")!, masquerade: true, forward: true)
                guard let restore = rules.iptablesRestore(from: IPTablesSave("")) else { throw CommandFailure("\(mode): no rules to install") }
                _ = try Command.must(["ip", "netns", "exec", node(n), "iptables-restore", "--noflush"], input: restore.input)
            }
            if dataplane == "bpf" {
                let mac = try Command.must(["ip", "netns", "exec", pod(n), "cat", "/sys/class/net/eth0/address"])
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                try Command.must(["ip", "netns", "exec", node(n), weft, "dataplane", "endpoint", "add", "--ip", "10.244.\(n).5",
                                  "--iface", "vp\(n)", "--pod-mac", mac, "--pin-dir", pins])
            }
        }
        guard try Command.run(["ip", "netns", "exec", source, "ping", "-c", "1", "-W", "2", targetIP]).succeeded else {
            throw CommandFailure("\(mode): pod 1 cannot reach pod 2 after setup")
        }
    }

    /// Starts the iperf3 and sockperf servers on the target; they run until `remove()`.
    func startServers() throws {
        for arguments in [["iperf3", "-s", "-p", "5201"], ["sockperf", "server", "--tcp", "-i", targetIP, "-p", "11111"]] {
            servers.append(try ChildProcess(["ip", "netns", "exec", target] + Self.pinned(to: Self.placement?.receiver) + arguments,
                                            output: .null, error: .null))
        }
        usleep(500_000)
    }

    static let sinkPort = 9000

    /// `weft bench packets receive` on the target, pinned as the receiver is; collect it for its count.
    func startSink(weft: String, seconds: Int) throws -> ChildProcess {
        let sink = try ChildProcess(["ip", "netns", "exec", target] + Self.pinned(to: Self.placement?.receiver)
                                    + [weft, "bench", "packets", "receive", "--port", "\(Self.sinkPort)", "--duration", "\(seconds)"],
                                    output: .pipe, error: .pipe)
        usleep(300_000)
        return sink
    }

    func run(_ arguments: [String]) throws -> String {
        try Command.must(["ip", "netns", "exec", source] + Self.pinned(to: Self.placement?.sender) + arguments)
    }

    /// The kernel's NAPI threads (`napi/<device>-<id>`), by PID.
    private static func napiThreads() -> Set<Int> {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return Set(entries.compactMap { entry in
            guard let pid = Int(entry),
                  let name = try? String(contentsOfFile: "/proc/\(entry)/comm", encoding: .utf8), name.hasPrefix("napi/") else { return nil }
            return pid
        })
    }

    private static func pinned(to cpu: Int?) -> [String] {
        cpu.map { ["taskset", "-c", "\($0)"] } ?? []
    }

    func remove() {
        for server in servers { server.kill() }
        topology.remove()
        for n in [1, 2] { BPFFilesystem.unmount("\(directory)/pins-\(n)") }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
