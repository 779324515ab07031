import ArgumentParser
import Logging
import WeftDaemon

/// `--log-level` and `--log-format`, shared by every command that logs.
struct LoggingOptions: ParsableArguments {
    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info
    @Option(name: .long, help: "text (one readable line per event) or json (one JSON object per line, the same fields).")
    var logFormat: Format = .text

    /// Sends logs to standard error at the chosen level. Call once, first thing in `run()`.
    func bootstrap() {
        let level = logLevel
        let format = logFormat
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            case .json:
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
