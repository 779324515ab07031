import Foundation
import WeftShell

/// Runs the `weft` executable that `swift build` put beside the test bundle.
public struct WeftProcess {
    /// The built binary: `$WEFT_BINARY`, or `weft` next to this test executable.
    public static let binary: String = {
        if let path = ProcessInfo.processInfo.environment["WEFT_BINARY"] { return path }
        let testExecutable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = testExecutable.deletingLastPathComponent()
        // On Linux the tests run from `<build>/debug/<package>PackageTests.xctest`.
        while !FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("weft").path), directory.path != "/" {
            directory = directory.deletingLastPathComponent()
        }
        return directory.appendingPathComponent("weft").path
    }()

    public struct Result {
        public let status: Int32
        public let stdout: String
        public let stderr: String
    }

    /// A started process; `finish()` waits for it and collects its output.
    public final class Running {
        let child: ChildProcess

        public init(_ arguments: [String]) throws {
            child = try ChildProcess([WeftProcess.binary] + arguments, output: .pipe, error: .pipe)
        }

        public var pid: Int32 { child.pid }

        public func finish() -> Result {
            let (termination, output, errors) = child.collect()
            return Result(status: termination.status, stdout: String(decoding: output, as: UTF8.self),
                          stderr: String(decoding: errors, as: UTF8.self))
        }

        /// Stops the process if it is still running (only this one, by its PID).
        public func stop() {
            child.signal(SIGTERM)
        }
    }

    public static func run(_ arguments: [String]) throws -> Result {
        try Running(arguments).finish()
    }
}

/// A private directory per test, removed when the test ends.
public final class TemporaryDirectory {
    public let path: String

    /// A new directory in `parent` (the system's temporary directory unless given).
    public init(in parent: String? = nil) throws {
        let base = parent.map { URL(fileURLWithPath: $0) } ?? FileManager.default.temporaryDirectory
        path = base.appendingPathComponent("weft-cli-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// A new directory in memory (`/dev/shm`) where there is one, for a test whose writes must
    /// not wait on a disk that other tests keep busy; else in the temporary directory.
    public static func inMemory() throws -> TemporaryDirectory {
        var isDirectory: ObjCBool = false
        let shm = "/dev/shm"
        let usable = FileManager.default.fileExists(atPath: shm, isDirectory: &isDirectory) && isDirectory.boolValue && access(shm, W_OK) == 0
        return try TemporaryDirectory(in: usable ? shm : nil)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    public func file(_ name: String) -> String { "\(path)/\(name)" }

    @discardableResult
    public func write(_ name: String, _ text: String) throws -> String {
        try text.write(toFile: file(name), atomically: true, encoding: .utf8)
        return file(name)
    }
}
