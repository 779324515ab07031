import CSQLite
import Foundation
import Glibc
import Logging
import Synchronization
import WeftCore
import WeftDaemon
import WeftDataplane
import WeftStore
import WeftTestSupport

/// A host with one interface, eth0 at 198.18.0.1/24: no netlink, no root.
struct TestHost: NodeHost {
    var address = IPv4Address("198.18.0.1")!

    func missingPrivilege() -> String? { nil }

    func interfaces() throws -> HostInterfaces {
        HostInterfaces(candidates: [CandidateInterface(name: "lo", addresses: [IPv4Address("127.0.0.1")!], isLoopback: true),
                                    CandidateInterface(name: "eth0", addresses: [address])],
                       defaultRouteInterface: "eth0", mtus: ["lo": 65536, "eth0": 1500])
    }

    func interface(toward target: IPv4Address) throws -> String? { "eth0" }

    /// Each test's daemon is a node of its own, though all share the test runner's network namespace.
    let nodeLockName = "weft-daemon-test-\(UUID().uuidString)"
}

/// A dataplane that only records the plans it is given.
final class RecordingDataplane: Dataplane, @unchecked Sendable {
    let mode = DataplaneMode.bpf
    let settings: NodeSettings
    private let applied = Mutex<[(plan: PeerPlan, incremental: Bool)]>([])

    init(settings: NodeSettings) {
        self.settings = settings
    }

    var plans: [PeerPlan] { applied.withLock { $0.map(\.plan) } }
    var lastPlan: PeerPlan? { plans.last }
    /// Whether each apply was given the plan before it (only the difference to write).
    var incremental: [Bool] { applied.withLock { $0.map(\.incremental) } }

    func setUp() throws {}
    func underlayNetworks() throws -> [IPv4Prefix] { [IPv4Prefix("198.18.0.0/24")!] }
    func apply(_ plan: PeerPlan, since previous: PeerPlan?) throws -> ApplyReport {
        applied.withLock { $0.append((plan, previous != nil)) }
        return ApplyReport()
    }
    func repair() throws -> [String] { [] }
    func tearDown() throws {}
}

/// Hands out recording dataplanes; the host network never changes under them.
final class RecordingDataplanes: DataplaneFactory, @unchecked Sendable {
    private let made = Mutex<RecordingDataplane?>(nil)

    var dataplane: RecordingDataplane? { made.withLock { $0 } }

    func select(_ choice: DataplaneChoice) throws -> DataplaneSelection {
        try DataplaneSelection.select(.bpf, probe: DataplaneProbe(reasons: []))
    }

    func currentOrNewVTEPMAC(vni: UInt32, mode: DataplaneMode) -> MACAddress { MACAddress("0a:58:00:00:00:01")! }

    func make(_ node: NodeSettings, mode: DataplaneMode, logger: Logger) throws -> any Dataplane {
        let dataplane = RecordingDataplane(settings: node)
        made.withLock { $0 = dataplane }
        return dataplane
    }

    func namespaceChanges() throws -> any NamespaceChanges { QuietNamespace() }

    let keeper = RecordingRules()
    func rules(_ rules: FlannelRules, underlayGuard: UnderlayGuard.Scope?, tool: NetfilterRules.Tool) -> any RuleKeeper {
        keeper.wanted.withLock { $0 = (rules, tool) }
        return keeper
    }
}

/// Rules kept nowhere: records what the daemon asked for and how often it checked.
final class RecordingRules: RuleKeeper, Sendable {
    let wanted = Mutex<(FlannelRules, NetfilterRules.Tool)?>(nil)
    let checks = Mutex(0)
    /// While set, every check fails with it, as on a node without iptables.
    let failure = Mutex<String?>(nil)

    func ensure(directPeers: [IPv4Prefix: IPv4Address]?) throws -> [String] {
        checks.withLock { $0 += 1 }
        if let failure = failure.withLock({ $0 }) { throw RulesUnavailable(description: failure) }
        return []
    }

    func remove() throws {}
}

struct RulesUnavailable: Error, CustomStringConvertible {
    let description: String
}

/// A namespace where nothing changes: waits until woken or the time is up.
struct QuietNamespace: NamespaceChanges {
    func wait(timeoutMilliseconds: Int32, wake: Int32) throws -> Bool {
        var poller = pollfd(fd: wake, events: Int16(POLLIN), revents: 0)
        _ = poll(&poller, 1, timeoutMilliseconds)
        return false
    }
}

/// A store whose writes fail while `failing` is set, as a full or read-only disk fails them.
final class FailingWrites: KeyValueStore, @unchecked Sendable {
    let store: any KeyValueStore
    let failing = Mutex(false)
    var location: String { store.location }

    init(_ store: any KeyValueStore) {
        self.store = store
    }

    private func check() throws {
        if failing.withLock({ $0 }) {
            // What the embedded store throws on a read-only disk.
            throw SQLiteError(operation: "write", path: store.location, code: SQLITE_READONLY, message: "attempt to write a readonly database").storeError
        }
    }

    func get(_ key: String) async throws -> StoredValue? { try await store.get(key) }
    func list(prefix: String) async throws -> (values: [StoredValue], revision: Int64) { try await store.list(prefix: prefix) }
    func grantLease(ttlSeconds: Int64) async throws -> StoreLease { try check(); return try await store.grantLease(ttlSeconds: ttlSeconds) }
    func keepAlive(lease: Int64) async throws -> StoreLease { try check(); return try await store.keepAlive(lease: lease) }
    func expiration(ofLease lease: Int64) async throws -> Date? { try await store.expiration(ofLease: lease) }
    func revokeLease(_ lease: Int64) async throws { try check(); try await store.revokeLease(lease) }
    func createIfAbsent(_ key: String, value: [UInt8], lease: Int64) async throws -> Int64? {
        try check()
        return try await store.createIfAbsent(key, value: value, lease: lease)
    }
    func put(_ key: String, value: [UInt8], lease: Int64, ifModRevision: Int64?) async throws -> Int64? {
        try check()
        return try await store.put(key, value: value, lease: lease, ifModRevision: ifModRevision)
    }
    func delete(_ key: String) async throws -> Bool { try check(); return try await store.delete(key) }
    func watch(prefix: String, fromRevision revision: Int64) -> AsyncThrowingStream<WatchResponse, any Error> {
        store.watch(prefix: prefix, fromRevision: revision)
    }
}

/// A daemon assembled from test parts: an embedded store in a directory of the test's own,
/// the test host and recording dataplanes. `start` runs it until `stop`.
final class ComposedDaemon: @unchecked Sendable {
    let files: TemporaryDirectory
    let store: FailingWrites
    let registry: SubnetRegistry
    let dataplanes = RecordingDataplanes()
    let log = LogRecorder()
    let daemon: NodeDaemon
    private var task: Task<Void, any Error>?

    static let networkConfig = #"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}"#

    /// - Parameter inMemory: the store and files in `/dev/shm`, for a test that writes thousands of leases.
    init(renewMargin: Duration = .seconds(3600), rulesResync: Duration = .seconds(5),
         serviceManager: ServiceManager = ServiceManager(environment: [:]), inMemory: Bool = false) throws {
        files = try inMemory ? TemporaryDirectory.inMemory() : TemporaryDirectory()
        store = FailingWrites(try EmbeddedStore(path: files.file("leases.db")))
        registry = SubnetRegistry(store: store, logger: log.logger())
        var settings = DaemonSettings()
        settings.netConfigPath = try files.write("net-conf.json", Self.networkConfig)
        settings.interfaces.names = ["eth0"]
        settings.subnetFile = files.file("subnet.env")
        settings.statusFile = files.file("status.json")
        settings.pinDirectory = files.file("pins")
        settings.renewMargin = renewMargin
        settings.leaseCheckInterval = .milliseconds(200)
        settings.repairInterval = .seconds(1)
        settings.rulesResync = rulesResync
        daemon = NodeDaemon(settings: settings, registry: registry, host: TestHost(), dataplanes: dataplanes, logger: log.logger(),
                            serviceManager: serviceManager)
    }

    /// Starts the daemon and waits until it is ready.
    func start() async throws {
        let daemon = self.daemon
        task = Task(executorPreference: daemonThreads) { try await daemon.run(signals: []) }
        guard try await eventually({ daemon.state.current.ready }) else {
            throw DaemonNotReady(log: log.messages)
        }
    }

    /// Stops it as SIGTERM would; returns how long that took.
    func stop() async throws -> Duration {
        let start = ContinuousClock.now
        await daemon.shutDown()
        try await task?.value
        return ContinuousClock.now - start
    }

    var ownSubnet: IPv4Prefix { daemon.state.current.subnet! }

    /// The peers the dataplane was last told to hold.
    var programmed: Set<IPv4Prefix> { Set(dataplanes.dataplane?.lastPlan?.paths.keys.map { $0 } ?? []) }

    func write(_ subnet: String, _ value: String) async throws {
        _ = try await store.store.put(registry.key(for: IPv4Prefix(subnet)!), value: Array(value.utf8), lease: 0, ifModRevision: nil)
    }

    func storedAttributes(_ subnet: IPv4Prefix) async throws -> LeaseAttributes? {
        try await registry.storedLease(subnet: subnet).lease?.lease.attributes
    }
}

struct DaemonNotReady: Error, CustomStringConvertible {
    let log: [String]
    var description: String { "the composed daemon did not become ready:\n" + log.joined(separator: "\n") }
}

/// Threads of the composed daemon's own. Most suites in this test run block the
/// concurrency pool's threads (one a core) in synchronous waits on namespaces and processes;
/// the daemon and its test run here instead, so they are not starved while those wait.
let daemonThreads = QueueExecutor(label: "weft.composed-daemon", concurrent: true)

/// Runs a test body on the daemon's threads.
func onOwnThreads(_ body: () async throws -> Void) async throws {
    try await withTaskExecutorPreference(daemonThreads) { try await body() }
}

/// Polls `condition` every 20 ms for up to `seconds`: a bound for a daemon that stopped
/// following, with room for a test run whose other suites load both cores.
func eventually(seconds: Double = 30, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

func vxlanLeaseJSON(_ ip: String, mac: String) -> String {
    #"{"PublicIP":"\#(ip)","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"\#(mac)"}}"#
}

/// Every thread of the global concurrency pool, held by a blocked task: what a daemon meets
/// when some code of its blocks the pool, or a test suite beside it does. The threads are let
/// go 5 s after they are all held (or after trying for `seconds`), so code that needs the pool
/// is late rather than stuck, and a task that starts after that does not block at all.
final class BlockedPool: Sendable {
    private struct Holders {
        var count = 0
        var released = false
    }
    private let holders = Mutex(Holders())
    private let gate = DispatchSemaphore(value: 0)
    private let width = ProcessInfo.processInfo.activeProcessorCount

    /// True once a blocked task holds each of the pool's threads. In the full suite the other
    /// suites' synchronous tests hold pool threads until they end (the longest lab tests run
    /// past two minutes), so this waits as long as the whole suite may take.
    func blockEveryThread(within seconds: Double = 400) -> Bool {
        for _ in 0..<width {
            Task.detached { [self] in
                let holds = holders.withLock { holders in
                    guard !holders.released else { return false }
                    holders.count += 1
                    return true
                }
                if holds { gate.wait() }
            }
        }
        let deadline = Date().addingTimeInterval(seconds)
        while holders.withLock({ $0.count }) < width && Date() < deadline { usleep(10_000) }
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(5)) { [self] in release() }
        return holders.withLock { $0.count } == width
    }

    func release() {
        let waiting = holders.withLock { holders in
            holders.released = true
            defer { holders.count = 0 }
            return holders.count
        }
        for _ in 0..<waiting { gate.signal() }
    }
}

/// A service manager's end of `$NOTIFY_SOCKET`: a datagram socket of the test's own that
/// collects what the daemon sends.
final class NotifySocket: @unchecked Sendable {
    let path: String
    private let descriptor: Int32

    init(in directory: TemporaryDirectory) throws {
        path = directory.file("notify.sock")
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { bytes in
            for (index, byte) in path.utf8.enumerated() { bytes[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard descriptor >= 0, bound == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    deinit { close(descriptor) }

    /// Every datagram that arrives within `seconds`, until one contains `until`.
    func messages(until: String, seconds: Double) -> [String] {
        var received: [String] = []
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline && !received.contains(where: { $0.contains(until) }) {
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) > 0 else { continue }
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count > 0 { received.append(String(decoding: buffer.prefix(count), as: UTF8.self)) }
        }
        return received
    }
}
