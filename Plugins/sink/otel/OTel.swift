#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FoundationEssentials
import MCPGJSON
import PluginKit

/// Sends one OpenTelemetry span per request record of the audit ledger to an OTLP/HTTP receiver (protobuf),
/// in batches, from a bounded buffer, with retries. Span ids come from the record's `trace` (W3C trace context the
/// gateway continued from the client), so the gateway's span joins the client's trace.
struct OTel: SinkPlugin {
    struct Header: Decodable, Sendable {
        var name: String
        var value: String?
        var value_file: String?
        var value_env: String?
    }
    struct Config: Decodable, Sendable {
        var endpoint: String
        var service_name: String?
        var headers: [Header]?
        var batch_size: Int?
        var flush_interval_ms: Int?
        var max_buffer: Int?
        var max_retries: Int?
        var timeout_ms: Int?
    }
    static let name = "otel"
    static let version = "1.0.0"
    static var configSchema: JSON {
        [
            "type": "object", "additionalProperties": false, "required": ["endpoint"],
            "properties": [
                "endpoint": [
                    "type": "string", "pattern": "^https?://[^/]",
                    "description": .string(
                        "Base URL of the OTLP/HTTP receiver (e.g. http://127.0.0.1:4318); spans are POSTed to "
                            + "<endpoint>/v1/traces as application/x-protobuf."),
                ],
                "service_name": [
                    "type": "string", "minLength": 1, "default": "mcpg",
                    "description": "The resource attribute service.name of every span.",
                ],
                "headers": [
                    "type": "array",
                    "description": .string(
                        "Extra request headers (e.g. an API key for a hosted collector). Secret values come from a "
                            + "file or an environment variable, read at startup and never logged."),
                    "items": [
                        "type": "object", "additionalProperties": false, "required": ["name"],
                        "properties": [
                            "name": ["type": "string", "pattern": "^[A-Za-z0-9-]+$", "description": "Header name."],
                            "value": ["type": "string", "description": "The value, inline (not for secrets)."],
                            "value_file": [
                                "type": "string", "format": "path",
                                "description": "File holding the value (trailing newline trimmed); relative to the config file.",
                            ],
                            "value_env": ["type": "string", "minLength": 1, "description": "Environment variable holding the value."],
                        ],
                    ],
                ],
                "batch_size": [
                    "type": "integer", "minimum": 1, "maximum": 10_000, "default": 512,
                    "description": "Spans per request; a full batch is sent at once.",
                ],
                "flush_interval_ms": [
                    "type": "integer", "minimum": 10, "maximum": 600_000, "default": 2000,
                    "description": "Longest time a span waits in the buffer before it is sent.",
                ],
                "max_buffer": [
                    "type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 10_000,
                    "description": .string(
                        "Most spans held while the receiver is slow or down; more are dropped, counted "
                            + "(otel_dropped_total) and logged."),
                ],
                "max_retries": [
                    "type": "integer", "minimum": 0, "maximum": 20, "default": 5,
                    "description": "Retries of a batch on HTTP 429, 5xx or a connection error (backoff 0.5 s doubling, at most 8 s).",
                ],
                "timeout_ms": [
                    "type": "integer", "minimum": 100, "maximum": 120_000, "default": 5000,
                    "description": "Connect and read timeout of one request.",
                ],
            ],
        ]
    }

    let exporter: Exporter

    init(config: Config, host: Host) throws {
        var base = config.endpoint
        while base.hasSuffix("/") { base.removeLast() }
        guard base.hasPrefix("http://") || base.hasPrefix("https://") else {
            throw PluginError.badRequest("otel: endpoint must be an http:// or https:// URL")
        }
        var headers: [(String, String)] = []
        for h in config.headers ?? [] {
            let sources = [h.value != nil, h.value_file != nil, h.value_env != nil].filter { $0 }.count
            guard sources == 1 else {
                throw PluginError.badRequest("otel: header \(h.name) needs exactly one of value, value_file, value_env")
            }
            var value: String
            if let v = h.value {
                value = v
            } else if let file = h.value_file {
                guard let data = try? Data(contentsOf: URL(fileURLWithPath: file)) else {
                    throw PluginError("otel: header \(h.name): cannot read \(file)")
                }
                value = String(decoding: data, as: UTF8.self)
            } else {
                guard let v = getenv(h.value_env!) else {
                    throw PluginError("otel: header \(h.name): environment variable \(h.value_env!) is not set")
                }
                value = String(cString: v)
            }
            while value.hasSuffix("\n") || value.hasSuffix("\r") { value.removeLast() }
            guard !value.isEmpty, value.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7F }) else {
                throw PluginError.badRequest("otel: header \(h.name): the value is empty or has control characters")
            }
            headers.append((h.name, value))
        }
        exporter = Exporter(
            Exporter.Settings(
                url: base + "/v1/traces", headers: headers, serviceName: config.service_name ?? "mcpg",
                batchSize: config.batch_size ?? 512, intervalMs: Int64(config.flush_interval_ms ?? 2000),
                maxBuffer: config.max_buffer ?? 10_000, maxRetries: config.max_retries ?? 5,
                timeoutMs: Int64(config.timeout_ms ?? 5000)),
            host: host)
    }

    func write(_ event: JSON) async throws {
        if let span = Span(record: event) { exporter.add(span) }
    }
}

@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { PluginExport.descriptor(for: OTel.self) }
