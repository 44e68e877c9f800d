import FoundationEssentials
import Logging
import MCPGJSON
import NIOCore
import NIOSSL
import PluginKit
import PostgresNIO

#if canImport(Glibc)
import Glibc
#endif

extension SQL {
    /// The PostgreSQL driver for `config`.
    static func postgres(_ config: Config, host: Host) throws -> any SQLDriver {
        guard let database = config.database else { throw PluginError(code: -32602, "/database: required for driver postgres") }
        guard let user = config.user else { throw PluginError(code: -32602, "/user: required for driver postgres") }
        var password: String?
        if let file = config.password_file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw PluginError(code: -32602, "/password_file: cannot read \(file)")
            }
            var text = String(decoding: data, as: UTF8.self)
            while text.last == "\n" || text.last == "\r" { text.removeLast() }
            password = text
        } else if let name = config.password_env {
            guard let value = getenv(name) else {
                throw PluginError(code: -32602, "/password_env: the environment variable \(name) is not set")
            }
            password = String(cString: value)
        }
        let tls: PostgresClient.Configuration.TLS
        switch config.tls ?? "disable" {
        case "disable": tls = .disable
        case "prefer": tls = .prefer(.makeClientConfiguration())
        case "require": tls = .require(.makeClientConfiguration())
        default: throw PluginError(code: -32602, "/tls: must be disable, prefer or require")
        }
        let pg = PostgresClient.Configuration(
            host: config.host ?? "127.0.0.1", port: config.port ?? 5432, username: user, password: password,
            database: database, tls: tls)
        return PostgresDriver(configuration: pg, readOnly: config.read_only ?? true)
    }
}

/// PostgreSQL through a postgres-nio connection pool. Each call is one transaction on a pooled connection:
/// `BEGIN READ ONLY` (or `BEGIN`), `SET LOCAL statement_timeout`, the statement with its arguments bound as `$n`
/// parameters, `COMMIT` (`ROLLBACK` after an error). Statements are not checked against the server at load:
/// the database may be down when the gateway starts; the pool connects on first use.
final class PostgresDriver: SQLDriver {
    let client: PostgresClient
    let readOnly: Bool
    let runner: Task<Void, Never>
    let logger: Logger

    var marker: Character { "$" }
    var listTablesSQL: String {
        """
        SELECT table_schema || '.' || table_name AS name, lower(table_type) AS type FROM information_schema.tables
        WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY table_schema, table_name
        """
    }
    var tableExistsSQL: String {
        """
        SELECT 1 FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
        AND (table_name = $1 OR table_schema || '.' || table_name = $1)
        """
    }
    var describeTableSQL: String {
        """
        SELECT c.column_name AS name, c.data_type AS type, c.is_nullable = 'YES' AS nullable, c.column_default AS "default",
        EXISTS (SELECT 1 FROM information_schema.key_column_usage k JOIN information_schema.table_constraints t
                ON t.constraint_name = k.constraint_name AND t.table_schema = k.table_schema
                WHERE t.constraint_type = 'PRIMARY KEY' AND k.table_schema = c.table_schema
                AND k.table_name = c.table_name AND k.column_name = c.column_name) AS primary_key
        FROM information_schema.columns c
        WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema')
        AND (c.table_name = $1 OR c.table_schema || '.' || c.table_name = $1)
        ORDER BY c.table_schema, c.ordinal_position
        """
    }

    init(configuration: PostgresClient.Configuration, readOnly: Bool) {
        let logger = Logger(label: "mcpg.sql.postgres", factory: { _ in SwiftLogNoOpLogHandler() })
        self.logger = logger
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        self.readOnly = readOnly
        runner = Task { await client.run() }
    }

    deinit { runner.cancel() }

    func check(_ sql: String) async throws(QueryError) {}

    func run(_ sql: String, _ parameters: [JSON], maxRows: Int, timeoutMs: Int) async throws(QueryError) -> QueryResult {
        do {
            return try await client.withConnection { conn in
                try await conn.query(PostgresQuery(unsafeSQL: self.readOnly ? "BEGIN READ ONLY" : "BEGIN"), logger: self.logger)
                do {
                    // An integer from the config, not an argument.
                    try await conn.query(PostgresQuery(unsafeSQL: "SET LOCAL statement_timeout = \(timeoutMs)"), logger: self.logger)
                    var binds = PostgresBindings(capacity: parameters.count)
                    for value in parameters {
                        switch value {
                        case .null: binds.appendNull()
                        case .bool(let b): try binds.append(b)
                        case .int(let i): try binds.append(i)
                        case .double(let d): try binds.append(d)
                        case .string(let s): try binds.append(s)
                        default: try binds.append(value.text)
                        }
                    }
                    let rows = try await conn.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: self.logger)
                    let columns = rows.columns.map {
                        Column(name: $0.name, type: $0.dataType.knownSQLName ?? $0.dataType.description)
                    }
                    var out: [[JSON]] = []
                    var truncated = false
                    // Rows past the limit are read and dropped, so the transaction ends cleanly.
                    for try await row in rows {
                        if out.count == maxRows {
                            truncated = true
                            continue
                        }
                        out.append(row.map(Self.value))
                    }
                    try await conn.query("COMMIT", logger: self.logger)
                    return QueryResult(columns: columns, rows: out, truncated: truncated, rowsAffected: nil)
                } catch {
                    _ = try? await conn.query("ROLLBACK", logger: self.logger)
                    throw error
                }
            }
        } catch is CancellationError {
            throw QueryError("cancelled")
        } catch let e as PSQLError {
            let state = e.serverInfo?[.sqlState]
            let message = e.serverInfo?[.message] ?? "the database is unreachable (\(e.code))"
            if state == "57014" { throw QueryError("timed out after \(timeoutMs) ms") }
            if state == "25006" { throw QueryError("the database is read-only (read_only: true): \(message)") }
            throw QueryError(message)
        } catch {
            throw QueryError("database error: \(error)")
        }
    }

    /// A cell as JSON: numbers and booleans as such, text as strings, timestamps in ISO 8601, bytea in base64.
    static func value(_ cell: PostgresCell) -> JSON {
        guard cell.bytes != nil else { return .null }
        do {
            switch cell.dataType {
            case .bool: return .bool(try cell.decode(Bool.self))
            case .int2, .int4, .int8: return .int(Int64(try cell.decode(Int.self)))
            case .float4, .float8: return .double(try cell.decode(Double.self))
            case .numeric:
                let decimal = try cell.decode(Decimal.self)
                let text = "\(decimal)"
                return Double(text).map(JSON.double) ?? .string(text)
            case .timestamp, .timestamptz, .date:
                return .string(try cell.decode(Date.self).formatted(.iso8601))
            case .bytea:
                return .string(base64(cell.bytes.map { Array($0.readableBytesView) } ?? []))
            case .json, .jsonb:
                let text = try cell.decode(String.self)
                return (try? JSON.parse(text)) ?? .string(text)
            default:
                return .string(try cell.decode(String.self))
            }
        } catch {
            let bytes = cell.bytes.map { Array($0.readableBytesView) } ?? []
            return .string(base64(bytes))
        }
    }
}
