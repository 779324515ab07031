import Foundation
import Logging

/// Collects log lines so tests can check what was warned about.
public final class LogRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []

    public init() {}

    public var messages: [String] { lock.withLock { lines } }

    public func logger() -> Logger {
        Logger(label: "test") { _ in RecordingHandler(recorder: self) }
    }

    fileprivate func append(_ line: String) {
        lock.withLock { lines.append(line) }
    }
}

private struct RecordingHandler: LogHandler {
    let recorder: LogRecorder
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String,
             file: String, function: String, line: UInt) {
        let fields = (metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        recorder.append("\(level) \(message) \(fields)")
    }
}

