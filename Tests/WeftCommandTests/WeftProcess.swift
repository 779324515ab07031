import Foundation

/// Runs the `weft` executable that `swift build` put beside the test bundle.
struct WeftProcess {
    /// The built binary: `$WEFT_BINARY`, or `weft` next to this test executable.
    static let binary: String = {
        if let path = ProcessInfo.processInfo.environment["WEFT_BINARY"] { return path }
        let testExecutable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = testExecutable.deletingLastPathComponent()
        // On Linux the tests run from `<build>/debug/<package>PackageTests.xctest`.
        while !FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("weft").path), directory.path != "/" {
            directory = directory.deletingLastPathComponent()
        }
        return directory.appendingPathComponent("weft").path
    }()

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// A started process; `finish()` waits for it and collects its output.
    final class Running {
        let process = Process()
        private let stdoutPipe = Pipe()
        private let stderrPipe = Pipe()
        private var stdoutData = Data()

        init(_ arguments: [String]) throws {
            process.executableURL = URL(fileURLWithPath: WeftProcess.binary)
            process.arguments = arguments
            process.standardOutput = stdoutPipe
            process.standardError = stderrPipe
            process.standardInput = FileHandle.nullDevice
            try process.run()
        }

        var pid: Int32 { process.processIdentifier }

        func finish() -> Result {
            let output = stdoutPipe.fileHandleForReading.readDataToEndOfFile()
            let errors = stderrPipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return Result(status: process.terminationStatus, stdout: String(decoding: output, as: UTF8.self),
                          stderr: String(decoding: errors, as: UTF8.self))
        }

        /// Stops the process if it is still running (only this one, by its PID).
        func stop() {
            if process.isRunning { process.terminate() }
        }
    }

    static func run(_ arguments: [String]) throws -> Result {
        try Running(arguments).finish()
    }
}

/// A private directory per test, removed when the test ends.
final class TemporaryDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("weft-cli-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    func file(_ name: String) -> String { "\(path)/\(name)" }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        try text.write(toFile: file(name), atomically: true, encoding: .utf8)
        return file(name)
    }
}
