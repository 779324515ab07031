import Foundation
import WeftCore

extension SubnetRegistry {
    /// The network config: from `file` when given, else from `<prefix>/config` in the
    /// store. Errors say where it looked and how to put one there.
    public func networkConfig(file: String?) async throws -> NetworkConfig {
        if let file { return try NetworkConfigFile.load(file).config }
        guard let text = try await networkConfigText() else {
            throw NetworkConfigLoadError("no network config: looked for \(configKey) in \(store.location); "
                + "store one with `weft config put net-conf.json`, or pass --net-config-path FILE")
        }
        do {
            return try NetworkConfigParser.parse(text).config
        } catch {
            throw NetworkConfigLoadError("the network config at \(configKey) in \(store.location) is invalid:\n"
                + error.problems.map { "  - \($0)" }.joined(separator: "\n"))
        }
    }
}

/// `net-conf.json` on disk.
public enum NetworkConfigFile {
    /// Reads and checks the file; a failure names the file, or lists every problem in it,
    /// each prefixed with the path.
    public static func load(_ path: String) throws(NetworkConfigLoadError) -> ParsedNetworkConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "it is not readable" : "no such file"
            throw NetworkConfigLoadError("cannot read network config \(path): \(reason)")
        }
        do {
            return try NetworkConfigParser.parse(data)
        } catch {
            throw NetworkConfigLoadError(error.problems.map { "\(path): \($0)" }.joined(separator: "\n"))
        }
    }
}

/// The network config could not be found or read.
public struct NetworkConfigLoadError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
