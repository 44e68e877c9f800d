import CSQLite
import MCPGJSON
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The embedded SQLite driver: the system's libsqlite3. Each call opens its own connection on a thread of its own
/// (read-only: `SQLITE_OPEN_READONLY` and `PRAGMA query_only`), so calls run in parallel and a slow one blocks
/// nobody; a progress handler stops a statement at its deadline or when the call is cancelled.
struct SQLiteDriver: SQLDriver {
    let path: String
    let readOnly: Bool

    var marker: Character { "?" }
    var listTablesSQL: String {
        "SELECT name, type FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
    }
    var tableExistsSQL: String {
        "SELECT 1 FROM sqlite_schema WHERE type IN ('table', 'view') AND name = ?1"
    }
    var describeTableSQL: String {
        "SELECT name, type, \"notnull\" = 0 AS nullable, dflt_value AS \"default\", pk > 0 AS primary_key FROM pragma_table_info(?1) ORDER BY cid"
    }

    init(path: String, readOnly: Bool) throws(QueryError) {
        self.path = path
        self.readOnly = readOnly
        let db = try open()
        sqlite3_close_v2(db)
    }

    private func open() throws(QueryError) -> OpaquePointer {
        var db: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let why = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            if let db { sqlite3_close_v2(db) }
            throw QueryError("cannot open the SQLite database \(path): \(why)")
        }
        if readOnly { sqlite3_exec(db, "PRAGMA query_only = 1", nil, nil, nil) }
        return db
    }

    func check(_ sql: String) async throws(QueryError) {
        let db = try open()
        defer { sqlite3_close_v2(db) }
        var stmt: OpaquePointer?
        // The rest after the first statement, read while the C string is alive.
        let (rc, rest) = sql.withCString { text -> (Int32, String) in
            var tail: UnsafePointer<CChar>?
            let rc = sqlite3_prepare_v2(db, text, -1, &stmt, &tail)
            return (rc, tail.map { String(cString: $0) } ?? "")
        }
        defer { sqlite3_finalize(stmt) }
        guard rc == SQLITE_OK, stmt != nil else { throw QueryError(String(cString: sqlite3_errmsg(db))) }
        if !rest.allSatisfy({ $0.isWhitespace || $0 == ";" }) {
            throw QueryError("one statement per tool (found more after the first)")
        }
    }

    func run(_ sql: String, _ parameters: [JSON], maxRows: Int, timeoutMs: Int) async throws(QueryError) -> QueryResult {
        let stop = StopFlag(deadline: monotonicMs() + timeoutMs)
        let outcome: Result<QueryResult, QueryError> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                startThread {
                    continuation.resume(returning: Result { () throws(QueryError) in
                        try execute(sql, parameters, maxRows: maxRows, timeoutMs: timeoutMs, stop: stop)
                    })
                }
            }
        } onCancel: {
            stop.cancel()
        }
        return try outcome.get()
    }

    private func execute(_ sql: String, _ parameters: [JSON], maxRows: Int, timeoutMs: Int, stop: StopFlag)
        throws(QueryError) -> QueryResult
    {
        let db = try open()
        defer { sqlite3_close_v2(db) }
        sqlite3_busy_timeout(db, Int32(min(timeoutMs, Int(Int32.max))))
        sqlite3_progress_handler(
            db, 1000,
            { raw in Unmanaged<StopFlag>.fromOpaque(raw!).takeUnretainedValue().shouldStop ? 1 : 0 },
            Unmanaged.passUnretained(stop).toOpaque())
        defer { withExtendedLifetime(stop) {} }
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &stmt, nil) == SQLITE_OK, let stmt else {
            throw QueryError(String(cString: sqlite3_errmsg(db)))
        }
        defer { sqlite3_finalize(stmt) }
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        for (i, value) in parameters.enumerated() {
            let n = Int32(i + 1)
            switch value {
            case .null: sqlite3_bind_null(stmt, n)
            case .bool(let b): sqlite3_bind_int64(stmt, n, b ? 1 : 0)
            case .int(let v): sqlite3_bind_int64(stmt, n, v)
            case .double(let d): sqlite3_bind_double(stmt, n, d)
            case .string(let s): sqlite3_bind_text(stmt, n, s, -1, transient)
            default: sqlite3_bind_text(stmt, n, value.text, -1, transient)
            }
        }
        let count = Int(sqlite3_column_count(stmt))
        var names: [String] = []
        var declared: [String?] = []
        for c in 0..<Int32(count) {
            names.append(String(cString: sqlite3_column_name(stmt, c)))
            declared.append(sqlite3_column_decltype(stmt, c).map { String(cString: $0) })
        }
        var seen: [String?] = Array(repeating: nil, count: count)
        var rows: [[JSON]] = []
        var truncated = false
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else {
                if rc == SQLITE_INTERRUPT {
                    if stop.wasCancelled { throw QueryError("cancelled") }
                    throw QueryError("timed out after \(timeoutMs) ms")
                }
                var message = String(cString: sqlite3_errmsg(db))
                if rc & 0xFF == SQLITE_READONLY || message.contains("query_only") {
                    message = "the database is read-only (read_only: true): \(message)"
                }
                throw QueryError(message)
            }
            if rows.count == maxRows {
                truncated = true
                break
            }
            var row: [JSON] = []
            row.reserveCapacity(count)
            for c in 0..<Int32(count) {
                let ci = Int(c)
                switch sqlite3_column_type(stmt, c) {
                case SQLITE_INTEGER:
                    row.append(.int(sqlite3_column_int64(stmt, c)))
                    if seen[ci] == nil { seen[ci] = "INTEGER" }
                case SQLITE_FLOAT:
                    row.append(.double(sqlite3_column_double(stmt, c)))
                    if seen[ci] == nil { seen[ci] = "REAL" }
                case SQLITE_TEXT:
                    let bytes = sqlite3_column_text(stmt, c)
                    let len = Int(sqlite3_column_bytes(stmt, c))
                    row.append(.string(bytes.map { String(decoding: UnsafeBufferPointer(start: $0, count: len), as: UTF8.self) } ?? ""))
                    if seen[ci] == nil { seen[ci] = "TEXT" }
                case SQLITE_BLOB:
                    let len = Int(sqlite3_column_bytes(stmt, c))
                    let raw = sqlite3_column_blob(stmt, c)
                    let bytes = raw.map { Array(UnsafeRawBufferPointer(start: $0, count: len)) } ?? []
                    row.append(.string(base64(bytes)))
                    if seen[ci] == nil { seen[ci] = "BLOB" }
                default:
                    row.append(.null)
                }
            }
            rows.append(row)
        }
        let columns = (0..<count).map { Column(name: names[$0], type: declared[$0] ?? seen[$0] ?? "NULL") }
        let changes = count == 0 ? Int(sqlite3_changes(db)) : nil
        return QueryResult(columns: columns, rows: rows, truncated: truncated, rowsAffected: changes)
    }
}

/// Tells a running statement to stop: at its deadline, or when its call is cancelled.
final class StopFlag: Sendable {
    let deadline: Int
    private let cancelled = Atomic<Bool>(false)
    init(deadline: Int) { self.deadline = deadline }
    func cancel() { cancelled.store(true, ordering: .relaxed) }
    var wasCancelled: Bool { cancelled.load(ordering: .relaxed) }
    var shouldStop: Bool { wasCancelled || monotonicMs() >= deadline }
}

/// Standard base64 (BLOB columns).
func base64(_ bytes: [UInt8]) -> String {
    let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var out: [UInt8] = []
    out.reserveCapacity((bytes.count + 2) / 3 * 4)
    var i = 0
    while i + 2 < bytes.count {
        let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
        out += [table[Int(n >> 18)], table[Int(n >> 12 & 63)], table[Int(n >> 6 & 63)], table[Int(n & 63)]]
        i += 3
    }
    let rest = bytes.count - i
    if rest == 1 {
        let n = UInt32(bytes[i]) << 16
        out += [table[Int(n >> 18)], table[Int(n >> 12 & 63)], 61, 61]
    } else if rest == 2 {
        let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
        out += [table[Int(n >> 18)], table[Int(n >> 12 & 63)], table[Int(n >> 6 & 63)], 61]
    }
    return String(decoding: out, as: UTF8.self)
}

/// Runs `body` on a new detached thread (blocking database calls must not hold a cooperative-pool thread).
func startThread(_ body: @escaping @Sendable () -> Void) {
    final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
    let arg = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(
        &thread, nil,
        { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.body()
            return nil
        }, arg)
    if rc == 0 {
        pthread_detach(thread)
    } else {
        Unmanaged<Box>.fromOpaque(arg).takeRetainedValue().body()
    }
}

func monotonicMs() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}
