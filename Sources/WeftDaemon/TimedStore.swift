import Foundation
import WeftStore

/// A lease store whose every request is timed into `weft_store_request_duration_seconds`,
/// answered or failed. Watches stream and are not timed.
struct TimedStore: KeyValueStore {
    let store: any KeyValueStore
    let metrics: DaemonMetrics

    var location: String { store.location }

    private func timed<T>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        let start = ContinuousClock.now
        defer { metrics.recordStoreRoundTrip(operation, ContinuousClock.now - start) }
        return try await body()
    }

    func get(_ key: String) async throws -> StoredValue? { try await timed("get") { try await store.get(key) } }

    func list(prefix: String) async throws -> (values: [StoredValue], revision: Int64) {
        try await timed("list") { try await store.list(prefix: prefix) }
    }

    func grantLease(ttlSeconds: Int64) async throws -> StoreLease { try await timed("grant_lease") { try await store.grantLease(ttlSeconds: ttlSeconds) } }

    func keepAlive(lease: Int64) async throws -> StoreLease { try await timed("keep_alive") { try await store.keepAlive(lease: lease) } }

    func expiration(ofLease lease: Int64) async throws -> Date? { try await timed("lease_expiration") { try await store.expiration(ofLease: lease) } }

    func revokeLease(_ lease: Int64) async throws { try await timed("revoke_lease") { try await store.revokeLease(lease) } }

    func createIfAbsent(_ key: String, value: [UInt8], lease: Int64) async throws -> Int64? {
        try await timed("create") { try await store.createIfAbsent(key, value: value, lease: lease) }
    }

    func put(_ key: String, value: [UInt8], lease: Int64, ifModRevision: Int64?) async throws -> Int64? {
        try await timed("put") { try await store.put(key, value: value, lease: lease, ifModRevision: ifModRevision) }
    }

    func delete(_ key: String) async throws -> Bool { try await timed("delete") { try await store.delete(key) } }

    func watch(prefix: String, fromRevision revision: Int64) -> AsyncThrowingStream<WatchResponse, any Error> {
        store.watch(prefix: prefix, fromRevision: revision)
    }
}
