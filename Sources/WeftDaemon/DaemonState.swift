import Foundation
import ServiceLifecycle
import Synchronization
import WeftCore
import WeftDataplane

/// What the daemon knows about itself, shared by its services: the lease, the dataplane
/// and its health. Changes reach the status file `weft status` reads once they settle
/// (`StatusWriter`), so a burst of lease events costs one write, not one each.
public final class DaemonState: Sendable {
    public struct Snapshot: Sendable {
        public var pid = getpid()
        public var subnet: IPv4Prefix?
        public var network: IPv4Prefix?
        public var publicIP: IPv4Address?
        public var interface: String?
        public var interfaceRule: String?
        public var backend: String?
        public var vtepMAC: MACAddress?
        public var leaseExpiration: Date?
        public var mode: DataplaneMode?
        public var modeReason: String?
        public var pinDirectory: String?
        /// The peers the dataplane holds, and how it reaches each.
        public var peers: [IPv4Prefix: PeerPlan.Path] = [:]
        /// Leases the last plan would not program (an overlap, a peer off the link), with the reason.
        public var plannedRejections: [RejectedLease] = []
        /// Leases rejected on their own merits, which no plan sees, by subnet.
        public var screenedLeases: [IPv4Prefix: RejectedLease] = [:]
        /// Every lease this node does not program, with the reason, in subnet order.
        public var rejectedLeases: [RejectedLease] {
            (plannedRejections + screenedLeases.values).sorted { $0.subnet < $1.subnet }
        }
        public var subnetFileWritten = false
        public var dataplaneProgrammed = false
        public var leaseEvents = 0
        public var applies = 0
        public var applySeconds = 0.0
        public var repairs = 0
        /// Times our own lease was found changed or missing and written back.
        public var leaseDefended = 0
        /// Times the store went back in time and was listed again.
        public var storeResyncs = 0
        /// Why the store cannot be used right now; nil when the last operation worked.
        public var storeProblem: String?
        /// Why the dataplane is not as planned right now, by the task that failed; a task's
        /// problem goes when that task next works.
        public var dataplaneProblems: [DataplaneSupervisor.Work: String] = [:]
        /// The first of them, in the order the supervisor's tasks are listed.
        public var dataplaneProblem: String? {
            DataplaneSupervisor.Work.allCases.lazy.compactMap { dataplaneProblems[$0] }.first
        }

        public var ready: Bool { notReadyReason == nil }

        /// What `/readyz` and `weft status` say while the node is not ready.
        public var notReadyReason: String? {
            if !subnetFileWritten {
                // At start the store is what the node waits for: say so, not only what is missing.
                return storeProblem.map { "the lease store cannot be used, so the node holds no lease yet: \($0)" } ?? "subnet.env is not written yet"
            }
            if !dataplaneProgrammed { return "the dataplane is not programmed yet" }
            if let dataplaneProblem { return "the dataplane needs repair: \(dataplaneProblem)" }
            if let storeProblem { return "the lease store cannot be used: \(storeProblem)" }
            return nil
        }
    }

    private let snapshot = Mutex(Snapshot())
    let statusFile: String
    private let changes = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    private let generation = Atomic<Int>(0)

    /// systemd, when it started the daemon: told when the node is ready, and how it is.
    let serviceManager: ServiceManager
    /// What `/metrics` serves.
    public let metrics = DaemonMetrics()

    public init(statusFile: String, serviceManager: ServiceManager = ServiceManager()) {
        self.statusFile = statusFile
        self.serviceManager = serviceManager
    }

    public var current: Snapshot { snapshot.withLock { $0 } }

    public func update(_ change: (inout Snapshot) -> Void) {
        snapshot.withLock { change(&$0) }
        generation.add(1, ordering: .relaxed)
        changes.continuation.yield()
    }

    /// Writes the status file now, and tells the service manager.
    public func writeStatus() {
        let state = current
        try? StatusFile.write(state, to: statusFile)
        serviceManager.report(state)
    }

    /// Writes the status file once changes settle: `quiet` without another, or at most
    /// `longest` after the first, so a stream of lease events costs a write now and then,
    /// never one each. Until the task is cancelled; then once more.
    func writeStatusWhenSettled(quiet: Duration, longest: Duration) async {
        let clock = ContinuousClock()
        for await _ in changes.stream {
            let deadline = clock.now + longest
            var seen = generation.load(ordering: .relaxed)
            while true {
                if (try? await Task.sleep(for: quiet)) == nil { break }
                let now = generation.load(ordering: .relaxed)
                if now == seen || clock.now >= deadline { break }
                seen = now
            }
            writeStatus()
            if Task.isCancelled { return }
        }
        writeStatus()
    }
}

extension DaemonState.Snapshot {
    /// Takes in what the supervisor did.
    mutating func record(_ observation: DataplaneSupervisor.Observation) {
        switch observation {
        case .applied(_, let plan, let seconds):
            peers = plan.paths
            plannedRejections = plan.rejected
            applies += 1
            applySeconds += seconds
        case .repaired(let count):
            repairs += count
        case .failed(let task, let problem):
            dataplaneProblems[task] = problem
        case .succeeded(let task):
            dataplaneProblems[task] = nil
        case .screened(let subnet, let rejection):
            screenedLeases[subnet] = rejection
        }
    }
}

/// Writes the status file once changes settle, for the daemon's life.
struct StatusWriter: Service {
    let state: DaemonState

    func run() async throws {
        do {
            try await cancellingOnShutdown {
                await state.writeStatusWhenSettled(quiet: .milliseconds(200), longest: .seconds(2))
            }
        } catch is CancellationError {
            // Shutdown: the last settled state is on disk.
        }
    }
}

/// The status file: the daemon's snapshot as JSON, replaced atomically.
public enum StatusFile {
    public static func write(_ state: DaemonState.Snapshot, to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data(render(state).utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// The rejected leases the file lists at most.
    public static let listedRejections = 100

    public static let keyOrder = [
        "pid", "ready", "subnet", "network", "publicIP", "interface", "interfaceRule", "backend", "vtepMAC", "leaseExpiration",
        "dataplane", "dataplaneReason", "pinDirectory", "peers", "rejectedLeaseCount", "rejectedLeases", "leaseEvents", "applies", "repairs",
        "leaseDefended", "storeResyncs", "notReadyReason", "reason", "version",
    ]

    public static func render(_ state: DaemonState.Snapshot) -> String {
        var members: [String: JSONValue] = [
            "pid": .integer(Int64(state.pid)),
            "ready": .bool(state.ready),
            "peers": .array(state.peers.sorted { $0.key < $1.key }.map { subnet, path in
                let vtepMAC: JSONValue = if case .vxlan(_, let mac) = path { .string(mac.description) } else { .null }
                // A direct path is host-gw's, or vxlan's DirectRouting: the node's own backend.
                let backend = vtepMAC == .null ? state.backend ?? "host-gw" : "vxlan"
                return .object(["subnet": .string(subnet.description), "publicIP": .string(path.underlayIP.description),
                                "backendType": .string(backend), "vtepMAC": vtepMAC])
            }),
            // Every rejection is counted; the first hundred (in subnet order) are listed, so a
            // store full of junk keys does not make the file as large.
            "rejectedLeaseCount": .integer(Int64(state.plannedRejections.count + state.screenedLeases.count)),
            "rejectedLeases": .array(state.rejectedLeases.prefix(StatusFile.listedRejections).map {
                .object(["subnet": .string($0.subnet.description), "publicIP": .string($0.publicIP.description),
                         "reason": .string($0.reason.name), "detail": .string($0.reason.description)])
            }),
            "leaseEvents": .integer(Int64(state.leaseEvents)),
            "applies": .integer(Int64(state.applies)),
            "repairs": .integer(Int64(state.repairs)),
            "leaseDefended": .integer(Int64(state.leaseDefended)),
            "storeResyncs": .integer(Int64(state.storeResyncs)),
            "version": .string(WeftVersion.current),
        ]
        func text(_ key: String, _ value: CustomStringConvertible?) {
            members[key] = value.map { .string($0.description) } ?? .null
        }
        text("subnet", state.subnet)
        text("network", state.network)
        text("publicIP", state.publicIP)
        text("interface", state.interface)
        text("interfaceRule", state.interfaceRule)
        text("backend", state.backend)
        text("vtepMAC", state.vtepMAC)
        text("leaseExpiration", state.leaseExpiration.map { $0.formatted(.iso8601) })
        text("dataplane", state.mode?.rawValue)
        text("dataplaneReason", state.modeReason)
        text("pinDirectory", state.pinDirectory)
        text("notReadyReason", state.notReadyReason)
        return JSONValue.object(members).serialized(keyOrder: keyOrder + ["backendType", "detail"])
    }
}
