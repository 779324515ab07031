import Foundation
@_exported import WeftShell

/// Network namespaces one test owns, all deleted when it ends (also when it fails).
/// Names carry a random tag so tests running in parallel never collide.
public final class Namespaces {
    public let tag: String
    private var names: [String] = []
    private var processes: [ChildProcess] = []

    public init() {
        tag = "wt" + String(UUID().uuidString.prefix(6)).lowercased()
    }

    /// Creates `<tag>-<suffix>` with its loopback up, and returns the name.
    @discardableResult
    public func add(_ suffix: String) throws -> String {
        let name = "\(tag)-\(suffix)"
        try Command.must(["ip", "netns", "add", name])
        names.append(name)
        try Command.must(["ip", "-n", name, "link", "set", "lo", "up"])
        return name
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
        for name in names.reversed() {
            _ = try? Command.run(["ip", "netns", "del", name])
        }
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
