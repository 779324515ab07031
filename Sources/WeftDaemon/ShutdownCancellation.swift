import ServiceLifecycle

/// Runs `operation` and cancels it once graceful shutdown begins, returning what it returns
/// (or throwing what it throws, `CancellationError` included).
///
/// ServiceLifecycle's `cancelWhenGracefulShutdown` does the same through an unstructured task
/// started in its shutdown handler, and that task waits for a free thread of the global
/// concurrency pool: when the pool is busy the daemon does not stop until it frees up. This
/// one wakes a child of its own from the handler, so shutdown needs no thread it does not hold.
func cancellingOnShutdown<T: Sendable>(_ operation: @Sendable @escaping () async throws -> T) async throws -> T {
    let (shutdown, begin) = AsyncStream<Never>.makeStream()
    return try await withGracefulShutdownHandler {
        try await withThrowingTaskGroup(of: ShutdownRace<T>.self) { group in
            group.addTask { .finished(try await operation()) }
            group.addTask {
                for await _ in shutdown {}
                return .shuttingDown
            }
            while let outcome = try await group.next() {
                guard case .finished(let value) = outcome else {
                    group.cancelAll()
                    continue
                }
                group.cancelAll()
                return value
            }
            throw CancellationError()
        }
    } onGracefulShutdown: {
        begin.finish()
    }
}

private enum ShutdownRace<T: Sendable>: Sendable {
    case finished(T)
    case shuttingDown
}

/// Returns once graceful shutdown begins, or the task is cancelled; like ServiceLifecycle's
/// `gracefulShutdown()`, but needing no thread of the global pool (see above).
func untilShutdown() async {
    let (shutdown, begin) = AsyncStream<Never>.makeStream()
    await withGracefulShutdownHandler {
        for await _ in shutdown {}
    } onGracefulShutdown: {
        begin.finish()
    }
}
