import Foundation

/// Runs system tools (ip, tc, ping, iperf3) for test fixtures.
public enum Command {
    public struct Result: Sendable {
        public let status: Int32
        public let stdout: String
        public let stderr: String
        public var succeeded: Bool { status == 0 }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let arguments: [String]
        public let result: Result

        public init(arguments: [String], result: Result) {
            self.arguments = arguments
            self.result = result
        }

        public var description: String {
            "`\(arguments.joined(separator: " "))` exited \(result.status): \(result.stderr)\(result.stdout)"
        }
    }

    /// Runs `arguments` (found on PATH), feeding `input` to its standard input.
    public static func run(_ arguments: [String], input: String? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        let stdin = Pipe()
        process.standardInput = input == nil ? FileHandle.nullDevice : stdin
        try process.run()
        if let input {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try? stdin.fileHandleForWriting.close()
        }
        // Read both pipes at once so neither fills up and blocks the child.
        nonisolated(unsafe) var errorData = Data()
        let done = DispatchSemaphore(value: 0)
        let reader = Thread {
            errorData = errors.fileHandleForReading.readDataToEndOfFile()
            done.signal()
        }
        reader.start()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        done.wait()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: outputData, as: UTF8.self),
                      stderr: String(decoding: errorData, as: UTF8.self))
    }

    /// Runs and requires success; returns standard output.
    @discardableResult
    public static func must(_ arguments: [String]) throws -> String {
        let result = try run(arguments)
        guard result.succeeded else { throw Failure(arguments: arguments, result: result) }
        return result.stdout
    }
}

/// Network namespaces one test owns, all deleted when it ends (also when it fails).
/// Names carry a random tag so tests running in parallel never collide.
public final class Namespaces {
    public let tag: String
    private var names: [String] = []
    private var processes: [Process] = []

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
    public func start(_ namespace: String, _ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = ["netns", "exec", namespace] + arguments
        process.standardOutput = Pipe()
        process.standardError = Pipe()
        process.standardInput = FileHandle.nullDevice
        try process.run()
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
        for process in processes where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
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
