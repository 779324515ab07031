import Foundation

/// Runs system tools (ip, tc, ping, iperf3, etcd): for the lab and the benchmark, which build
/// namespaces the way an operator would, and for the tests' fixtures.
public enum Command {
    public struct Result: Sendable {
        public let status: Int32
        public let stdout: String
        public let stderr: String
        public var succeeded: Bool { status == 0 }

        public init(status: Int32, stdout: String, stderr: String) {
            self.status = status
            self.stdout = stdout
            self.stderr = stderr
        }
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
        try withDefaultSignalMask { try process.run() }
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
    public static func must(_ arguments: [String], input: String? = nil) throws -> String {
        let result = try run(arguments, input: input)
        guard result.succeeded else { throw Failure(arguments: arguments, result: result) }
        return result.stdout
    }
}

/// Runs `body` with no signal blocked on this thread, so a child spawned in it starts
/// with none blocked: it inherits the spawning thread's mask, and the runtime's threads
/// block some (a blocked SIGALRM keeps `sockperf -t` from ever ending).
public func withDefaultSignalMask<T>(_ body: () throws -> T) rethrows -> T {
    var empty = sigset_t()
    var saved = sigset_t()
    sigemptyset(&empty)
    pthread_sigmask(SIG_SETMASK, &empty, &saved)
    defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
    return try body()
}
