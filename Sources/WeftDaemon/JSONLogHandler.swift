import Foundation
import Logging
import WeftCore

/// `--log-format json`: one JSON object per line with the same fields as the text format
/// (time, level, label, message, source, and every metadata key at the top level), for log
/// collectors that parse rather than read.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let write: @Sendable (String) -> Void

    /// - Parameter write: where each line goes (standard error by default).
    public init(label: String, write: @escaping @Sendable (String) -> Void = JSONLogHandler.standardError) {
        self.label = label
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        write(Self.line(time: Date(), level: event.level, label: label, message: "\(event.message)", source: event.source, metadata: merged))
    }

    /// The line for one event; pure. Metadata keys that clash with a fixed field are kept
    /// under "metadata.<key>".
    public static func line(time: Date, level: Logger.Level, label: String, message: String, source: String,
                            metadata: Logger.Metadata) -> String {
        var object: [String: JSONValue] = [
            "time": .string(time.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))),
            "level": .string(level.rawValue), "label": .string(label), "message": .string(message), "source": .string(source),
        ]
        let fixed = Set(object.keys)
        for (key, value) in metadata {
            object[fixed.contains(key) ? "metadata.\(key)" : key] = json(value)
        }
        return JSONValue.object(object).serialized(keyOrder: ["time", "level", "label", "message", "source"] + metadata.keys.sorted())
    }

    private static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let text): .string(text)
        case .stringConvertible(let value): .string(value.description)
        case .array(let values): .array(values.map(json))
        case .dictionary(let values): .object(values.mapValues(json))
        }
    }

    public static let standardError: @Sendable (String) -> Void = { line in
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
