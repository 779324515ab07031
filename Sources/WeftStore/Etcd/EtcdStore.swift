import AsyncHTTPClient
import Foundation
import NIOCore
import Synchronization
import WeftCore

/// The lease store on a real etcd cluster, through its v3 JSON gateway: the same keys,
/// values, leases and transactions Flannel uses, so Weft and Flannel nodes share a cluster.
public final class EtcdStore: KeyValueStore {
    private let client: EtcdClient
    /// A watch stream that says nothing for this long is taken for dead (a member that
    /// hangs, a connection a middlebox dropped) and opened again from the next revision:
    /// nothing is lost or repeated, and a silent stream is noticed within this time.
    let watchIdleTimeout: Duration
    private let reopened = Atomic<Int>(0)

    /// How many quiet watch streams were opened again.
    public var quietStreamsReopened: Int { reopened.load(ordering: .relaxed) }

    public init(_ connection: EtcdConnection, watchIdleTimeout: Duration = .seconds(30)) throws {
        client = try EtcdClient(connection)
        self.watchIdleTimeout = watchIdleTimeout
    }

    public var location: String { client.location }

    public func get(_ key: String) async throws -> StoredValue? {
        EtcdMessages.keyValues(try await client.call("/v3/kv/range", EtcdMessages.rangeRequest(key: key, prefix: false))).first
    }

    public func list(prefix: String) async throws -> (values: [StoredValue], revision: Int64) {
        let response = try await client.call("/v3/kv/range", EtcdMessages.rangeRequest(key: prefix, prefix: true))
        return (EtcdMessages.keyValues(response).sorted { $0.key < $1.key }, EtcdMessages.revision(response))
    }

    public func grantLease(ttlSeconds: Int64) async throws -> StoreLease {
        let response = try await client.call("/v3/lease/grant", EtcdMessages.body(["TTL": .string(String(ttlSeconds))]))
        let ttl = EtcdMessages.int64(response["TTL"])
        return StoreLease(id: EtcdMessages.int64(response["ID"]), ttlSeconds: ttl, expiration: Date().addingTimeInterval(Double(ttl)))
    }

    public func keepAlive(lease: Int64) async throws -> StoreLease {
        let response = try await client.call("/v3/lease/keepalive", EtcdMessages.body(["ID": .string(String(lease))]))
        guard case .object(let result)? = response["result"], EtcdMessages.int64(result["TTL"]) > 0 else {
            throw StoreError.leaseNotFound(lease)
        }
        let ttl = EtcdMessages.int64(result["TTL"])
        return StoreLease(id: lease, ttlSeconds: ttl, expiration: Date().addingTimeInterval(Double(ttl)))
    }

    public func expiration(ofLease lease: Int64) async throws -> Date? {
        let response = try await client.call("/v3/lease/timetolive", EtcdMessages.body(["ID": .string(String(lease))]))
        let ttl = EtcdMessages.int64(response["TTL"])
        return ttl > 0 ? Date().addingTimeInterval(Double(ttl)) : nil
    }

    public func revokeLease(_ lease: Int64) async throws {
        do {
            _ = try await client.call("/v3/lease/revoke", EtcdMessages.body(["ID": .string(String(lease))]))
        } catch let error as EtcdRequestError where error.code == EtcdRequestError.notFound {
            return
        }
    }

    public func createIfAbsent(_ key: String, value: [UInt8], lease: Int64) async throws -> Int64? {
        try await transaction(EtcdMessages.conditionalPut(key: key, value: value, lease: lease, compare: ("VERSION", "version", 0)))
    }

    public func put(_ key: String, value: [UInt8], lease: Int64, ifModRevision: Int64?) async throws -> Int64? {
        guard let revision = ifModRevision else {
            var body: [String: JSONValue] = ["key": .string(EtcdMessages.base64(key)), "value": .string(EtcdMessages.base64(value))]
            if lease != 0 { body["lease"] = .string(String(lease)) }
            return EtcdMessages.revision(try await client.call("/v3/kv/put", EtcdMessages.body(body)))
        }
        return try await transaction(EtcdMessages.conditionalPut(key: key, value: value, lease: lease, compare: ("MOD", "mod_revision", revision)))
    }

    /// etcd's default limit on the operations of one transaction (`--max-txn-ops`).
    public static let maxTransactionPuts = 128

    /// Writes many keys at once, `maxTransactionPuts` to a transaction: how a burst of
    /// leases (a restore, or the benchmark's) lands in etcd together. Returns the last revision.
    @discardableResult
    public func putAll(_ entries: [(key: String, value: [UInt8])], lease: Int64) async throws -> Int64 {
        var revision: Int64 = 0
        for start in stride(from: 0, to: entries.count, by: Self.maxTransactionPuts) {
            let chunk = Array(entries[start..<min(entries.count, start + Self.maxTransactionPuts)])
            revision = try await transaction(EtcdMessages.putAll(chunk, lease: lease)) ?? revision
        }
        return revision
    }

    public func delete(_ key: String) async throws -> Bool {
        let response = try await client.call("/v3/kv/deleterange", EtcdMessages.body(["key": .string(EtcdMessages.base64(key))]))
        return EtcdMessages.int64(response["deleted"]) > 0
    }

    /// Drops history before `revision` (etcd's compaction), as an operator or etcd's
    /// auto-compaction would; watchers behind it must list again.
    public func compact(revision: Int64) async throws {
        _ = try await client.call("/v3/kv/compaction", EtcdMessages.body(["revision": .string(String(revision)), "physical": .bool(true)]))
    }

    /// The store's current revision.
    public func currentRevision() async throws -> Int64 {
        EtcdMessages.revision(try await client.call("/v3/kv/range", EtcdMessages.rangeRequest(key: "\u{0}", prefix: false)))
    }

    /// Runs a transaction; the new revision if it succeeded, nil if its comparison failed.
    private func transaction(_ body: Data) async throws -> Int64? {
        let response = try await client.call("/v3/kv/txn", body)
        return EtcdMessages.bool(response["succeeded"]) ? EtcdMessages.revision(response) : nil
    }

    public func watch(prefix: String, fromRevision revision: Int64) -> AsyncThrowingStream<WatchResponse, any Error> {
        let client = self.client
        let idleTimeout = watchIdleTimeout
        return AsyncThrowingStream { [self] continuation in
            let task = Task {
                var next = revision
                do {
                    // One stream after another while each goes quiet; anything else ends the watch.
                    while !Task.isCancelled {
                        guard let resume = try await Self.follow(client, prefix: prefix, from: next, idleTimeout: idleTimeout,
                                                                 continuation: continuation) else { return }
                        next = resume
                        reopened.add(1, ordering: .relaxed)
                    }
                } catch let error as EtcdRequestError {
                    continuation.finish(throwing: error)
                } catch let error as StoreError {
                    continuation.finish(throwing: error)
                } catch is CancellationError {
                    continuation.finish()
                } catch {
                    // The connection broke: the caller resumes from its last revision, on another member.
                    continuation.finish(throwing: StoreError.unavailable(location: client.location, reason: "watch: \(error)"))
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Reads one watch stream from `from`, yielding what it says. Returns the revision to
    /// open the next stream at when this one said nothing for `idleTimeout`; nil when the
    /// watch is over (compacted: the caller lists again). A stream the server ends is an
    /// outage the caller resumes from.
    private static func follow(_ client: EtcdClient, prefix: String, from: Int64, idleTimeout: Duration,
                               continuation: AsyncThrowingStream<WatchResponse, any Error>.Continuation) async throws -> Int64? {
        let progress = WatchProgress(from: from)
        return try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                let response = try await client.stream("/v3/watch", EtcdMessages.watchRequest(prefix: prefix, fromRevision: from))
                var pending: [UInt8] = []
                for try await chunk in response.body {
                    progress.state.withLock { $0.heard = ContinuousClock.now }
                    pending += chunk.readableBytesView
                    // The gateway writes one JSON message per line.
                    while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                        let line = Data(pending[..<newline])
                        pending.removeSubrange(...newline)
                        guard !line.isEmpty else { continue }
                        let message = try EtcdMessages.object(line)
                        // The member ended the stream and said why ("etcdserver: no leader", say).
                        if case .object(let error)? = message["error"] {
                            let reason: String = if case .string(let text)? = error["message"] { text } else { "an error" }
                            throw StoreError.unavailable(location: client.location, reason: "the watch stream ended: \(reason)")
                        }
                        guard let reply = EtcdMessages.watchResponse(message) else { continue }
                        continuation.yield(reply)
                        switch reply {
                        case .compacted:
                            continuation.finish()
                            progress.state.withLock { $0.over = true }
                            return true
                        case .events(let events, _):
                            if let last = events.last { progress.state.withLock { $0.next = last.revision + 1 } }
                        }
                    }
                }
                // The server ended the stream (a member went away): let the caller resume.
                throw StoreError.unavailable(location: client.location, reason: "the watch stream ended")
            }
            group.addTask {
                while true {
                    try await Task.sleep(for: .seconds(1))
                    if ContinuousClock.now - progress.state.withLock({ $0.heard }) > idleTimeout { return false }
                }
            }
            _ = try await group.next()
            group.cancelAll()
            let state = progress.state.withLock { $0 }
            return state.over ? nil : state.next
        }
    }
}

/// Where one watch stream stands: the next revision, when it last said anything, whether
/// it is over.
private final class WatchProgress: Sendable {
    let state: Mutex<(next: Int64, heard: ContinuousClock.Instant, over: Bool)>

    init(from: Int64) {
        state = Mutex((from, ContinuousClock.now, false))
    }
}
