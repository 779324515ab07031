import AsyncHTTPClient
import Foundation
import NIOCore
import WeftCore

/// The lease store on a real etcd cluster, through its v3 JSON gateway: the same keys,
/// values, leases and transactions Flannel uses, so Weft and Flannel nodes share a cluster.
public final class EtcdStore: KeyValueStore {
    private let client: EtcdClient

    public init(_ connection: EtcdConnection) throws {
        client = try EtcdClient(connection)
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
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    let response = try await client.stream("/v3/watch", EtcdMessages.watchRequest(prefix: prefix, fromRevision: revision))
                    var pending: [UInt8] = []
                    for try await chunk in response.body {
                        pending += chunk.readableBytesView
                        // The gateway writes one JSON message per line.
                        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                            let line = Data(pending[..<newline])
                            pending.removeSubrange(...newline)
                            guard !line.isEmpty, let reply = EtcdMessages.watchResponse(try EtcdMessages.object(line)) else { continue }
                            continuation.yield(reply)
                            if case .compacted = reply {
                                continuation.finish()
                                return
                            }
                        }
                    }
                    // The server ended the stream (a member went away): let the caller resume.
                    continuation.finish(throwing: StoreError.unavailable(location: client.location, reason: "the watch stream ended"))
                } catch let error as EtcdRequestError {
                    continuation.finish(throwing: error)
                } catch let error as StoreError {
                    continuation.finish(throwing: error)
                } catch {
                    // The connection broke: the caller resumes from its last revision, on another member.
                    continuation.finish(throwing: StoreError.unavailable(location: client.location, reason: "watch: \(error)"))
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
