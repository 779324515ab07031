import Foundation
import Glibc
import Synchronization
import Testing
import WeftCore
@testable import WeftStore

/// The etcd store against a real etcd (Debian's etcd-server) each test starts and stops.
@Suite("etcd lease store", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/etcd"), "needs etcd-server (scripts/setup installs it)"))
struct EtcdStoreTests {
    let recorder = LogRecorder()
    let config: NetworkConfig

    // A failure here fails each test with the error, where `try!` would crash the runner.
    init() throws {
        config = try NetworkConfigParser.parse(#"{"Network":"10.10.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}"#).config
    }

    func registry(_ cluster: EtcdCluster, endpoints: [String]? = nil) throws -> SubnetRegistry {
        SubnetRegistry(store: try EtcdStore(EtcdConnection(endpoints: endpoints ?? cluster.endpoints)), logger: recorder.logger())
    }

    func vxlan(_ ip: String, _ mac: String = "a6:00:00:00:00:01") -> LeaseAttributes {
        .vxlan(publicIP: IPv4Address(ip)!, vni: 1, vtepMAC: MACAddress(mac)!)
    }

    @Test("A lease Flannel wrote is a peer; a lease Weft writes is Flannel's key, JSON and 24 h etcd lease")
    func flannelFormat() async throws {
        let cluster = try EtcdCluster()
        let registry = try registry(cluster)
        let flannel = #"{"PublicIP":"198.18.0.7","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"de:ad:be:ef:00:07"}}"#
        _ = try await registry.store.put("/coreos.com/network/subnets/10.10.7.0-24", value: Array(flannel.utf8), lease: 0, ifModRevision: nil)
        #expect(try await registry.leases().leases.map(\.lease)
            == [Lease(subnet: IPv4Prefix("10.10.7.0/24")!, attributes: vxlan("198.18.0.7", "de:ad:be:ef:00:07"))])

        let acquirer = LeaseAcquirer(registry: registry, config: config)
        let lease = try await acquirer.acquire(attributes: vxlan("198.18.0.2"))
        let key = "/coreos.com/network/subnets/\(lease.lease.subnet.network)-24"
        let stored = try #require(try await registry.store.get(key))
        #expect(String(decoding: stored.value, as: UTF8.self)
            == #"{"PublicIP":"198.18.0.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"a6:00:00:00:00:01"}}"#)
        let expiry = try #require(try await registry.store.expiration(ofLease: stored.lease))
        #expect(abs(expiry.timeIntervalSinceNow - 24 * 3600) < 60, "Flannel's 24 h lease")
        #expect(try await registry.store.createIfAbsent(key, value: [1], lease: 0) == nil, "create is 'if version == 0'")
    }

    @Test("30 concurrent acquirers: 30 leases, no subnet given twice")
    func concurrentAcquirers() async throws {
        let cluster = try EtcdCluster()
        let registry = try registry(cluster)
        let config = config
        let subnets = try await withThrowingTaskGroup(of: IPv4Prefix.self) { group in
            for host in 1...30 {
                group.addTask {
                    try await LeaseAcquirer(registry: registry, config: config).acquire(attributes: .hostGateway(publicIP: IPv4Address(198, 18, 1, UInt8(host)))).lease.subnet
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(subnets.count == 30)
        #expect(Set(subnets).count == 30)
        #expect(try await registry.leases().leases.count == 30)
    }

    @Test("Three members, one killed during acquires and watches: no lost or repeated events, no subnet twice")
    func memberKilled() async throws {
        let cluster = try EtcdCluster(members: 3)
        let registry = try registry(cluster)
        let start = try await registry.leases().revision + 1
        let watcher = Task { try await collect(20, from: registry.watchLeases(fromRevision: start), within: 60) }
        let config = config
        func acquire(_ hosts: ClosedRange<Int>) async throws {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for host in hosts {
                    group.addTask { _ = try await LeaseAcquirer(registry: registry, config: config).acquire(attributes: .hostGateway(publicIP: IPv4Address(198, 18, 2, UInt8(host)))) }
                }
                try await group.waitForAll()
            }
        }
        try await acquire(1...10)
        // The first endpoint serves the watch and the writes so far: the worst one to lose.
        cluster.kill(member: 0)
        try await acquire(11...20)
        let events = try await watcher.value
        var subnets: [IPv4Prefix] = []
        for event in events {
            guard case .put(let lease, _) = event else { Issue.record("unexpected \(event)"); continue }
            subnets.append(lease.subnet)
        }
        #expect(subnets.count == 20 && Set(subnets).count == 20, "each lease seen exactly once: \(subnets)")
        let leases = try await registry.leases().leases.map(\.lease.subnet)
        #expect(leases.count == 20 && Set(leases) == Set(subnets))
    }

    @Test("A member that lost its leader (the rest of its cluster stopped) is not trusted: a read through it fails as unavailable, naming why, and a watch it serves ends within seconds instead of going quiet")
    func aLeaderlessMemberIsNotTrusted() async throws {
        // On threads of its own: the suites beside it block the concurrency pool's, and a
        // watcher waiting for one would look like a watch that never ends.
        try await withTaskExecutorPreference(QueueExecutor(label: "weft.test.leaderless", concurrent: true)) { try await leaderlessMember() }
    }

    private func leaderlessMember() async throws {
        let cluster = try EtcdCluster(members: 3)
        let store = try EtcdStore(EtcdConnection(endpoints: [cluster.endpoints[0]]), watchIdleTimeout: .seconds(60))
        let registry = SubnetRegistry(store: store, logger: recorder.logger())
        let revision = try await registry.leases().revision
        let ended = Mutex<(error: String, at: ContinuousClock.Instant)?>(nil)
        let watcher = Task(executorPreference: QueueExecutor(label: "weft.test.leaderless-watch", concurrent: false)) {
            do {
                for try await _ in store.watch(prefix: registry.prefix, fromRevision: revision + 1) {}
            } catch {
                ended.withLock { $0 = ("\(error)", .now) }
            }
        }
        defer { watcher.cancel() }
        cluster.stop(member: 1)
        cluster.stop(member: 2)
        defer {
            cluster.resume(member: 1)
            cluster.resume(member: 2)
        }
        let stopped = ContinuousClock.now
        var refused: (any Error)?
        // The first reads may time out waiting for a leader; once the member knows it has none,
        // it refuses at once.
        // Bounds for a hang, with room for a loaded test run; the watch's idle timeout is 60 s,
        // so a watch that ends sooner ended because its member has no leader.
        while !"\(refused.map { "\($0)" } ?? "")".contains("no leader") && ContinuousClock.now - stopped < .seconds(50) {
            do { _ = try await registry.leases() } catch { refused = error }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect("\(refused.map { "\($0)" } ?? "answered")".contains("no leader"), "\(String(describing: refused))")
        #expect(refused is StoreError, "a connectivity problem, retried, not a refusal: \(String(describing: refused))")
        while ended.withLock({ $0 }) == nil && ContinuousClock.now - stopped < .seconds(50) { try await Task.sleep(for: .milliseconds(200)) }
        let end = try #require(ended.withLock { $0 }, "the watch still runs 50 s after its member lost its leader")
        #expect(end.at - stopped < .seconds(50), "\(end.at - stopped): \(end.error)")
        #expect(end.error.contains("unavailable"), "\(end.error)")
    }

    @Test("A watch stream that goes quiet is opened again from the next revision: later changes come once, in order")
    func quietStreamsAreReopened() async throws {
        let cluster = try EtcdCluster()
        let store = try EtcdStore(EtcdConnection(endpoints: cluster.endpoints), watchIdleTimeout: .seconds(1))
        let registry = SubnetRegistry(store: store, logger: recorder.logger())
        let first = try #require(try await registry.createLease(subnet: IPv4Prefix("10.10.1.0/24")!, attributes: vxlan("198.18.0.1"), ttlSeconds: 600))
        let watch = registry.watchLeases(fromRevision: first.modRevision)
        let collector = Task { try await collect(4, from: watch, within: 60) }
        // Quiet past the deadline: the stream is taken for dead and opened again.
        let deadline = ContinuousClock.now + .seconds(30)
        while store.quietStreamsReopened == 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        for host in 2...4 {
            _ = try await registry.createLease(subnet: IPv4Prefix("10.10.\(host).0/24")!, attributes: vxlan("198.18.0.\(host)"), ttlSeconds: 600)
        }
        let events = try await collector.value
        let subnets = events.map { event -> String in
            if case .put(let lease, _) = event { return lease.subnet.description }
            return "?"
        }
        #expect(subnets == ["10.10.1.0/24", "10.10.2.0/24", "10.10.3.0/24", "10.10.4.0/24"])
        #expect(store.quietStreamsReopened >= 1, "the quiet stream was taken for dead and opened again")
    }

    @Test("Compaction while a watcher is away: it resyncs and reports exactly the changes it missed")
    func compaction() async throws {
        let cluster = try EtcdCluster()
        let registry = try registry(cluster)
        let store = registry.store as! EtcdStore
        let a = try #require(try await registry.createLease(subnet: IPv4Prefix("10.10.1.0/24")!, attributes: vxlan("198.18.0.1"), ttlSeconds: 600))
        let b = try #require(try await registry.createLease(subnet: IPv4Prefix("10.10.2.0/24")!, attributes: vxlan("198.18.0.2"), ttlSeconds: 600))
        let resumeFrom = try await registry.leases().revision + 1
        let c = try #require(try await registry.createLease(subnet: IPv4Prefix("10.10.3.0/24")!, attributes: vxlan("198.18.0.3"), ttlSeconds: 600))
        _ = try await registry.deleteLease(subnet: a.lease.subnet)
        _ = try #require(try await registry.replaceLease(b, attributes: vxlan("198.18.0.2", "a6:00:00:00:00:99"), ttlSeconds: 600))
        try await store.compact(revision: try await store.currentRevision())
        let missed = try await collect(3, from: registry.watchLeases(fromRevision: resumeFrom, known: [a.lease, b.lease]))
        let summary = Set(missed.map { event -> String in
            switch event {
            case .put(let lease, _): "put \(lease.subnet) \(lease.attributes.vxlan!.vtepMAC)"
            case .delete(let subnet, _): "delete \(subnet)"
            }
        })
        #expect(summary == ["put \(c.lease.subnet) a6:00:00:00:00:01", "put 10.10.2.0/24 a6:00:00:00:00:99", "delete 10.10.1.0/24"])
    }

    @Test("Garbage under the prefix is skipped with a warning naming the key; its subnet stays taken")
    func garbage() async throws {
        let cluster = try EtcdCluster()
        let registry = try registry(cluster)
        _ = try await registry.store.put("/coreos.com/network/subnets/10.10.5.0-24", value: Array("not json".utf8), lease: 0, ifModRevision: nil)
        _ = try await registry.store.put("/coreos.com/network/subnets/bogus", value: Array("{}".utf8), lease: 0, ifModRevision: nil)
        _ = try #require(try await registry.createLease(subnet: IPv4Prefix("10.10.6.0/24")!, attributes: vxlan("198.18.0.6"), ttlSeconds: 60))
        let listing = try await registry.leases()
        #expect(listing.leases.map(\.lease.subnet) == [IPv4Prefix("10.10.6.0/24")!])
        #expect(Set(listing.skipped.map(\.key)) == ["/coreos.com/network/subnets/10.10.5.0-24", "/coreos.com/network/subnets/bogus"])
        #expect(listing.skipped.first { $0.key.hasSuffix("10.10.5.0-24") }?.subnet == IPv4Prefix("10.10.5.0/24"))
        #expect(recorder.messages.contains { $0.contains("/coreos.com/network/subnets/bogus") })
    }

    @Test("TLS: without the client certificate etcd refuses; with it, it works")
    func tls() async throws {
        let cluster = try EtcdCluster(tls: true)
        let files = try #require(cluster.tls)
        let anonymous = SubnetRegistry(store: try EtcdStore(EtcdConnection(endpoints: cluster.endpoints, caFile: files.ca)), logger: recorder.logger())
        await #expect(throws: (any Error).self) { _ = try await anonymous.leases() }
        let untrusting = SubnetRegistry(store: try EtcdStore(EtcdConnection(endpoints: cluster.endpoints, certFile: files.clientCertificate,
                                                                            keyFile: files.clientKey)), logger: recorder.logger())
        await #expect(throws: (any Error).self) { _ = try await untrusting.leases() }
        let client = SubnetRegistry(store: try EtcdStore(EtcdConnection(endpoints: cluster.endpoints, caFile: files.ca,
                                                                        certFile: files.clientCertificate, keyFile: files.clientKey)),
                                    logger: recorder.logger())
        _ = try #require(try await client.createLease(subnet: IPv4Prefix("10.10.9.0/24")!, attributes: vxlan("198.18.0.9"), ttlSeconds: 60))
        #expect(try await client.leases().leases.count == 1)
    }

    @Test("TLS failures name the problem and the flag, as configuration errors: no CA, another CA, a certificate for another name, an unreadable file")
    func tlsFailuresAreNamed() async throws {
        let cluster = try EtcdCluster(tls: true)
        let files = try #require(cluster.tls)
        let elsewhere = try TemporaryDirectory()
        let otherCA = try EtcdCluster.makeCertificates(in: elsewhere).ca
        func failure(_ connection: EtcdConnection) async -> StoreError? {
            do {
                _ = try await SubnetRegistry(store: try EtcdStore(connection), logger: recorder.logger()).leases()
                return nil
            } catch {
                return error as? StoreError
            }
        }
        func reason(_ error: StoreError?) -> String? {
            if case .misconfigured(_, let reason)? = error { return reason }
            return nil
        }
        let noCA = await failure(EtcdConnection(endpoints: cluster.endpoints, certFile: files.clientCertificate, keyFile: files.clientKey))
        #expect(reason(noCA)?.contains("not signed by a CA this system trusts; give the CA that signed it with --etcd-cafile") == true, "\(String(describing: noCA))")
        let wrongCA = await failure(EtcdConnection(endpoints: cluster.endpoints, caFile: otherCA, certFile: files.clientCertificate, keyFile: files.clientKey))
        #expect(reason(wrongCA)?.contains("not signed by the CA in --etcd-cafile \(otherCA)") == true, "\(String(describing: wrongCA))")
        let unreadable = await failure(EtcdConnection(endpoints: cluster.endpoints, caFile: elsewhere.file("missing.crt")))
        #expect(reason(unreadable)?.contains("--etcd-cafile \(elsewhere.file("missing.crt")): cannot be read") == true, "\(String(describing: unreadable))")

        let named = try EtcdCluster(tls: true, serverNames: "DNS:etcd.example")
        let namedFiles = try #require(named.tls)
        let mismatch = await failure(EtcdConnection(endpoints: named.endpoints, caFile: namedFiles.ca, certFile: namedFiles.clientCertificate,
                                                    keyFile: namedFiles.clientKey))
        #expect(reason(mismatch)?.contains("the server's certificate does not name this address") == true, "\(String(describing: mismatch))")
    }

    @Test("Username and password: refused without them, works with them")
    func authentication() async throws {
        let cluster = try EtcdCluster()
        let admin = try EtcdClient(EtcdConnection(endpoints: cluster.endpoints))
        _ = try await admin.call("/v3/auth/user/add", EtcdMessages.body(["name": .string("root"), "password": .string("s3cret")]))
        _ = try await admin.call("/v3/auth/role/add", EtcdMessages.body(["name": .string("root")]))
        _ = try await admin.call("/v3/auth/user/grant", EtcdMessages.body(["user": .string("root"), "role": .string("root")]))
        _ = try await admin.call("/v3/auth/enable", EtcdMessages.body([:]))
        let anonymous = try registry(cluster)
        await #expect(throws: (any Error).self) { _ = try await anonymous.createLease(subnet: IPv4Prefix("10.10.8.0/24")!, attributes: vxlan("198.18.0.8"), ttlSeconds: 60) }
        let wrong = SubnetRegistry(store: try EtcdStore(EtcdConnection(endpoints: cluster.endpoints, username: "root", password: "nope")), logger: recorder.logger())
        let refused = await #expect(throws: (any Error).self) { _ = try await wrong.leases() }
        #expect("\(refused.map { "\($0)" } ?? "")".contains("check --etcd-username and --etcd-password"))
        let root = SubnetRegistry(store: try EtcdStore(EtcdConnection(endpoints: cluster.endpoints, username: "root", password: "s3cret")), logger: recorder.logger())
        _ = try #require(try await root.createLease(subnet: IPv4Prefix("10.10.8.0/24")!, attributes: vxlan("198.18.0.8"), ttlSeconds: 60))
        #expect(try await root.leases().leases.count == 1)

        // Neither password appears in a log line, an error, or the connection printed or dumped.
        let connection = EtcdConnection(endpoints: cluster.endpoints, username: "root", password: "s3cret")
        var dumped = ""
        dump(connection, to: &dumped)
        let shown = recorder.messages + ["\(refused.map { "\($0)" } ?? "")", "\(connection)", String(reflecting: connection), dumped]
        for text in shown {
            #expect(!text.contains("s3cret") && !text.contains("nope"), "\(text)")
        }
        #expect("\(connection)".contains("password (hidden)"))
    }
}
