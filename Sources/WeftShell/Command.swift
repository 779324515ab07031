import Glibc

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

    /// Runs `arguments` (a path, or a name found on PATH), feeding `input` to its standard
    /// input, and collects what it prints.
    /// - Parameters:
    ///   - environment: the child's whole environment; nil passes ours on.
    ///   - error: `.pipe` collects standard error into the result; `.inherit` passes it through.
    public static func run(_ arguments: [String], input: String? = nil, environment: [String: String]? = nil,
                           error: ChildProcess.Output = .pipe) throws -> Result {
        let child = try ChildProcess(arguments, environment: environment, input: input == nil ? .null : .pipe,
                                     output: .pipe, error: error)
        let (termination, output, errors) = child.collect(input: input.map { Array($0.utf8) })
        return Result(status: termination.status, stdout: String(decoding: output, as: UTF8.self),
                      stderr: String(decoding: errors, as: UTF8.self))
    }

    /// Runs and requires success; returns standard output.
    @discardableResult
    public static func must(_ arguments: [String], input: String? = nil) throws -> String {
        let result = try run(arguments, input: input)
        guard result.succeeded else { throw Failure(arguments: arguments, result: result) }
        return result.stdout
    }
}
