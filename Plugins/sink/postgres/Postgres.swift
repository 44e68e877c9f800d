#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging
import MCPGJSON
import NIOCore
import NIOSSL
import PluginKit
import PostgresNIO
import SinkBuffer
import Synchronization

/// Inserts ledger records into a PostgreSQL table through postgres-nio, in batches: one multi-row parameterized
/// `INSERT … ON CONFLICT (seq) DO NOTHING` per batch, so a batch retried after a lost answer never duplicates.
///
/// Columns: `seq bigint primary key, ts timestamptz, kind text, correlation_id text, type text, tool text,
/// principal text, decision text, status text, record jsonb` (`create_table: true` creates the table if missing).
/// Records wait in a bounded buffer while the database is slow or down; the connection is re-made with backoff;
/// what the buffer cannot hold is dropped, counted (`postgres_dropped_total`) and logged.
struct PostgresSink: SinkPlugin {
    struct Config: Decodable, Sendable {
        var host: String?
        var port: Int?
        var database: String
        var user: String
        var passwordFile: String?
        var passwordEnv: String?
        var table: String?
        var createTable: Bool?
        var tls: String?
        var caFile: String?
        var batchSize: Int?
        var batchIntervalMs: Int?
        var buffer: Int?
        var connectTimeoutMs: Int?

        enum CodingKeys: String, CodingKey {
            case host, port, database, user, table, tls, buffer
            case passwordFile = "password_file"
            case passwordEnv = "password_env"
            case createTable = "create_table"
            case caFile = "ca_file"
            case batchSize = "batch_size"
            case batchIntervalMs = "batch_interval_ms"
            case connectTimeoutMs = "connect_timeout_ms"
        }
    }

    static let name = "postgres"
    static let version = "1.0.0"
    static var configSchema: JSON {
        func int(_ min: Int64, _ max: Int64, _ d: String) -> JSON {
            ["type": "integer", "minimum": .int(min), "maximum": .int(max), "description": .string(d)]
        }
        return [
            "type": "object", "additionalProperties": false, "required": ["database", "user"],
            "properties": [
                "host": ["type": "string", "minLength": 1, "description": "Server host name or address (default 127.0.0.1)."],
                "port": int(1, 65535, "Server port (default 5432)."),
                "database": ["type": "string", "minLength": 1, "description": "Database name."],
                "user": ["type": "string", "minLength": 1, "description": "User name."],
                "password_file": [
                    "type": "string", "minLength": 1, "format": "path",
                    "description": "File holding the password (trailing newlines ignored). Without a password only trust auth works.",
                ],
                "password_env": [
                    "type": "string", "minLength": 1,
                    "description": "Environment variable holding the password (instead of password_file).",
                ],
                "table": [
                    "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,62}(\\.[A-Za-z_][A-Za-z0-9_]{0,62})?$",
                    "description": "Table, optionally schema-qualified (default mcpg_audit); letters, digits and _ only.",
                ],
                "create_table": [
                    "type": "boolean",
                    "description": "Create the table (CREATE TABLE IF NOT EXISTS) on each connect (default false).",
                ],
                "tls": [
                    "enum": ["disable", "require"],
                    "description": "disable (default): plain TCP; require: TLS with certificate verification, or fail.",
                ],
                "ca_file": [
                    "type": "string", "minLength": 1, "format": "path",
                    "description": "With tls: require, PEM CA certificates to trust instead of the system's.",
                ],
                "batch_size": int(1, 1000, "Most records in one INSERT (default 100)."),
                "batch_interval_ms": int(1, 600_000, "Longest a record waits for its batch to fill (default 1000)."),
                "buffer": int(1, 1_000_000, "Records held while the database is slow or down (default 10000); more are dropped and counted."),
                "connect_timeout_ms": int(1, 600_000, "Deadline of one connection attempt (default 5000)."),
            ],
        ]
    }

    let sender: PostgresSender

    init(config: Config, host: Host) throws {
        sender = try PostgresSender(config: config, log: host)
    }

    func write(_ event: JSON) async throws {
        sender.core.sender.buffer.append(event)
    }
}

/// Owns the insert loop; stops it (flushing for up to 3 s) when released.
final class PostgresSender: Sendable {
    let core: Core

    init(config: PostgresSink.Config, log: Host) throws {
        let table = config.table ?? "mcpg_audit"
        guard let quoted = Self.quotedIdentifier(table) else {
            throw PluginError(code: -32602, "postgres: table \(table) is not a (schema.)name of letters, digits and _")
        }
        let password: String?
        do {
            password = try readSecret(plugin: "postgres", key: "password", file: config.passwordFile, env: config.passwordEnv)
                .map { String(decoding: $0, as: UTF8.self) }
        } catch let e as SecretError {
            throw PluginError(code: -32602, e.description)
        }
        let tls: PostgresConnection.Configuration.TLS
        switch config.tls ?? "disable" {
        case "disable":
            guard config.caFile == nil else { throw PluginError(code: -32602, "postgres: ca_file needs tls: require") }
            tls = .disable
        case "require":
            var t = TLSConfiguration.makeClientConfiguration()
            if let caFile = config.caFile {
                let certificates = (try? NIOSSLCertificate.fromPEMFile(caFile)) ?? []
                guard !certificates.isEmpty else {
                    throw PluginError(code: -32602, "postgres: ca_file \(caFile): no PEM certificate could be read")
                }
                t.trustRoots = .certificates(certificates)
            }
            do {
                tls = .require(try NIOSSLContext(configuration: t))
            } catch {
                throw PluginError(code: -32602, "postgres: TLS setup failed: \(error)")
            }
        default:
            throw PluginError(code: -32602, "postgres: tls must be disable or require")
        }
        var pg = PostgresConnection.Configuration(
            host: config.host ?? "127.0.0.1", port: config.port ?? 5432, username: config.user, password: password,
            database: config.database, tls: tls)
        pg.options.connectTimeout = .milliseconds(Int64(config.connectTimeoutMs ?? 5000))
        core = Core(
            pg: pg, table: quoted, createTable: config.createTable ?? false, batchSize: config.batchSize ?? 100,
            intervalMs: Int64(config.batchIntervalMs ?? 1000), target: "\(config.host ?? "127.0.0.1"):\(config.port ?? 5432)/\(config.database)",
            buffer: RecordBuffer(capacity: config.buffer ?? 10_000), log: log)
        let c = core
        Task.detached { await c.run() }
    }

    deinit { core.sender.stopAndWait() }

    /// `name` or `schema.name` as double-quoted SQL identifiers; nil unless each part is `[A-Za-z_][A-Za-z0-9_]*`
    /// of at most 63 bytes (so nothing in it needs escaping).
    static func quotedIdentifier(_ name: String) -> String? {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count) else { return nil }
        for p in parts {
            guard let first = p.utf8.first, p.utf8.count <= 63,
                first == UInt8(ascii: "_") || (first | 0x20 >= UInt8(ascii: "a") && first | 0x20 <= UInt8(ascii: "z")),
                p.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || ($0 | 0x20 >= UInt8(ascii: "a") && $0 | 0x20 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) })
            else { return nil }
        }
        return parts.map { "\"\($0)\"" }.joined(separator: ".")
    }

    /// The insert loop and what it shares with the plugin.
    final class Core: Sendable {
        static let columns = "seq, ts, kind, correlation_id, type, tool, principal, decision, status, record"

        let pg: PostgresConnection.Configuration
        let table: String
        let createTable: Bool
        let target: String
        let sender: BatchSender<JSON>
        let log: Host
        let logger = Logger(label: "mcpg.sink.postgres", factory: { _ in SwiftLogNoOpLogHandler() })

        init(pg: PostgresConnection.Configuration, table: String, createTable: Bool, batchSize: Int, intervalMs: Int64,
             target: String, buffer: RecordBuffer<JSON>, log: Host) {
            self.pg = pg
            self.table = table
            self.createTable = createTable
            self.target = target
            sender = BatchSender(buffer: buffer, batchSize: batchSize, intervalMs: intervalMs)
            self.log = log
        }

        /// Inserts batches until stopped: a lost connection keeps the batch and reconnects with backoff (the
        /// buffer takes what arrives meanwhile); an insert the database refuses three times is dropped.
        func run() async {
            var connection: PostgresConnection?
            var failures = 0
            var down = false
            await sender.run(
                backoff: Backoff(initialMs: 100, maximumMs: 10_000),
                deliver: { batch in
                    do {
                        if connection == nil || connection!.isClosed {
                            let c = try await PostgresConnection.connect(configuration: pg, id: 1, logger: logger)
                            connection = c
                            if createTable { try await c.query(PostgresQuery(unsafeSQL: createSQL()), logger: logger) }
                            if down { log.log(.info, "postgres: connected", ["target": target]) }
                            down = false
                        }
                        try await connection!.query(insert(batch), logger: logger)
                        failures = 0
                        return .delivered
                    } catch {
                        let reason = Self.describe(error)
                        if connection?.isClosed ?? true {
                            connection = nil
                            if !down {
                                log.log(.warning, "postgres: database unreachable; buffering", ["target": target, "error": reason])
                                down = true
                            }
                            return .retry(afterMs: nil)
                        }
                        failures += 1
                        guard failures >= 3 else { return .retry(afterMs: nil) }
                        failures = 0
                        log.log(.error, "postgres: insert failed 3 times; batch dropped",
                            ["target": target, "error": reason, "records": String(batch.count)])
                        return .dropped
                    }
                },
                reportDrops: reportDrops,
                finish: {
                    if let connection { connection.close().whenComplete { _ in } }
                })
        }

        func createSQL() -> String {
            "CREATE TABLE IF NOT EXISTS \(table) (seq bigint PRIMARY KEY, ts timestamptz, kind text, "
                + "correlation_id text, type text, tool text, principal text, decision text, status text, "
                + "record jsonb NOT NULL)"
        }

        /// One multi-row INSERT: the SQL holds only the validated table name and `$n` placeholders; every value
        /// is a bound parameter.
        func insert(_ batch: [JSON]) -> PostgresQuery {
            var sql = "INSERT INTO \(table) (\(Self.columns)) VALUES "
            var binds = PostgresBindings(capacity: batch.count * 10)
            for (i, record) in batch.enumerated() {
                let b = i * 10
                if i > 0 { sql += ", " }
                sql += "($\(b + 1), $\(b + 2)::timestamptz, $\(b + 3), $\(b + 4), $\(b + 5), $\(b + 6), $\(b + 7), "
                    + "$\(b + 8), $\(b + 9), $\(b + 10)::jsonb)"
                let row = Row(record)
                binds.append(row.seq)
                binds.append(row.ts)
                binds.append(row.kind)
                binds.append(row.correlationID)
                binds.append(row.type)
                binds.append(row.tool)
                binds.append(row.principal)
                binds.append(row.decision)
                binds.append(row.status)
                binds.append(row.record)
            }
            sql += " ON CONFLICT (seq) DO NOTHING"
            return PostgresQuery(unsafeSQL: sql, binds: binds)
        }

        func reportDrops() -> Bool {
            let buffer = sender.buffer
            let n = buffer.takeUnreportedDrops()
            guard n > 0 else { return false }
            log.metric(.counter, "dropped_total", Double(n))
            log.log(.warning, "postgres: dropped records (buffer full or insert failed)",
                ["dropped": String(n), "dropped_total": String(buffer.dropped)])
            return true
        }

        static func describe(_ error: any Error) -> String {
            if let e = error as? PSQLError {
                var s = "\(e.code)"
                if let m = e.serverInfo?[.message] { s += ": " + m }
                if let c = e.serverInfo?[.sqlState] { s += " (SQLSTATE \(c))" }
                if e.serverInfo == nil, let u = e.underlying { s += ": \(u)" }
                return s.count > 300 ? String(s.prefix(300)) : s
            }
            let text = "\(error)"
            return text.count > 200 ? String(text.prefix(200)) : text
        }
    }
}

/// The column values of one record. Text columns lose NUL characters (PostgreSQL text cannot hold them) and
/// `\u0000` escapes in the jsonb text become `\ufffd` (jsonb refuses them); the ledger keeps the original.
struct Row {
    var seq: Int64
    var ts: String?
    var kind: String
    var correlationID: String?
    var type: String?
    var tool: String?
    var principal: String?
    var decision: String?
    var status: String?
    var record: String

    init(_ record: JSON) {
        let o = record.objectValue ?? JSONObject()
        seq = o["seq"]?.intValue ?? 0
        ts = o["ts"]?.stringValue
        kind = "record"
        for m in o where !["seq", "ts", "prev", "hash"].contains(m.key) {
            kind = m.key
            break
        }
        let ev = o["event"]?.objectValue
        func text(_ v: JSON?) -> String? { v?.stringValue.map { $0.contains("\0") ? $0.filter { $0 != "\0" } : $0 } }
        correlationID = text(ev?["id"])
        type = text(ev?["type"])
        tool = text(ev?["tool"])
        principal = text(ev?["principal"]?["id"])
        if let d = ev?["decision"]?.objectValue {
            decision = text(d["effect"]) ?? d["allow"]?.boolValue.map { $0 ? "allow" : "deny" }
        }
        status = text(ev?["outcome"]?["status"])
        self.record = Self.jsonbSafe(record.serialized())
    }

    /// Replaces each `\u0000` escape (not an escaped backslash followed by `u0000`) with `\ufffd`.
    static func jsonbSafe(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\\"), i + 1 < bytes.count {
                if bytes[i + 1] == UInt8(ascii: "u"), i + 5 < bytes.count, Array(bytes[i + 2...i + 5]) == Array("0000".utf8) {
                    out.append(contentsOf: "\\ufffd".utf8)
                    i += 6
                    continue
                }
                out.append(b)
                out.append(bytes[i + 1])
                i += 2
                continue
            }
            out.append(b)
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}

@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { PluginExport.descriptor(for: PostgresSink.self) }
