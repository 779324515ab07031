import Foundation
import WeftCore
import WeftStore

/// Files a command reads, with errors that name the file.
enum ConfigFile {
    /// The bytes of `path`; `what` names the file in the error ("network config", "peers file").
    static func read(_ path: String, what: String = "network config") throws -> Data {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "it is not readable" : "no such file"
            throw CommandFailure("cannot read \(what) \(path): \(reason)")
        }
        return data
    }

    /// Reads and checks a `net-conf.json`; a failure lists every problem, each prefixed with the path.
    static func load(_ path: String) throws -> ParsedNetworkConfig {
        do {
            return try NetworkConfigFile.load(path)
        } catch {
            throw CommandFailure(error.description)
        }
    }
}
