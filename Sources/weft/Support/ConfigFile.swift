import Foundation
import WeftCore

/// Reads a `net-conf.json` from disk, with errors that name the file.
enum ConfigFile {
    static func read(_ path: String) throws -> Data {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "it is not readable" : "no such file"
            throw CommandFailure("cannot read network config \(path): \(reason)")
        }
        return data
    }

    /// Reads and checks a config file; a failure lists every problem, each prefixed with the path.
    static func load(_ path: String) throws -> ParsedNetworkConfig {
        do {
            return try NetworkConfigParser.parse(try read(path))
        } catch let error as NetworkConfigError {
            throw CommandFailure(error.problems.map { "\(path): \($0)" }.joined(separator: "\n"))
        }
    }
}
