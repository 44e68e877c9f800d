#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import AsyncHTTPClient
import CSodium
import FoundationEssentials
import MCPGJSON
import NIOCore
import NIOHTTP1
import NIOSSL
import PluginKit
import SinkBuffer
import Synchronization

/// POSTs ledger records to an HTTP(S) endpoint in batches: a JSON array, or NDJSON (one record per line).
///
/// A batch goes out when `batch_size` records are waiting or `batch_interval_ms` has passed since the last one.
/// Connection errors, timeouts, 429 and 5xx are retried with exponential backoff and jitter (429/503 wait the
/// `Retry-After` seconds when given) up to `max_retries` times; any other 4xx is logged and the batch dropped.
/// Records wait in a bounded buffer; beyond it they are dropped, counted (`webhook_dropped_total`) and logged.
/// With a secret, each request carries `X-MCPG-Timestamp: <unix seconds>` and
/// `X-MCPG-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
struct Webhook: SinkPlugin {
    struct Config: Decodable, Sendable {
        struct TLS: Decodable, Sendable {
            var caFile: String?
            enum CodingKeys: String, CodingKey { case caFile = "ca_file" }
        }
        var url: String
        var format: String?
        var batchSize: Int?
        var batchIntervalMs: Int?
        var buffer: Int?
        var timeoutMs: Int?
        var maxRetries: Int?
        var retryInitialMs: Int?
        var retryMaxMs: Int?
        var headers: [String: String]?
        var secretFile: String?
        var secretEnv: String?
        var tls: TLS?

        enum CodingKeys: String, CodingKey {
            case url, format, buffer, headers, tls
            case batchSize = "batch_size"
            case batchIntervalMs = "batch_interval_ms"
            case timeoutMs = "timeout_ms"
            case maxRetries = "max_retries"
            case retryInitialMs = "retry_initial_ms"
            case retryMaxMs = "retry_max_ms"
            case secretFile = "secret_file"
            case secretEnv = "secret_env"
        }
    }

    static let name = "webhook"
    static let version = "1.0.0"
    static var configSchema: JSON {
        func int(_ min: Int64, _ max: Int64, _ d: String) -> JSON {
            ["type": "integer", "minimum": .int(min), "maximum": .int(max), "description": .string(d)]
        }
        return [
            "type": "object", "additionalProperties": false, "required": ["url"],
            "properties": [
                "url": [
                    "type": "string", "pattern": "^https?://",
                    "description": "Endpoint the batches are POSTed to (http:// or https://).",
                ],
                "format": [
                    "enum": ["json", "ndjson"],
                    "description": .string(
                        "Body: json (default) is a JSON array of records (application/json); ndjson is one record "
                            + "per line (application/x-ndjson)."),
                ],
                "batch_size": int(1, 1000, "Most records in one request (default 100); a full batch goes out at once."),
                "batch_interval_ms": int(1, 600_000, "Longest a record waits for its batch to fill (default 1000)."),
                "buffer": int(1, 1_000_000, "Records held while the endpoint is slow or down (default 10000); more are dropped and counted."),
                "timeout_ms": int(1, 600_000, "Deadline of one request, connect to last byte (default 5000)."),
                "max_retries": int(0, 1000, "Retries of one batch after connection errors, timeouts, 429 and 5xx before it is dropped and counted (default 20)."),
                "retry_initial_ms": int(1, 600_000, "First retry delay bound; it doubles per retry, with full jitter (default 200)."),
                "retry_max_ms": int(1, 3_600_000, "Largest retry delay (default 30000); also caps a Retry-After."),
                "headers": [
                    "type": "object", "additionalProperties": ["type": "string"],
                    "description": .string(
                        "Static headers added to every request (not Content-Type, Content-Length, Host or X-MCPG-*). "
                            + "They are not logged, but are not secret storage either: put credentials in a header only "
                            + "if the config file is protected."),
                ],
                "secret_file": [
                    "type": "string", "minLength": 1, "format": "path",
                    "description": "File holding the HMAC-SHA256 signing secret (trailing newlines ignored); enables X-MCPG-Signature.",
                ],
                "secret_env": [
                    "type": "string", "minLength": 1,
                    "description": "Environment variable holding the signing secret (instead of secret_file).",
                ],
                "tls": [
                    "type": "object", "additionalProperties": false,
                    "description": "TLS settings for an https url (the system's trust store by default).",
                    "properties": [
                        "ca_file": [
                            "type": "string", "minLength": 1, "format": "path",
                            "description": "PEM file of the CA certificates to trust instead of the system's.",
                        ]
                    ],
                ],
            ],
        ]
    }

    let sender: WebhookSender

    init(config: Config, host: Host) throws {
        sender = try WebhookSender(config: config, log: host)
    }

    func write(_ event: JSON) async throws {
        sender.core.sender.buffer.append(event.serialized())
    }
}

/// Owns the delivery loop and the HTTP client; stops both (flushing for up to 3 s) when released.
final class WebhookSender: Sendable {
    let core: Core

    init(config: Webhook.Config, log: Host) throws {
        guard config.url.hasPrefix("http://") || config.url.hasPrefix("https://") else {
            throw PluginError(code: -32602, "webhook: url must start with http:// or https://")
        }
        let secret: [UInt8]?
        do {
            secret = try readSecret(plugin: "webhook", key: "secret", file: config.secretFile, env: config.secretEnv)
        } catch let e as SecretError {
            throw PluginError(code: -32602, e.description)
        }
        var headers = HTTPHeaders()
        for (name, value) in (config.headers ?? [:]).sorted(by: { $0.key < $1.key }) {
            let lower = name.lowercased()
            guard !["content-type", "content-length", "host"].contains(lower), !lower.hasPrefix("x-mcpg-") else {
                throw PluginError(code: -32602, "webhook: headers: \(name) is set by the plugin")
            }
            guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ":") }),
                !value.utf8.contains(where: { $0 == 10 || $0 == 13 || $0 == 0 })
            else { throw PluginError(code: -32602, "webhook: headers: \(name) is not a valid header") }
            headers.add(name: name, value: value)
        }
        let ndjson = config.format == "ndjson"
        headers.add(name: "Content-Type", value: ndjson ? "application/x-ndjson" : "application/json")
        headers.add(name: "User-Agent", value: "mcpg-webhook/\(Webhook.version)")

        var tls: TLSConfiguration?
        if config.url.hasPrefix("https://") {
            var t = TLSConfiguration.makeClientConfiguration()
            if let caFile = config.tls?.caFile {
                let certificates = (try? NIOSSLCertificate.fromPEMFile(caFile)) ?? []
                guard !certificates.isEmpty else {
                    throw PluginError(code: -32602, "webhook: tls.ca_file \(caFile): no PEM certificate could be read")
                }
                t.trustRoots = .certificates(certificates)
            }
            tls = t
        } else if config.tls != nil {
            throw PluginError(code: -32602, "webhook: tls is set but url is not https")
        }
        let timeout = config.timeoutMs ?? 5000
        var pool = HTTPClient.Configuration.ConnectionPool()
        pool.retryConnectionEstablishment = false
        let httpConfig = HTTPClient.Configuration(
            tlsConfiguration: tls, redirectConfiguration: .disallow,
            timeout: .init(connect: .milliseconds(Int64(timeout)), read: .milliseconds(Int64(timeout))),
            connectionPool: pool, decompression: .disabled)
        let settings = Core.Settings(
            url: config.url, ndjson: ndjson, batchSize: config.batchSize ?? 100,
            intervalMs: Int64(config.batchIntervalMs ?? 1000), timeoutMs: Int64(timeout),
            maxRetries: config.maxRetries ?? 20, retryInitialMs: config.retryInitialMs ?? 200,
            retryMaxMs: config.retryMaxMs ?? 30_000, headers: headers, secret: secret)
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: httpConfig)
        core = Core(settings: settings, http: http, buffer: RecordBuffer(capacity: config.buffer ?? 10_000), log: log)
        let c = core
        Task.detached { await c.run() }
    }

    deinit {
        core.sender.stopAndWait()
        core.http.shutdown { _ in }
    }

    /// The delivery loop and what it shares with the plugin.
    final class Core: Sendable {
        struct Settings: Sendable {
            let url: String
            let ndjson: Bool
            let batchSize: Int
            let intervalMs: Int64
            let timeoutMs: Int64
            let maxRetries: Int
            let retryInitialMs: Int
            let retryMaxMs: Int
            let headers: HTTPHeaders
            let secret: [UInt8]?
        }

        enum Result {
            case delivered
            case rejected(String)
            case retry(afterMs: Int?, reason: String)
        }

        let settings: Settings
        let http: HTTPClient
        let sender: BatchSender<[UInt8]>
        let log: Host

        init(settings: Settings, http: HTTPClient, buffer: RecordBuffer<[UInt8]>, log: Host) {
            self.settings = settings
            self.http = http
            sender = BatchSender(buffer: buffer, batchSize: settings.batchSize, intervalMs: settings.intervalMs)
            self.log = log
        }

        /// Posts batches until stopped: a refused batch is dropped; a failed one is retried with backoff (or after
        /// the endpoint's Retry-After) up to `maxRetries` times, then dropped.
        func run() async {
            var retries = 0
            var failing = false
            await sender.run(
                backoff: Backoff(initialMs: settings.retryInitialMs, maximumMs: settings.retryMaxMs),
                deliver: { batch in
                    switch await post(batch) {
                    case .delivered:
                        if failing { log.log(.info, "webhook: delivering again", ["url": settings.url]) }
                        failing = false
                        retries = 0
                        return .delivered
                    case .rejected(let reason):
                        log.log(.error, "webhook: batch refused by the endpoint; dropped",
                            ["url": settings.url, "reason": reason, "records": String(batch.count)])
                        log.metric(.counter, "rejected_total", Double(batch.count))
                        retries = 0
                        return .dropped
                    case .retry(let afterMs, let reason):
                        retries += 1
                        if retries > settings.maxRetries {
                            log.log(.error, "webhook: batch dropped after retries",
                                ["url": settings.url, "reason": reason, "records": String(batch.count),
                                 "retries": String(settings.maxRetries)])
                            retries = 0
                            return .dropped
                        }
                        if !failing {
                            log.log(.warning, "webhook: delivery failed; retrying with backoff",
                                ["url": settings.url, "reason": reason])
                            failing = true
                        }
                        return .retry(afterMs: afterMs)
                    }
                },
                reportDrops: reportDrops)
        }

        func reportDrops() -> Bool {
            let buffer = sender.buffer
            let n = buffer.takeUnreportedDrops()
            guard n > 0 else { return false }
            log.metric(.counter, "dropped_total", Double(n))
            log.log(.warning, "webhook: dropped records (buffer full, refused, or retries exhausted)",
                ["dropped": String(n), "dropped_total": String(buffer.dropped)])
            return true
        }

        func body(of batch: [[UInt8]]) -> [UInt8] {
            var body: [UInt8] = []
            body.reserveCapacity(batch.reduce(2) { $0 + $1.count + 1 })
            if settings.ndjson {
                for r in batch {
                    body.append(contentsOf: r)
                    body.append(0x0A)
                }
            } else {
                body.append(UInt8(ascii: "["))
                for (i, r) in batch.enumerated() {
                    if i > 0 { body.append(UInt8(ascii: ",")) }
                    body.append(contentsOf: r)
                }
                body.append(UInt8(ascii: "]"))
            }
            return body
        }

        func post(_ batch: [[UInt8]]) async -> Result {
            let body = body(of: batch)
            var request = HTTPClientRequest(url: settings.url)
            request.method = .POST
            request.headers = settings.headers
            if let secret = settings.secret {
                let ts = String(UTCTimestamp.nowSeconds())
                request.headers.add(name: "X-MCPG-Timestamp", value: ts)
                request.headers.add(name: "X-MCPG-Signature", value: "v1=" + signature(secret: secret, timestamp: ts, body: body))
            }
            request.body = .bytes(body)
            do {
                let response = try await http.execute(request, timeout: .milliseconds(settings.timeoutMs))
                _ = try? await response.body.collect(upTo: 64 * 1024)
                let code = Int(response.status.code)
                switch code {
                case 200..<300: return .delivered
                case 429, 500..<600, 408:
                    return .retry(afterMs: Self.retryAfterMs(response.headers.first(name: "Retry-After")),
                        reason: "HTTP \(code)")
                default: return .rejected("HTTP \(code)")
                }
            } catch {
                return .retry(afterMs: nil, reason: Self.describe(error))
            }
        }

        /// `Retry-After` as delay-seconds (RFC 9110 §10.2.3); an HTTP-date falls back to the backoff.
        static func retryAfterMs(_ value: String?) -> Int? {
            guard let value, let s = Int(value.filter { $0 != " " && $0 != "\t" }), s >= 0 else { return nil }
            return min(s, 3600) * 1000
        }

        static func describe(_ error: any Error) -> String {
            if let e = error as? HTTPClientError {
                switch e {
                case .deadlineExceeded, .readTimeout, .writeTimeout, .connectTimeout, .tlsHandshakeTimeout:
                    return "timed out"
                case .remoteConnectionClosed: return "connection closed before the answer"
                default: return "\(e)"
                }
            }
            let text = "\(error)"
            return text.count > 200 ? String(text.prefix(200)) : text
        }
    }
}

/// Lowercase hex of HMAC-SHA256(secret, "<timestamp>.<body>").
func signature(secret: [UInt8], timestamp: String, body: [UInt8]) -> String {
    var state = crypto_auth_hmacsha256_state()
    var mac = [UInt8](repeating: 0, count: Int(crypto_auth_hmacsha256_BYTES))
    secret.withUnsafeBufferPointer { k in _ = crypto_auth_hmacsha256_init(&state, k.baseAddress!, k.count) }
    let prefix = Array((timestamp + ".").utf8)
    prefix.withUnsafeBufferPointer { p in _ = crypto_auth_hmacsha256_update(&state, p.baseAddress!, UInt64(p.count)) }
    body.withUnsafeBufferPointer { b in _ = crypto_auth_hmacsha256_update(&state, b.baseAddress!, UInt64(b.count)) }
    _ = crypto_auth_hmacsha256_final(&state, &mac)
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(mac.count * 2)
    for b in mac {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 0x0F)])
    }
    return String(decoding: out, as: UTF8.self)
}

@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { PluginExport.descriptor(for: Webhook.self) }
