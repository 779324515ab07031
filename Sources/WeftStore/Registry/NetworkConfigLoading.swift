import Foundation
import WeftCore

extension SubnetRegistry {
    /// The network config: from `file` when given, else from `<prefix>/config` in the
    /// store. Errors say where it looked and how to put one there.
    public func networkConfig(file: String?) async throws -> NetworkConfig {
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                let reason = FileManager.default.fileExists(atPath: file) ? "it is not readable" : "no such file"
                throw NetworkConfigLoadError("cannot read network config \(file): \(reason)")
            }
            do {
                return try NetworkConfigParser.parse(data).config
            } catch {
                throw NetworkConfigLoadError(error.problems.map { "\(file): \($0)" }.joined(separator: "\n"))
            }
        }
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

/// The network config could not be found or read.
public struct NetworkConfigLoadError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
