import Foundation
import Glibc
import WeftTestSupport

let isRoot = getuid() == 0

/// A `weft lab` of the test's own, under a unique name, taken down when the test ends.
final class LabFixture {
    let name = "t" + String(UUID().uuidString.prefix(6)).lowercased()
    var directory: String { "/run/weft-\(name)" }

    init(nodes: Int = 3, backend: String = "vxlan", dataplane: String = "bpf", podsPerNode: Int = 1, store: String = "embedded",
         mtu: Int? = nil, ipMasq: Bool = false, nftables: Bool = false) throws {
        let up = try weft(["lab", "up", "--nodes", "\(nodes)", "--backend", backend, "--dataplane", dataplane,
                           "--pods-per-node", "\(podsPerNode)", "--store", store] + (mtu.map { ["--mtu", "\($0)"] } ?? [])
                          + (ipMasq ? ["--ip-masq"] : []) + (nftables ? ["--nftables"] : []))
        guard up.succeeded else { throw Command.Failure(arguments: ["weft lab up"], result: up) }
    }

    deinit {
        _ = try? weft(["lab", "down"])
    }

    /// `weft lab <subcommand> --name <ours> <the rest>`: the name goes before any
    /// positional argument, which `lab exec` would otherwise pass through.
    func weft(_ arguments: [String]) throws -> Command.Result {
        var arguments = arguments
        arguments.insert(contentsOf: ["--name", name], at: min(2, arguments.count))
        return try Command.run([WeftProcess.binary] + arguments)
    }

    func status() throws -> [String: Any] {
        let result = try weft(["lab", "status", "--json"])
        return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
    }

    var underlay: String { "weft-\(name)-underlay" }

    /// The IP of a node's first pod.
    func podIP(_ node: String) throws -> String {
        (try self.node(node)["pods"] as? [[String: Any]])?.first?["ip"] as? String ?? "?"
    }

    /// The address `host` of `node`'s pod subnet (200, say, which no pod holds; 1, the gateway): for a pod to spoof.
    func address(on node: String, host: Int) throws -> String {
        let subnet = try self.node(node)["subnet"] as? String ?? "?"
        return String(subnet.prefix { $0 != "/" }.dropLast(1)) + "\(host)"
    }

    func log(_ node: String) -> String {
        (try? String(contentsOfFile: "\(directory)/\(node)/daemon.log", encoding: .utf8)) ?? ""
    }

    func node(_ name: String) throws -> [String: Any] {
        let nodes = try status()["nodes"] as? [[String: Any]] ?? []
        return nodes.first { $0["node"] as? String == name } ?? [:]
    }

    /// `weft` inside a node, reading that node's pins, status and store.
    func inNode(_ node: String, _ arguments: [String]) throws -> Command.Result {
        try weft(["lab", "exec", node, "--", "weft"] + arguments)
    }

    func peers(of node: String) throws -> Set<String> {
        let output = try inNode(node, ["maps", "peers", "--json"]).stdout
        let entries = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]] ?? []
        return Set(entries.compactMap { $0["subnet"] as? String })
    }

    /// A daemon of the test's own in `node`'s place (the lab's is stopped first), so the test
    /// sees its log and exit status; it writes the node's status file. Returns it once it is
    /// ready (or after `seconds`), with its log file.
    func replaceDaemon(_ node: String, iface: String = "eth0", pinDirectory: String? = nil, arguments: [String] = [], beforeStart: () throws -> Void = {},
                       seconds: Double = 15) throws -> (daemon: ChildProcess, log: String, ready: Bool) {
        let current = try self.node(node)
        let pid = pid_t(current["pid"] as? Int ?? 0)
        kill(pid, SIGTERM)
        guard try waitUntil(seconds: 5, { kill(pid, 0) != 0 }) else { throw LabFixtureError("the lab's daemon of \(node) did not stop") }
        try beforeStart()
        let directory = "\(self.directory)/\(node)"
        let log = "\(directory)/test-daemon.log"
        let daemon = try ChildProcess(["ip", "netns", "exec", current["namespace"] as? String ?? "?", WeftProcess.binary, "daemon",
                                       "--store-file", "\(self.directory)/leases.db", "--iface", iface, "--subnet-file", "\(directory)/subnet.env",
                                       "--pin-dir", pinDirectory ?? "\(directory)/bpf", "--status-file", "\(directory)/status.json", "--dataplane", "bpf"] + arguments,
                                      output: .file(log), error: .file(log))
        let ready = try waitUntil(seconds: seconds) {
            (try? String(contentsOfFile: "\(directory)/status.json", encoding: .utf8))?.contains(#""pid":\#(daemon.pid),"ready":true"#) == true
        }
        return (daemon, log, ready)
    }

    /// Every namespace, mount, process and file whose name says it is this lab's.
    func leftovers() throws -> [String] {
        var found: [String] = []
        found += try Command.must(["ip", "netns", "list"]).split(separator: "\n").map(String.init).filter { $0.contains("weft-\(name)-") }
        found += try String(contentsOfFile: "/proc/mounts", encoding: .utf8).split(separator: "\n").map(String.init).filter { $0.contains(directory) }
        if FileManager.default.fileExists(atPath: directory) { found.append(directory) }
        for entry in try FileManager.default.contentsOfDirectory(atPath: "/proc") where Int(entry) != nil {
            if let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"),
               String(decoding: data, as: UTF8.self).contains(directory) { found.append("process \(entry)") }
        }
        return found
    }
}

struct LabFixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
