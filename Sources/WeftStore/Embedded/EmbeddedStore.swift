import Foundation
import Synchronization

/// The embedded lease store: a SQLite database file that every Weft process on one
/// machine opens directly. WAL lets readers run beside a writer; `BEGIN IMMEDIATE`
/// serialises writers across processes, so create-if-absent is atomic machine-wide.
///
/// There is no server to expire leases, so every process does it: writes sweep expired
/// leases (deleting their keys and recording delete events, as etcd does), reads hide
/// keys whose lease has passed, and watchers sweep when they see an expired lease.
public final class EmbeddedStore: KeyValueStore, @unchecked Sendable {
    public let location: String
    /// How many revisions of history watchers can resume from before they must resync.
    public let historyLimit: Int64
    let pollInterval: Duration
    private let now: @Sendable () -> Date
    /// The connection once it is open (guarded by `lock`).
    private var opened: SQLiteDatabase?
    private let lock = NSLock()
    private let queue = DispatchQueue(label: "weft.embedded-store")

    /// Opens (creating if needed) the database at `path`, creating its directory too. A disk
    /// that is read-only or full now is not an error here: the store opens on the first
    /// operation that finds the disk fixed, and each one before fails as unavailable, as any
    /// operation fails when the same disk goes bad later, so the caller's retry covers both.
    /// A path that cannot be a database file (a file where a directory must be) is an error.
    public init(path: String, historyLimit: Int64 = 10_000, pollInterval: Duration = .milliseconds(50),
                now: @escaping @Sendable () -> Date = Date.init) throws {
        location = path
        self.historyLimit = historyLimit
        self.pollInterval = pollInterval
        self.now = now
        do {
            opened = try Self.open(path)
        } catch let error as SQLiteError where error.isStorageProblem {
            return
        } catch StoreError.unavailable(_, let reason) where !Self.blockedByAFile(path) {
            _ = reason
            return
        }
    }

    /// True when a component of the path's directory exists but is no directory.
    private static func blockedByAFile(_ path: String) -> Bool {
        var directory = (path as NSString).deletingLastPathComponent
        while !directory.isEmpty && directory != "/" {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) { return !isDirectory.boolValue }
            directory = (directory as NSString).deletingLastPathComponent
        }
        return false
    }

    /// The open connection, opening it when there is none yet (under `lock`).
    private var database: SQLiteDatabase {
        get throws {
            if let opened { return opened }
            let database = try Self.open(location)
            opened = database
            return database
        }
    }

    private static func open(_ path: String) throws -> SQLiteDatabase {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw StoreError.unavailable(location: path, reason: "cannot create directory \(directory): \(error.localizedDescription); check the disk, or choose a writable --store-file")
            }
        }
        let database = try SQLiteDatabase(path: path)
        database.setBusyTimeout(milliseconds: 10_000)
        try database.execute("PRAGMA journal_mode=WAL")
        try database.execute("PRAGMA synchronous=NORMAL")
        try database.transaction(immediate: true) {
            try database.execute("""
                CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
                INSERT OR IGNORE INTO meta VALUES ('revision', 1), ('compact_revision', 0);
                CREATE TABLE IF NOT EXISTS kv (
                    key TEXT PRIMARY KEY, value BLOB NOT NULL, create_revision INTEGER NOT NULL,
                    mod_revision INTEGER NOT NULL, lease INTEGER NOT NULL DEFAULT 0);
                CREATE INDEX IF NOT EXISTS kv_lease ON kv(lease);
                CREATE TABLE IF NOT EXISTS leases (
                    id INTEGER PRIMARY KEY AUTOINCREMENT, ttl_seconds INTEGER NOT NULL, expires_at REAL NOT NULL);
                CREATE TABLE IF NOT EXISTS events (
                    sequence INTEGER PRIMARY KEY AUTOINCREMENT, revision INTEGER NOT NULL, key TEXT NOT NULL,
                    kind INTEGER NOT NULL, value BLOB NOT NULL);
                CREATE INDEX IF NOT EXISTS events_revision ON events(revision);
                """)
        }
        return database
    }

    // MARK: Reads

    public func get(_ key: String) async throws -> StoredValue? {
        try await offPool { [self] in try locked {
            try database.transaction(immediate: false) {
                try liveValues(where: "key = ?", [.text(key)]).first
            }
        } }
    }

    public func list(prefix: String) async throws -> (values: [StoredValue], revision: Int64) {
        try await offPool { [self] in try locked {
            try database.transaction(immediate: false) {
                let values = try liveValues(where: "substr(key, 1, length(?1)) = ?1", [.text(prefix)])
                return (values, try meta("revision"))
            }
        } }
    }

    /// The store's current revision.
    public func currentRevision() throws -> Int64 {
        try locked { try meta("revision") }
    }

    // MARK: Leases

    public func grantLease(ttlSeconds: Int64) async throws -> StoreLease {
        try await offPool { [self] in try write { moment in
            let expiration = moment.addingTimeInterval(TimeInterval(ttlSeconds))
            try database.prepare("INSERT INTO leases (ttl_seconds, expires_at) VALUES (?, ?)")
                .run([.integer(ttlSeconds), .real(expiration.timeIntervalSince1970)])
            let id = try database.prepare("SELECT last_insert_rowid()").rows { $0.int64(0) }.first ?? 0
            return StoreLease(id: id, ttlSeconds: ttlSeconds, expiration: expiration)
        } }
    }

    public func keepAlive(lease id: Int64) async throws -> StoreLease {
        try await offPool { [self] in try write { moment in
            let ttl = try database.prepare("SELECT ttl_seconds FROM leases WHERE id = ?").rows([.integer(id)]) { $0.int64(0) }
            guard let ttlSeconds = ttl.first else { throw StoreError.leaseNotFound(id) }
            let expiration = moment.addingTimeInterval(TimeInterval(ttlSeconds))
            try database.prepare("UPDATE leases SET expires_at = ? WHERE id = ?")
                .run([.real(expiration.timeIntervalSince1970), .integer(id)])
            return StoreLease(id: id, ttlSeconds: ttlSeconds, expiration: expiration)
        } }
    }

    public func revokeLease(_ id: Int64) async throws {
        try await offPool { [self] in try write { _ in try removeLease(id) } }
    }

    /// When a lease expires; nil if it no longer exists.
    public func expiration(ofLease id: Int64) async throws -> Date? {
        try await offPool { [self] in try locked {
            try database.prepare("SELECT expires_at FROM leases WHERE id = ? AND expires_at > ?")
                .rows([.integer(id), .real(now().timeIntervalSince1970)]) { Date(timeIntervalSince1970: $0.double(0)) }
                .first
        } }
    }

    // MARK: Writes

    public func createIfAbsent(_ key: String, value: [UInt8], lease: Int64) async throws -> Int64? {
        try await put(key, value: value, lease: lease, ifModRevision: 0)
    }

    public func put(_ key: String, value: [UInt8], lease: Int64, ifModRevision: Int64?) async throws -> Int64? {
        try await offPool { [self] in try write { _ in
            let existing = try liveValues(where: "key = ?", [.text(key)]).first
            if let expected = ifModRevision, (existing?.modRevision ?? 0) != expected { return nil }
            if lease != 0 {
                let found = try database.prepare("SELECT 1 FROM leases WHERE id = ?").rows([.integer(lease)]) { _ in true }
                guard !found.isEmpty else { throw StoreError.leaseNotFound(lease) }
            }
            let revision = try bumpRevision()
            try database.prepare("""
                INSERT INTO kv (key, value, create_revision, mod_revision, lease) VALUES (?1, ?2, ?3, ?3, ?4)
                ON CONFLICT(key) DO UPDATE SET value = ?2, mod_revision = ?3, lease = ?4
                """).run([.text(key), .blob(value), .integer(revision), .integer(lease)])
            try record(.put, key: key, value: value, revision: revision)
            return revision
        } }
    }

    public func delete(_ key: String) async throws -> Bool {
        try await offPool { [self] in try write { _ in
            guard try !liveValues(where: "key = ?", [.text(key)]).isEmpty else { return false }
            let revision = try bumpRevision()
            try database.prepare("DELETE FROM kv WHERE key = ?").run([.text(key)])
            try record(.delete, key: key, value: [], revision: revision)
            return true
        } }
    }

    /// Drops history before `revision`, as etcd's compaction does: watchers that resume
    /// from an earlier revision are told to resync.
    public func compact(revision: Int64) throws {
        try write { _ in try compactHistory(before: revision) }
    }

    // MARK: Watch

    /// Polls the history every `pollInterval`, in the consumer's own task: nothing runs in
    /// the background, and the watch ends when its consumer stops.
    public func watch(prefix: String, fromRevision revision: Int64) -> AsyncThrowingStream<WatchResponse, any Error> {
        let cursor = Mutex((next: max(revision, 1), compacted: false))
        return AsyncThrowingStream(unfolding: { [self] in
            while !Task.isCancelled {
                let (from, compacted) = cursor.withLock { ($0.next, $0.compacted) }
                if compacted { return nil }
                switch try await offPool({ try self.poll(prefix: prefix, from: from) }) {
                case .compacted(let current):
                    cursor.withLock { $0.compacted = true }
                    return .compacted(revision: current)
                case .events(let events, let current):
                    cursor.withLock { $0.next = current + 1 }
                    if !events.isEmpty { return .events(events, revision: current) }
                }
                try? await Task.sleep(for: pollInterval)
            }
            return nil
        })
    }

    /// Reads the changes in `[from, current]`, expiring leases first if any are due.
    func poll(prefix: String, from: Int64) throws -> WatchResponse {
        try locked {
            let moment = now().timeIntervalSince1970
            let due = try database.prepare("SELECT 1 FROM leases WHERE expires_at <= ? LIMIT 1").rows([.real(moment)]) { _ in true }
            if !due.isEmpty {
                try database.transaction(immediate: true) { try sweepExpiredLeases() }
            }
            return try database.transaction(immediate: false) {
                let current = try meta("revision")
                if from < (try meta("compact_revision")) { return .compacted(revision: current) }
                let events = try database.prepare("""
                    SELECT kind, key, value, revision FROM events
                    WHERE revision >= ?1 AND revision <= ?2 AND substr(key, 1, length(?3)) = ?3 ORDER BY sequence
                    """).rows([.integer(from), .integer(current), .text(prefix)]) { row in
                    WatchEvent(kind: row.int64(0) == 0 ? .put : .delete, key: row.text(1), value: row.blob(2), revision: row.int64(3))
                }
                return .events(events, revision: current)
            }
        }
    }

    // MARK: Internals (called with the lock held)

    /// Runs a SQLite call on the store's own queue: its waits (another process holding the
    /// write lock, the busy timeout, the disk) never hold a thread of the Swift concurrency
    /// pool, which on a small machine has one thread a core.
    private func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }

    /// Every use of the database: one at a time, and SQLite's errors turned into the
    /// store's own at this boundary.
    private func locked<T>(_ body: () throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        do {
            return try body()
        } catch let error as SQLiteError {
            throw error.storeError
        }
    }

    /// A write transaction that first expires due leases and afterwards trims history.
    private func write<T>(_ body: (Date) throws -> T) throws -> T {
        try locked {
            try database.transaction(immediate: true) {
                try sweepExpiredLeases()
                let result = try body(now())
                let revision = try meta("revision")
                if revision - historyLimit > (try meta("compact_revision")) {
                    try compactHistory(before: revision - historyLimit)
                }
                return result
            }
        }
    }

    private func liveValues(where condition: String, _ parameters: [SQLiteStatement.Value]) throws -> [StoredValue] {
        let moment = now().timeIntervalSince1970
        return try database.prepare("""
            SELECT key, value, create_revision, mod_revision, lease FROM kv
            WHERE (\(condition)) AND (lease = 0 OR EXISTS (SELECT 1 FROM leases WHERE id = kv.lease AND expires_at > \(moment)))
            ORDER BY key
            """).rows(parameters) { row in
            StoredValue(key: row.text(0), value: row.blob(1), createRevision: row.int64(2),
                        modRevision: row.int64(3), lease: row.int64(4))
        }
    }

    private func meta(_ name: String) throws -> Int64 {
        try database.prepare("SELECT value FROM meta WHERE name = ?").rows([.text(name)]) { $0.int64(0) }.first ?? 0
    }

    private func bumpRevision() throws -> Int64 {
        try database.execute("UPDATE meta SET value = value + 1 WHERE name = 'revision'")
        return try meta("revision")
    }

    private func record(_ kind: WatchEvent.Kind, key: String, value: [UInt8], revision: Int64) throws {
        try database.prepare("INSERT INTO events (revision, key, kind, value) VALUES (?, ?, ?, ?)")
            .run([.integer(revision), .text(key), .integer(kind == .put ? 0 : 1), .blob(value)])
    }

    /// Revokes a lease: its keys go in one revision, as in etcd.
    private func removeLease(_ id: Int64) throws {
        let keys = try database.prepare("SELECT key FROM kv WHERE lease = ? ORDER BY key").rows([.integer(id)]) { $0.text(0) }
        if !keys.isEmpty {
            let revision = try bumpRevision()
            for key in keys {
                try database.prepare("DELETE FROM kv WHERE key = ?").run([.text(key)])
                try record(.delete, key: key, value: [], revision: revision)
            }
        }
        try database.prepare("DELETE FROM leases WHERE id = ?").run([.integer(id)])
    }

    private func sweepExpiredLeases() throws {
        let expired = try database.prepare("SELECT id FROM leases WHERE expires_at <= ? ORDER BY id")
            .rows([.real(now().timeIntervalSince1970)]) { $0.int64(0) }
        for id in expired { try removeLease(id) }
    }

    private func compactHistory(before revision: Int64) throws {
        try database.prepare("DELETE FROM events WHERE revision < ?").run([.integer(revision)])
        try database.prepare("UPDATE meta SET value = max(value, ?) WHERE name = 'compact_revision'").run([.integer(revision)])
    }
}
