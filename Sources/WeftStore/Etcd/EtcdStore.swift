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

    /// Follows the prefix from `revision`, one stream after another while each goes quiet for
    /// `watchIdleTimeout`; anything else ends the watch. Read in the consumer's own task (and
    /// its children), so a watch needs no thread of the concurrency pool to start or go on.
    public func watch(prefix: String, fromRevision revision: Int64) -> AsyncThrowingStream<WatchResponse, any Error> {
        let client = self.client
        let idleTimeout = watchIdleTimeout
        let cursor = WatchCursor(next: revision)
        return AsyncThrowingStream(unfolding: { [self] in
            do {
                return try await Self.next(client, prefix: prefix, cursor, idleTimeout: idleTimeout) { reopened.add(1, ordering: .relaxed) }
            } catch let error as EtcdRequestError {
                throw error
            } catch let error as StoreError {
                throw error
            } catch is CancellationError {
                return nil
            } catch {
                // The connection broke: the caller resumes from its last revision, on another member.
                throw StoreError.unavailable(location: client.location, reason: "watch: \(error)")
            }
        })
    }

    /// The next reply of the watch: from the open stream, or a new one from `cursor.next` when
    /// there is none or it went quiet. Nil once compacted (the caller lists again). A stream
    /// the server ends is an outage the caller resumes from.
    private static func next(_ client: EtcdClient, prefix: String, _ cursor: WatchCursor, idleTimeout: Duration,
                             reopened: () -> Void) async throws -> WatchResponse? {
        while !cursor.over {
            if cursor.body == nil {
                let response = try await client.stream("/v3/watch", EtcdMessages.watchRequest(prefix: prefix, fromRevision: cursor.next))
                cursor.body = BodyReader(response.body.makeAsyncIterator())
                cursor.pending = []
                cursor.heard = .now
            }
            // The gateway writes one JSON message per line.
            if let newline = cursor.pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Data(cursor.pending[..<newline])
                cursor.pending.removeSubrange(...newline)
                guard !line.isEmpty else { continue }
                let message = try EtcdMessages.object(line)
                // The member ended the stream and said why ("etcdserver: no leader", say).
                if case .object(let error)? = message["error"] {
                    let reason: String = if case .string(let text)? = error["message"] { text } else { "an error" }
                    throw StoreError.unavailable(location: client.location, reason: "the watch stream ended: \(reason)")
                }
                guard let reply = EtcdMessages.watchResponse(message) else { continue }
                switch reply {
                case .compacted: cursor.over = true
                case .events(let events, _): if let last = events.last { cursor.next = last.revision + 1 }
                }
                return reply
            }
            guard let reader = cursor.body else { continue }
            let deadline = cursor.heard + idleTimeout
            let read = try await withThrowingTaskGroup(of: ChunkOrQuiet.self) { group in
                group.addTask { .chunk(try await reader.next()) }
                group.addTask {
                    try await Task.sleep(until: deadline)
                    return .quiet
                }
                let first = try await group.next()!
                group.cancelAll()
                return first
            }
            switch read {
            case .chunk(nil):
                // The server ended the stream (a member went away): let the caller resume.
                throw StoreError.unavailable(location: client.location, reason: "the watch stream ended")
            case .chunk(let bytes?):
                cursor.pending += bytes
                cursor.heard = .now
            case .quiet:
                cursor.body = nil
                reopened()
            }
        }
        return nil
    }
}

/// Where a watch stands; used by its one consumer only, one call at a time.
private final class WatchCursor: @unchecked Sendable {
    var next: Int64
    var body: BodyReader?
    var pending: [UInt8] = []
    var heard = ContinuousClock.now
    var over = false

    init(next: Int64) {
        self.next = next
    }
}

/// A response body read by one task at a time: the watch's read races its idle timer.
private final class BodyReader: @unchecked Sendable {
    private var iterator: HTTPClientResponse.Body.AsyncIterator

    init(_ iterator: HTTPClientResponse.Body.AsyncIterator) {
        self.iterator = iterator
    }

    /// The next chunk's bytes; nil at the end of the body.
    func next() async throws -> [UInt8]? {
        try await iterator.next().map { Array($0.readableBytesView) }
    }
}

private enum ChunkOrQuiet: Sendable {
    case chunk([UInt8]?)
    case quiet
}

