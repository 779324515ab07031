import Foundation
import Glibc
import WeftTestSupport

let isRoot = getuid() == 0

/// Two nodes and one pod on each, in network namespaces: the nodes share an underlay
/// veth pair (198.18.0.1 and .2/24); each has a `cni0` bridge with the gateway address
/// of its subnet (10.244.<n>.1/24) and a pod (10.244.<n>.5) on a veth enslaved to it,
/// as the CNI bridge plugin would build it. Everything is removed when the test ends.
final class TwoNodes {
    enum BackendKind: String { case vxlan, hostGateway = "host-gw" }

    let namespaces = Namespaces()
    let files: TemporaryDirectory
    let backend: BackendKind
    let directRouting: Bool
    private(set) var pins: [Int: PinDirectory] = [:]

    init(backend: BackendKind, directRouting: Bool = false) throws {
        self.backend = backend
        self.directRouting = directRouting
        files = try TemporaryDirectory()
        let topology = namespaces.topology
        for node in [1, 2] { try topology.addNode("n\(node)") }
        try topology.join(.init(self.node(1), "u1", "\(underlayIP(1))/24"), .init(self.node(2), "u2", "\(underlayIP(2))/24"))
        for node in [1, 2] {
            try topology.addBridgePod("p\(node)", on: self.node(node), hostInterface: "vp\(node)",
                                      gateway: "10.244.\(node).1/24", address: "\(podIP(node))/24", mtu: 1450)
        }
        let backendJSON = backend == .vxlan
            ? #"{"Type":"vxlan","DirectRouting":\#(directRouting)}"#
            : #"{"Type":"host-gw"}"#
        try files.write("net-conf.json", #"{"Network":"10.244.0.0/16","Backend":\#(backendJSON)}"#)
    }

    func node(_ n: Int) -> String { "\(namespaces.tag)-n\(n)" }
    func pod(_ n: Int) -> String { "\(namespaces.tag)-p\(n)" }
    func underlayIP(_ n: Int) -> String { "198.18.0.\(n)" }
    func podIP(_ n: Int) -> String { "10.244.\(n).5" }
    func vtepMAC(_ n: Int) -> String { "0a:58:00:00:00:0\(n)" }
    func pinDirectory(_ n: Int) -> String { pins[n]!.path }

    private func ip(_ namespace: String, _ arguments: String...) throws {
        try Command.must(["ip", "-n", namespace] + arguments)
    }

    /// The lease node `n` holds, as `weft leases list --json` prints it; `publicIP`
    /// overrides the address it claims.
    func leaseJSON(_ n: Int, publicIP: String? = nil) -> String {
        let address = publicIP ?? underlayIP(n)
        let attributes = backend == .vxlan
            ? #"{"PublicIP":"\#(address)","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"\#(vtepMAC(n))"}}"#
            : #"{"PublicIP":"\#(address)","PublicIPv6":null,"BackendType":"host-gw"}"#
        return #"{"subnet":"10.244.\#(n).0/24","attributes":\#(attributes)}"#
    }

    /// Runs `weft` inside node `n`'s namespace.
    func weft(_ n: Int, _ arguments: [String]) throws -> Command.Result {
        try namespaces.exec(node(n), [WeftProcess.binary] + arguments)
    }

    /// The arguments that describe node `n` to `weft dataplane up|run`, its peer being the other node.
    func nodeArguments(_ n: Int, dataplane: String, peerPublicIP: String? = nil) throws -> [String] {
        if pins[n] == nil { pins[n] = try PinDirectory() }
        let peers = try files.write("peers-\(n).json", "[\(leaseJSON(3 - n, publicIP: peerPublicIP))]")
        return ["--net-config-path", files.file("net-conf.json"), "--subnet", "10.244.\(n).0/24", "--iface", "u\(n)",
                "--vtep-mac", vtepMAC(n), "--peers", peers, "--pin-dir", pinDirectory(n), "--dataplane", dataplane]
    }

    /// Sets up node `n` on the kernel dataplane, as Flannel would program it.
    func startKernel(_ n: Int) throws {
        let up = try weft(n, ["dataplane", "up"] + nodeArguments(n, dataplane: "kernel"))
        guard up.succeeded else { throw Command.Failure(arguments: ["weft dataplane up --dataplane kernel"], result: up) }
    }

    /// Starts `weft dataplane run` on node `n`: set up, then repair until the test ends.
    func runDataplane(_ n: Int, dataplane: String, arguments: [String] = []) throws -> ChildProcess {
        let process = try namespaces.start(node(n), [WeftProcess.binary, "dataplane", "run", "--interval", "1"] + nodeArguments(n, dataplane: dataplane) + arguments)
        // Ready once the node holds its peer: a route in the kernel, an entry in the BPF map.
        let peer = "10.244.\(3 - n).0/24"
        for _ in 0..<100 {
            let holds = dataplane == "bpf"
                ? try weft(n, ["maps", "peers", "--pin-dir", pinDirectory(n)]).stdout.contains(peer)
                : try namespaces.exec(node(n), ["ip", "route", "show", peer]).stdout.contains(peer)
            if holds { break }
            usleep(50_000)
        }
        if dataplane == "bpf" { try registerPod(n) }
        return process
    }

    /// Sets up (or re-adopts) the BPF dataplane on node `n` with the other node as its peer,
    /// and registers its pod.
    func startBPF(_ n: Int, peerPublicIP: String? = nil) throws {
        let up = try weft(n, ["dataplane", "up"] + nodeArguments(n, dataplane: "bpf", peerPublicIP: peerPublicIP))
        guard up.succeeded else { throw Command.Failure(arguments: ["weft dataplane up"], result: up) }
        try registerPod(n)
    }

    /// Registers node `n`'s pod with its BPF dataplane.
    func registerPod(_ n: Int) throws {
        let podMAC = try namespaces.must(pod(n), ["cat", "/sys/class/net/eth0/address"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let add = try weft(n, ["dataplane", "endpoint", "add", "--ip", podIP(n), "--iface", "vp\(n)", "--pod-mac", podMAC,
                               "--pin-dir", pinDirectory(n)])
        guard add.succeeded else { throw Command.Failure(arguments: ["weft dataplane endpoint add"], result: add) }
    }

    /// Programs node `n` exactly as a stock Flannel vxlan node would (as `KernelDataplane` documents it):
    /// `flannel.1`, its /32 address, and the peer's neighbour, FDB entry and onlink route.
    func startFlannelKernelNode(_ n: Int) throws {
        let ns = node(n)
        let other = 3 - n
        try ip(ns, "link", "add", "flannel.1", "address", vtepMAC(n), "type", "vxlan", "id", "1", "local", underlayIP(n),
               "dev", "u\(n)", "dstport", "8472", "nolearning")
        try ip(ns, "link", "set", "flannel.1", "mtu", "1450", "up")
        try ip(ns, "addr", "add", "10.244.\(n).0/32", "dev", "flannel.1")
        try ip(ns, "neigh", "replace", "10.244.\(other).0", "lladdr", vtepMAC(other), "dev", "flannel.1", "nud", "permanent")
        try Command.must(["bridge", "-n", ns, "fdb", "append", vtepMAC(other), "dev", "flannel.1", "dst", underlayIP(other)])
        try ip(ns, "route", "add", "10.244.\(other).0/24", "via", "10.244.\(other).0", "dev", "flannel.1", "onlink")
    }

    /// Seconds until pod `from` reaches pod `to` again (one echo answered), or nil if it
    /// does not within `limit` seconds.
    func secondsUntilReachable(from: Int, to: Int, limit: Double = 5) throws -> Double? {
        let start = Date()
        while Date().timeIntervalSince(start) < limit {
            if try namespaces.exec(pod(from), ["ping", "-c", "1", "-W", "1", podIP(to)]).succeeded {
                return Date().timeIntervalSince(start)
            }
        }
        return nil
    }

    /// Pings pod `to` from pod `from`; true when every echo came back.
    func ping(from: Int, to: Int, count: Int = 3, source: String? = nil) throws -> Bool {
        var arguments = ["ping", "-c", "\(count)", "-i", "0.2", "-W", "2"]
        if let source { arguments += ["-I", source] }
        return try namespaces.exec(pod(from), arguments + [podIP(to)]).succeeded
    }

    /// Sends `megabytes` over TCP from pod `from` to pod `to` with iperf3 and returns the
    /// bytes acknowledged: iperf3 exits 0 only once the receiver has them. (Its receiver-side
    /// count can stop short on transfers this fast, so it is not the measure.)
    func tcpTransfer(from: Int, to: Int, megabytes: Int = 20) throws -> Int {
        let port = "\(5201 + from)"
        let server = try namespaces.start(pod(to), ["iperf3", "-s", "-1", "-p", port])
        defer { server.kill() }
        for _ in 0..<50 {
            let client = try namespaces.exec(pod(from), ["iperf3", "-c", podIP(to), "-p", port, "-n", "\(megabytes)M", "-J"])
            if client.succeeded,
               let document = try JSONSerialization.jsonObject(with: Data(client.stdout.utf8)) as? [String: Any],
               let end = document["end"] as? [String: Any], let sent = end["sum_sent"] as? [String: Any],
               let bytes = sent["bytes"] as? Int {
                return bytes
            }
            guard client.stdout.contains("Connection refused") || client.stderr.contains("Connection refused") else {
                throw Command.Failure(arguments: ["iperf3 -c \(podIP(to))"], result: client)
            }
            usleep(100_000)
        }
        return 0
    }

    /// `weft maps counters --json` of node `n`: packets per outcome.
    func counters(_ n: Int) throws -> [String: Int] {
        let result = try weft(n, ["maps", "counters", "--pin-dir", pinDirectory(n), "--json"])
        guard result.succeeded,
              let document = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: [String: Int]]
        else { throw Command.Failure(arguments: ["weft maps counters"], result: result) }
        return document.mapValues { $0["packets"] ?? 0 }
    }
}
