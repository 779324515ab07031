import Foundation
@_exported import WeftShell
@_exported import WeftTopology

/// Network namespaces one test owns, all deleted when it ends (also when it fails), and
/// the processes it started in them. Names carry a random tag so tests running in
/// parallel never collide; `topology` builds nodes, underlays and pods under that tag.
public final class Namespaces {
    public let tag: String
    public let topology: Topology
    private var processes: [ChildProcess] = []

    public init() {
        tag = "wt" + String(UUID().uuidString.prefix(6)).lowercased()
        topology = Topology(prefix: "\(tag)-")
    }

    /// Creates `<tag>-<suffix>` with its loopback up, and returns the name.
    @discardableResult
    public func add(_ suffix: String) throws -> String {
        try topology.addNamespace(suffix)
    }

    /// Starts a long-running command in a namespace; it is ended, by its PID, at teardown.
    /// Its output goes nowhere unless `output` is `.pipe` (then read it with `collect()`).
    public func start(_ namespace: String, _ arguments: [String], output: ChildProcess.Output = .null) throws -> ChildProcess {
        let process = try ChildProcess(["ip", "netns", "exec", namespace] + arguments, output: output, error: output)
        processes.append(process)
        return process
    }

    public func exec(_ namespace: String, _ arguments: [String]) throws -> Command.Result {
        try Command.run(["ip", "netns", "exec", namespace] + arguments)
    }

    @discardableResult
    public func must(_ namespace: String, _ arguments: [String]) throws -> String {
        try Command.must(["ip", "netns", "exec", namespace] + arguments)
    }

    deinit {
        for process in processes { process.kill() }
        topology.remove()
    }
}

/// Polls `condition` every 100 ms; true as soon as it holds, false after `seconds`.
public func waitUntil(seconds: Double, _ condition: () throws -> Bool) throws -> Bool {
    let start = Date()
    repeat {
        if try condition() { return true }
        usleep(100_000)
    } while Date().timeIntervalSince(start) < seconds
    return try condition()
}
