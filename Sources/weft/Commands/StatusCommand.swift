import ArgumentParser
import Foundation
import Glibc
import WeftBPF
import WeftCore
import WeftDaemon

/// `weft status`: this node as its daemon last recorded it, with live BPF counters.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "This node's lease, subnet, public IP, VTEP MAC, dataplane and why, peers, attach points, counters and health.")

    @Option(help: "The daemon's status file.") var statusFile: String = NodeEnvironment.statusFile
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        guard let data = FileManager.default.contents(atPath: statusFile) else {
            throw CommandFailure("no status at \(statusFile): the Weft daemon has not run on this node (or uses another --status-file)")
        }
        guard case .object(var status) = try JSONValue.parse(data) else {
            throw CommandFailure("\(statusFile) is not a status file the daemon wrote; it is not a JSON object")
        }
        var running = false
        if case .integer(let pid)? = status["pid"] { running = kill(pid_t(pid), 0) == 0 }
        status["running"] = .bool(running)
        var counters: [(String, UInt64)] = []
        var attachPoints: [String] = []
        if case .string(let directory)? = status["pinDirectory"], let maps = try? PinnedMaps(directory: directory) {
            if let totals = try? maps.counters.totals() {
                counters = DataplaneCounter.allCases.map { ($0.description, totals[$0]?.packets ?? 0) }
            }
            if let endpoints = try? maps.endpoints.entries() {
                attachPoints = endpoints.keys.sorted().map { "from_pod on ifindex \(endpoints[$0]!.hostInterfaceIndex) (pod \($0))" }
            }
        }
        if case .string(let iface)? = status["interface"], status["dataplane"] == .string("bpf") {
            attachPoints.insert("from_underlay on \(iface) ingress", at: 0)
            if status["backend"] == .string("vxlan") { attachPoints.insert("from_overlay / to_overlay on the weft vxlan device", at: 0) }
        }
        status["attachPoints"] = .array(attachPoints.map(JSONValue.string))
        status["counters"] = .object(Dictionary(uniqueKeysWithValues: counters.map { ($0.0, JSONValue.integer(Int64($0.1))) }))
        if json {
            print(JSONValue.object(status).serialized(keyOrder: StatusFile.keyOrder + ["running", "attachPoints", "counters"]))
            return
        }
        func field(_ key: String) -> String {
            switch status[key] {
            case .string(let text)?: text
            case .integer(let number)?: "\(number)"
            case .bool(let flag)?: flag ? "yes" : "no"
            default: "-"
            }
        }
        var table = TextTable("FIELD", "VALUE")
        table.add("health", running ? (field("ready") == "yes" ? "running, ready" : "running, not ready") : "not running (last state below)")
        for (label, key) in [("subnet", "subnet"), ("network", "network"), ("public IP", "publicIP"), ("interface", "interface"),
                             ("chosen by", "interfaceRule"), ("backend", "backend"), ("VTEP MAC", "vtepMAC"), ("lease expires", "leaseExpiration"),
                             ("dataplane", "dataplane"), ("because", "dataplaneReason"), ("not ready because", "notReadyReason")] {
            table.add(label, field(key))
        }
        print(table.rendered())
        if case .array(let peers)? = status["peers"] {
            var peerTable = TextTable("PEER SUBNET", "PUBLIC IP", "BACKEND", "VTEP MAC")
            for case .object(let peer) in peers {
                func value(_ key: String) -> String { if case .string(let text)? = peer[key] { return text }; return "-" }
                peerTable.add(value("subnet"), value("publicIP"), value("backendType"), value("vtepMAC"))
            }
            print("\n" + peerTable.rendered())
        }
        if case .array(let rejected)? = status["rejectedLeases"], !rejected.isEmpty {
            var rejectedTable = TextTable("REJECTED LEASE", "PUBLIC IP", "WHY")
            for case .object(let lease) in rejected {
                func value(_ key: String) -> String { if case .string(let text)? = lease[key] { return text }; return "-" }
                rejectedTable.add(value("subnet"), value("publicIP"), value("detail"))
            }
            print("\n" + rejectedTable.rendered())
        }
        if !attachPoints.isEmpty { print("\nattached: " + attachPoints.joined(separator: "; ")) }
        if !counters.isEmpty { print("counters: " + counters.filter { $0.1 > 0 }.map { "\($0.0)=\($0.1)" }.joined(separator: " ")) }
        let dropped = counters.filter { $0.0.hasPrefix("dropped_") }.reduce(0) { $0 + $1.1 }
        print("\n" + Self.nextSteps(dataplane: field("dataplane"), backend: field("backend"), ready: field("ready") == "yes",
                                   running: running, dropped: dropped, vni: field("vni")).joined(separator: "\n"))
    }

    /// What to run when something is wrong, for this node's dataplane: the README's
    /// troubleshooting section in brief.
    static func nextSteps(dataplane: String, backend: String, ready: Bool, running: Bool, dropped: UInt64, vni: String) -> [String] {
        var lines = ["when something is wrong:"]
        if !running { lines.append("  the daemon is not running: start it (systemctl start weft), or read why it stopped (journalctl -u weft)") }
        else if !ready { lines.append("  not ready: the reason is above; the daemon's log says more (journalctl -u weft, or --log-level debug)") }
        if dataplane == "bpf" {
            if dropped > 0 { lines.append("  \(dropped) packets dropped so far: weft maps counters (by reason and hook)") }
            lines.append("  a pod cannot reach another: weft monitor --type drop (each drop with its reason, as it happens)")
            lines.append("  which path a packet takes: weft maps lookup <ip>; every decision: weft monitor --type trace --pod <ip>")
            lines.append("  what the programs hold: weft maps peers | tunnels | endpoints | usage")
        } else if dataplane == "kernel" {
            let device = "flannel.\(vni == "-" ? "1" : vni)"
            lines.append("  routes Weft programs: ip route show proto 87")
            if backend == "vxlan" { lines.append("  the peers' VTEPs: bridge fdb show dev \(device); ip neigh show dev \(device)") }
            lines.append("  underlay drops: iptables -t raw -nvL WEFT-UNDERLAY")
        }
        return lines
    }
}
