import CSQLite
import Foundation
import Testing
import WeftCore
@testable import WeftStore

@Suite struct EmbeddedStoreTests {
    let directory: TemporaryDirectory
    let clock = ManualClock()

    init() throws {
        directory = try TemporaryDirectory()
    }

    func open() throws -> EmbeddedStore {
        let clock = clock
        return try EmbeddedStore(path: directory.file("leases.db"), pollInterval: .milliseconds(10), now: { clock.now })
    }

    @Test("Writers waiting on another process's write lock hold no thread of the caller's")
    func waitingWritersLeaveTheirThreadFree() async throws {
        // The test itself runs off the shared pool, which other suites keep busy.
        try await withTaskExecutorPreference(QueueExecutor(label: "weft.test.store", concurrent: true)) {
            let store = try open()
            _ = try await store.createIfAbsent("/k/a", value: bytes("1"), lease: 0)
            // Another process's transaction, holding the write lock until the test commits it.
            var other: OpaquePointer?
            #expect(sqlite3_open(directory.file("leases.db"), &other) == SQLITE_OK)
            defer { sqlite3_close(other) }
            #expect(sqlite3_exec(other, "BEGIN IMMEDIATE", nil, nil, nil) == SQLITE_OK)
            // One thread for the writers and the probe: a store that waited on its caller's
            // thread would stop the probe until the lock is gone.
            let oneThread = QueueExecutor(label: "weft.test.one-thread", concurrent: false)
            let writers = (0..<4).map { index in
                Task(executorPreference: oneThread) { try await store.put("/k/w\(index)", value: bytes("x"), lease: 0, ifModRevision: nil) }
            }
            try await Task.sleep(for: .milliseconds(100))
            let sent = ContinuousClock.now
            let ranAt = await Task(executorPreference: oneThread) { ContinuousClock.now }.value
            #expect(sqlite3_exec(other, "COMMIT", nil, nil, nil) == SQLITE_OK)
            // Blocked, it would have waited out SQLite's 10 s busy timeout.
            #expect(ranAt - sent < .seconds(2), "the probe ran while the writers waited: \(ranAt - sent)")
            for writer in writers { #expect(try await writer.value != nil) }
        }
    }

    @Test("The database and its side files are this user's alone (0600): they hold the whole cluster's leases")
    func filesArePrivate() async throws {
        let store = try open()
        _ = try await store.createIfAbsent("/k/a", value: bytes("1"), lease: 0)
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: directory.file("leases.db") + suffix) {
            let mode = try FileManager.default.attributesOfItem(atPath: directory.file("leases.db") + suffix)[.posixPermissions] as? Int
            #expect(mode == 0o600, "leases.db\(suffix): \(String(mode ?? 0, radix: 8))")
        }
        #expect(FileManager.default.fileExists(atPath: directory.file("leases.db-wal")), "the store runs in WAL mode")
        withExtendedLifetime(store) {}
    }

    @Test func createIfAbsentWritesOnceAndRevisionsGrow() async throws {
        let store = try open()
        let first = try #require(try await store.createIfAbsent("/k/a", value: bytes("1"), lease: 0))
        #expect(try await store.createIfAbsent("/k/a", value: bytes("2"), lease: 0) == nil)
        #expect(try await store.get("/k/a")?.value == bytes("1"))
        let second = try #require(try await store.createIfAbsent("/k/b", value: bytes("3"), lease: 0))
        #expect(second == first + 1)
        let (values, revision) = try await store.list(prefix: "/k/")
        #expect(values.map(\.key) == ["/k/a", "/k/b"])
        #expect(revision == second)
    }

    @Test func compareAndSwapOnModRevision() async throws {
        let store = try open()
        let created = try #require(try await store.createIfAbsent("/k/a", value: bytes("1"), lease: 0))
        let updated = try #require(try await store.put("/k/a", value: bytes("2"), lease: 0, ifModRevision: created))
        #expect(try await store.put("/k/a", value: bytes("3"), lease: 0, ifModRevision: created) == nil, "stale revision")
        let current = try #require(try await store.get("/k/a"))
        #expect(current.value == bytes("2"))
        #expect(current.modRevision == updated)
        #expect(current.createRevision == created)
        #expect(try await store.delete("/k/a"))
        #expect(try await store.delete("/k/a") == false)
    }

    @Test func anExpiredLeaseDisappearsForEveryReader() async throws {
        let writer = try open()
        let reader = try open()
        let lease = try await writer.grantLease(ttlSeconds: 10)
        _ = try await writer.createIfAbsent("/k/a", value: bytes("1"), lease: lease.id)
        _ = try await writer.createIfAbsent("/k/permanent", value: bytes("2"), lease: 0)
        clock.advance(seconds: 9)
        #expect(try await reader.get("/k/a") != nil)
        clock.advance(seconds: 2)
        #expect(try await reader.get("/k/a") == nil)
        #expect(try await reader.list(prefix: "/k/").values.map(\.key) == ["/k/permanent"])
        #expect(try await reader.createIfAbsent("/k/a", value: bytes("mine now"), lease: 0) != nil)
    }

    @Test func keepAliveExtendsALeaseUntilItLapses() async throws {
        let store = try open()
        let lease = try await store.grantLease(ttlSeconds: 10)
        _ = try await store.createIfAbsent("/k/a", value: bytes("1"), lease: lease.id)
        clock.advance(seconds: 8)
        let renewed = try await store.keepAlive(lease: lease.id)
        #expect(renewed.expiration == clock.now.addingTimeInterval(10))
        clock.advance(seconds: 8)
        #expect(try await store.get("/k/a") != nil, "renewed 8 s ago with a 10 s TTL")
        clock.advance(seconds: 3)
        await #expect(throws: StoreError.leaseNotFound(lease.id)) { try await store.keepAlive(lease: lease.id) }
        #expect(try await store.get("/k/a") == nil)
    }

    @Test func watchersSeeEveryChangeInOrderExactlyOnce() async throws {
        let first = try open()
        let second = try open()
        let start = try first.currentRevision() + 1
        let events = first.watch(prefix: "/k/", fromRevision: start)
        var expected: [(WatchEvent.Kind, String)] = []
        for index in 0..<30 {
            let writer = index.isMultiple(of: 2) ? first : second
            _ = try await writer.put("/k/\(index % 7)", value: bytes("\(index)"), lease: 0, ifModRevision: nil)
            expected.append((.put, "/k/\(index % 7)"))
            if index.isMultiple(of: 5) {
                _ = try await writer.delete("/k/\(index % 7)")
                expected.append((.delete, "/k/\(index % 7)"))
            }
            _ = try await writer.put("/other/\(index)", value: bytes("x"), lease: 0, ifModRevision: nil)
        }
        let responses = try await collectEvents(expected.count, from: events)
        #expect(responses.map(\.kind) == expected.map(\.0))
        #expect(responses.map(\.key) == expected.map(\.1))
        let revisions = responses.map(\.revision)
        #expect(revisions == revisions.sorted() && Set(revisions).count == revisions.count, "strictly increasing")
    }

    @Test func expiryReachesWatchersAsDeletes() async throws {
        let store = try open()
        let lease = try await store.grantLease(ttlSeconds: 5)
        _ = try await store.createIfAbsent("/k/a", value: bytes("1"), lease: lease.id)
        _ = try await store.createIfAbsent("/k/b", value: bytes("2"), lease: lease.id)
        let events = store.watch(prefix: "/k/", fromRevision: try store.currentRevision() + 1)
        clock.advance(seconds: 6)
        let deletes = try await collectEvents(2, from: events)
        #expect(deletes.map(\.kind) == [.delete, .delete])
        #expect(deletes.map(\.key) == ["/k/a", "/k/b"])
        #expect(deletes[0].revision == deletes[1].revision, "one revocation, one revision, as in etcd")
    }

    @Test func aWatchFromCompactedHistoryIsToldToResync() async throws {
        let store = try open()
        for index in 0..<5 { _ = try await store.put("/k/\(index)", value: bytes("x"), lease: 0, ifModRevision: nil) }
        let current = try store.currentRevision()
        try store.compact(revision: current)
        let responses = try await collect(1, from: store.watch(prefix: "/k/", fromRevision: 2))
        #expect(responses == [.compacted(revision: current)])
    }

    @Test func historyIsBoundedAndOldWatchersResync() async throws {
        let clock = clock
        let store = try EmbeddedStore(path: directory.file("small.db"), historyLimit: 10, pollInterval: .milliseconds(10), now: { clock.now })
        for index in 0..<30 { _ = try await store.put("/k/\(index)", value: bytes("x"), lease: 0, ifModRevision: nil) }
        let responses = try await collect(1, from: store.watch(prefix: "/k/", fromRevision: 2))
        guard case .compacted = responses.first else {
            Issue.record("expected a compaction notice, got \(responses)")
            return
        }
        let recent = try await collectEvents(1, from: store.watch(prefix: "/k/", fromRevision: try store.currentRevision()))
        #expect(recent.map(\.key) == ["/k/29"])
    }

    @Test func aMissingDirectoryIsCreatedAndAnUnwritableOneIsNamed() throws {
        _ = try EmbeddedStore(path: directory.file("nested/deeper/leases.db"))
        #expect(FileManager.default.fileExists(atPath: directory.file("nested/deeper/leases.db")))
        FileManager.default.createFile(atPath: directory.file("a-file"), contents: Data())
        #expect {
            try EmbeddedStore(path: directory.file("a-file/leases.db"))
        } throws: { error in
            "\(error)".contains("cannot create directory \(directory.file("a-file"))")
        }
    }

    /// The events of a watch, flattened; fails if they do not come.
    func collectEvents(_ count: Int, from stream: AsyncThrowingStream<WatchResponse, any Error>) async throws -> [WatchEvent] {
        let flattened = AsyncThrowingStream<WatchEvent, any Error> { continuation in
            let task = Task {
                do {
                    for try await response in stream {
                        guard case .events(let events, _) = response else {
                            continuation.finish(throwing: CollectTimeout(expected: count))
                            return
                        }
                        for event in events { continuation.yield(event) }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
        return try await collect(count, from: flattened)
    }
}
