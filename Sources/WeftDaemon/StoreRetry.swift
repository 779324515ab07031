import Logging
import WeftStore

/// The daemon's one retry policy for the lease store: back off from 0.5 s to 30 s, log each
/// failure with what to check, and keep `/readyz` false with the reason until an operation
/// succeeds again. The dataplane is never touched meanwhile: pods keep talking on what the
/// node last knew.
struct StoreRetry {
    static let firstDelay = Duration.milliseconds(500)
    static let longestDelay = Duration.seconds(30)
    private var delay = firstDelay

    mutating func succeeded() {
        delay = Self.firstDelay
    }

    mutating func wait(after error: any Error, _ what: String, logger: Logger, state: DaemonState) async throws {
        let problem = "could not \(what): \(error)\(Self.advice(for: error))"
        logger.warning("lease store operation failed; retrying", metadata: ["problem": "\(problem)", "retry-in": "\(delay)"])
        state.update { $0.storeProblem = problem }
        try await Task.sleep(for: delay)
        delay = min(delay * 2, Self.longestDelay)
    }

    /// What to check, for the failures an operator can fix.
    static func advice(for error: any Error) -> String {
        switch error {
        case StoreError.unavailable(_, let reason) where !reason.contains("; check "):
            "; check that the store is running and reachable from this node"
        default:
            ""
        }
    }
}
