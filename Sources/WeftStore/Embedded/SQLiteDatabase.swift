import CSQLite
import Glibc
import Foundation

/// A failed SQLite call: which operation, on which database file, and SQLite's words.
public struct SQLiteError: Error, Sendable, CustomStringConvertible {
    public let operation: String
    public let path: String
    public let code: Int32
    public let message: String

    public init(operation: String, path: String, code: Int32, message: String) {
        self.operation = operation
        self.path = path
        self.code = code
        self.message = message
    }

    public var description: String {
        "\(operation) on lease database \(path): \(message) (SQLite code \(code))"
    }

    /// The disk, not the data: full, read-only, unopenable, an I/O error, no permission.
    /// These pass when the operator fixes the machine; retry them.
    public var isStorageProblem: Bool {
        [SQLITE_READONLY, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_IOERR, SQLITE_PERM, SQLITE_BUSY].contains(code & 0xff)
    }

    /// The store's error for it, as the embedded store throws it: the disk's problems are
    /// the store being unavailable until the disk is fixed; anything else is a file the
    /// store cannot use as it is.
    public var storeError: StoreError {
        isStorageProblem
            ? .unavailable(location: path, reason: "\(description); check the disk holding \(path): free space, a read-only mount, the file's owner and mode")
            : .misconfigured(location: path, reason: "\(description): not a lease database Weft can use; move it away, or choose another --store-file")
    }
}

/// One SQLite connection. Not thread-safe by itself: `EmbeddedStore` serialises access.
final class SQLiteDatabase {
    let path: String
    private var handle: OpaquePointer?

    init(path: String) throws(SQLiteError) {
        self.path = path
        // The database holds the whole cluster's leases: this user's alone. SQLite gives its
        // -wal and -shm files the database file's mode, so creating it 0600 covers them too.
        let created = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if created >= 0 { close(created) }
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let code = sqlite3_open_v2(path, &handle, flags, nil)
        guard code == SQLITE_OK else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(handle)
            handle = nil
            throw SQLiteError(operation: "open", path: path, code: code, message: message)
        }
    }

    deinit {
        sqlite3_close_v2(handle)
    }

    func error(_ operation: String, _ code: Int32) -> SQLiteError {
        SQLiteError(operation: operation, path: path, code: code, message: String(cString: sqlite3_errmsg(handle)))
    }

    /// Runs statements that return no rows.
    func execute(_ sql: String) throws(SQLiteError) {
        let code = sqlite3_exec(handle, sql, nil, nil, nil)
        guard code == SQLITE_OK else { throw error("execute \(sql.prefix(60))", code) }
    }

    /// How long a writer waits for another process's transaction before giving up.
    func setBusyTimeout(milliseconds: Int32) {
        sqlite3_busy_timeout(handle, milliseconds)
    }

    func prepare(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        var statement: OpaquePointer?
        let code = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard code == SQLITE_OK, let statement else { throw error("prepare \(sql.prefix(60))", code) }
        return SQLiteStatement(database: self, statement: statement)
    }

    /// Rows changed by the last statement.
    var changes: Int { Int(sqlite3_changes(handle)) }

    /// Runs `body` in a transaction: `IMMEDIATE` takes the write lock up front, so two
    /// processes never both read and then both write on stale data.
    func transaction<T>(immediate: Bool, _ body: () throws -> T) throws -> T {
        try execute(immediate ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }
}

/// A prepared statement with positional parameters (`?`), stepped row by row.
final class SQLiteStatement {
    private let database: SQLiteDatabase
    private let statement: OpaquePointer

    init(database: SQLiteDatabase, statement: OpaquePointer) {
        self.database = database
        self.statement = statement
    }

    deinit {
        sqlite3_finalize(statement)
    }

    enum Value {
        case integer(Int64)
        case real(Double)
        case text(String)
        case blob([UInt8])
        case null
    }

    func bind(_ values: [Value]) throws(SQLiteError) {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let code: Int32
            switch value {
            case .integer(let number): code = sqlite3_bind_int64(statement, index, number)
            case .real(let number): code = sqlite3_bind_double(statement, index, number)
            case .text(let text): code = sqlite3_bind_text(statement, index, text, -1, weft_sqlite_transient())
            case .blob(let bytes):
                code = bytes.withUnsafeBytes { buffer in
                    sqlite3_bind_blob(statement, index, buffer.baseAddress, Int32(buffer.count), weft_sqlite_transient())
                }
            case .null: code = sqlite3_bind_null(statement, index)
            }
            guard code == SQLITE_OK else { throw database.error("bind parameter \(index)", code) }
        }
    }

    /// Advances to the next row; false when there are no more.
    func step() throws(SQLiteError) -> Bool {
        let code = sqlite3_step(statement)
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw database.error("step", code)
        }
    }

    /// Binds, runs to completion, and ignores any rows.
    func run(_ values: [Value] = []) throws(SQLiteError) {
        try bind(values)
        while try step() {}
    }

    /// Binds and collects every row through `read`.
    func rows<T>(_ values: [Value] = [], _ read: (SQLiteStatement) -> T) throws(SQLiteError) -> [T] {
        try bind(values)
        var result: [T] = []
        while try step() { result.append(read(self)) }
        return result
    }

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }
    func double(_ column: Int32) -> Double { sqlite3_column_double(statement, column) }
    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(statement, column) == SQLITE_NULL }

    func text(_ column: Int32) -> String {
        guard let pointer = sqlite3_column_text(statement, column) else { return "" }
        return String(cString: pointer)
    }

    func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(statement, column))
        guard count > 0, let pointer = sqlite3_column_blob(statement, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }
}
