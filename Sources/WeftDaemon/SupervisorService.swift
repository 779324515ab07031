import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WeftCore
import WeftDataplane
import WeftStore

/// Runs the dataplane supervisor on a thread of its own (netlink waits block) until the
/// daemon shuts down; the dataplane itself stays in place.
struct SupervisorService: Service {
    let supervisor: DataplaneSupervisor
    let state: DaemonState

    func run() async throws {
        let finished = AsyncStream<any Error>.makeStream()
        let thread = Thread { [supervisor] in
            do {
                try supervisor.run()
            } catch {
                finished.continuation.yield(error)
            }
            finished.continuation.finish()
        }
        thread.start()
        try await withGracefulShutdownHandler {
            for await error in finished.stream { throw error }
        } onGracefulShutdown: {
            supervisor.stop()
        }
    }
}
