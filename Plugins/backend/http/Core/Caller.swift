import AsyncHTTPClient
import MCPGJSON
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One HTTP request to send: an absolute URL, headers and an optional body.
public struct OutgoingRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(String, String)]
    public var body: [UInt8]?

    public init(method: String, url: String, headers: [(String, String)] = [], body: [UInt8]? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }

    /// GET, HEAD, PUT, DELETE and OPTIONS: the methods retried after a transient failure.
    public var isIdempotent: Bool { ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"].contains(method) }

    /// Adds the W3C trace context of the call (`traceparent`, and `tracestate` with it) from the call's `_meta`,
    /// where the gateway puts its own span, so the API's spans continue the caller's trace. Headers the request
    /// already has are kept; values that are not printable ASCII or longer than 512 bytes are not sent.
    public mutating func addTraceContext(from meta: JSONObject?) {
        guard let meta, let parent = Self.traceValue(meta["traceparent"]) else { return }
        var added = [("traceparent", parent)]
        if let state = Self.traceValue(meta["tracestate"]) { added.append(("tracestate", state)) }
        for (name, value) in added where !headers.contains(where: { $0.0.lowercased() == name }) {
            headers.append((name, value))
        }
    }

    static func traceValue(_ json: JSON?) -> String? {
        guard let s = json?.stringValue, !s.isEmpty, s.utf8.count <= 512,
            s.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F })
        else { return nil }
        return s
    }
}

/// An HTTP answer read in full (within the size limit).
public struct IncomingResponse: Sendable {
    public var status: Int
    public var reason: String
    public var headers: [(String, String)]
    public var body: [UInt8]

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    /// True for a `…/json` or `…+json` content type.
    public var isJSON: Bool {
        guard let t = header("content-type")?.lowercased() else { return false }
        let media = t.split(separator: ";").first.map { $0.trimmingWhitespace() } ?? ""
        return media.hasSuffix("/json") || media.hasSuffix("+json")
    }

    /// The body as text, cut to `limit` bytes, for error messages.
    public func excerpt(_ limit: Int = 200) -> String {
        truncated(String(decoding: body.prefix(limit * 2), as: UTF8.self).trimmingWhitespace(), limit)
    }
}

/// Sends the HTTP tools' requests: one connection pool per plugin instance, static headers, outbound auth,
/// a deadline per attempt, retries with exponential backoff and jitter for idempotent methods (after a connect
/// error, 429 or 502–504; `Retry-After` seconds are honoured up to 30 s), a response size limit (the
/// connection is closed when a body exceeds it) and one token refresh after a 401 with OAuth2.
///
/// Redirects are not followed: they would carry credentials elsewhere; a 3xx answer is returned as it is.
public final class HTTPCaller: Sendable {
    let http: HTTPClient
    public let timeoutMs: Int
    public let retries: Int
    public let backoffMs: Int
    public let maxResponseBytes: Int
    let staticHeaders: [(String, String)]
    /// The plugin-level authentication, used by tools without their own.
    public let defaultAuth: Authenticator?
    /// Texts that must never appear in a message: secrets from config and tokens fetched since.
    let secrets = MutexBox<[String]>([])

    /// Reads the TLS files and secrets and creates the HTTP client; `warn` receives configuration warnings
    /// (insecure TLS).
    /// - Throws: `HTTPToolsError` naming the bad key.
    public init(config: ConnectionConfig, warn: (String) -> Void = { _ in }) throws {
        timeoutMs = config.timeoutMs ?? 10_000
        retries = config.retries ?? 2
        backoffMs = config.retryBackoffMs ?? 200
        maxResponseBytes = config.maxResponseBytes ?? (1 << 20)
        guard timeoutMs > 0, retries >= 0, backoffMs > 0, maxResponseBytes > 0 else {
            throw HTTPToolsError("timeout_ms, retry_backoff_ms and max_response_bytes must be positive, retries >= 0")
        }
        var headers: [(String, String)] = []
        for (name, value) in (config.headers ?? [:]).sorted(by: { $0.key < $1.key }) {
            try Self.checkHeader(name, value)
            headers.append((name, value))
        }
        staticHeaders = headers
        var tls = TLSConfiguration.makeClientConfiguration()
        if let ca = config.tls?.caFile {
            let certificates: [NIOSSLCertificate]
            do {
                certificates = try NIOSSLCertificate.fromPEMFile(ca)
            } catch {
                throw HTTPToolsError("tls.ca_file \(ca): cannot read PEM certificates")
            }
            guard !certificates.isEmpty else { throw HTTPToolsError("tls.ca_file \(ca): no certificate in file") }
            tls.trustRoots = .certificates(certificates)
        }
        if config.tls?.insecureSkipVerify == true {
            tls.certificateVerification = .none
            warn(
                "tls.insecure_skip_verify is true: server certificates are NOT verified; anyone on the path can read and change these requests and the credentials they carry"
            )
        }
        let defaultAuth = try config.auth.map { try Authenticator($0) }
        self.defaultAuth = defaultAuth
        var pool = HTTPClient.Configuration.ConnectionPool()
        pool.retryConnectionEstablishment = false
        pool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        let httpConfig = HTTPClient.Configuration(
            tlsConfiguration: tls, redirectConfiguration: .disallow,
            timeout: .init(connect: .milliseconds(Int64(min(timeoutMs, 30_000))), read: nil),
            connectionPool: pool, decompression: .disabled)
        // Created last: nothing may throw after it exists, or it would be released without a shutdown.
        http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: httpConfig)
        if let defaultAuth { secrets.withLock { $0 += defaultAuth.secrets } }
    }

    private let isShutDown = MutexBox(false)

    deinit {
        if !isShutDown.withLock({ $0 }) { http.shutdown { _ in } }
    }

    public func shutdown() async {
        let first = isShutDown.withLock { s -> Bool in
            defer { s = true }
            return !s
        }
        if first { try? await http.shutdown() }
    }

    /// Builds the authentication of one tool and registers its secrets for scrubbing.
    public func makeAuthenticator(_ config: AuthConfig) throws -> Authenticator {
        let auth = try Authenticator(config)
        secrets.withLock { $0 += auth.secrets }
        return auth
    }

    static func checkHeader(_ name: String, _ value: String) throws {
        guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") }) else {
            throw HTTPToolsError("header name \"\(name)\" is not a valid HTTP header name")
        }
        guard !value.utf8.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) else {
            throw HTTPToolsError("header \(name): the value contains control characters")
        }
    }

    /// Sends `request` with retries; `auth` nil means none. Transport failures, timeouts and oversized bodies
    /// throw `HTTPToolsError` with a message free of secrets; HTTP statuses are returned, not thrown.
    public func send(_ request: OutgoingRequest, auth: Authenticator?, timeoutMs: Int? = nil) async throws
        -> IncomingResponse
    {
        let timeout = timeoutMs ?? self.timeoutMs
        var attempt = 0
        var refreshed = false
        while true {
            try Task.checkCancellation()
            var headers = staticHeaders
            if let auth {
                let h = try await auth.header(using: self)
                if let h { headers.removeAll { $0.0.lowercased() == h.0.lowercased() }; headers.append(h) }
            }
            for h in request.headers {
                headers.removeAll { $0.0.lowercased() == h.0.lowercased() }
                headers.append(h)
            }
            let response: IncomingResponse
            do {
                response = try await once(request, headers: headers, timeoutMs: timeout)
            } catch let e as HTTPToolsError {
                throw e
            } catch {
                if request.isIdempotent, attempt < retries, Self.isConnectFailure(error) {
                    try await pause(attempt, retryAfter: nil)
                    attempt += 1
                    continue
                }
                throw describe(error, request: request, timeoutMs: timeout)
            }
            if response.status == 401, let auth, auth.isRefreshable, !refreshed {
                refreshed = true
                await auth.invalidate()
                continue
            }
            if request.isIdempotent, attempt < retries, [429, 502, 503, 504].contains(response.status) {
                try await pause(attempt, retryAfter: response.header("retry-after").flatMap { Int($0) })
                attempt += 1
                continue
            }
            return response
        }
    }

    /// Waits before retry number `attempt + 1`: backoff × 2^attempt plus up to half of it at random, or the
    /// server's `Retry-After` (seconds, at most 30).
    func pause(_ attempt: Int, retryAfter: Int?) async throws {
        var ms = backoffMs << min(attempt, 16)
        ms = min(ms, 30_000)
        ms += Int.random(in: 0...max(ms / 2, 1))
        if let retryAfter, retryAfter >= 0 { ms = max(ms, min(retryAfter, 30) * 1000) }
        try await Task.sleep(for: .milliseconds(ms))
    }

    /// One attempt: the body is read until it ends or exceeds the limit (then the request is cancelled, which
    /// closes the connection).
    func once(_ request: OutgoingRequest, headers: [(String, String)], timeoutMs: Int) async throws
        -> IncomingResponse
    {
        var r = HTTPClientRequest(url: request.url)
        r.method = HTTPMethod(rawValue: request.method)
        for (name, value) in headers { r.headers.add(name: name, value: value) }
        if let body = request.body {
            r.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await http.execute(r, deadline: .now() + .milliseconds(Int64(timeoutMs)))
        if let length = response.headers.first(name: "content-length").flatMap(Int.init), length > maxResponseBytes {
            throw HTTPToolsError(
                "the response body (\(length) bytes) is larger than max_response_bytes (\(maxResponseBytes))")
        }
        var body: [UInt8] = []
        for try await chunk in response.body {
            guard body.count + chunk.readableBytes <= maxResponseBytes else {
                throw HTTPToolsError("the response body is larger than max_response_bytes (\(maxResponseBytes))")
            }
            body += chunk.readableBytesView
        }
        return IncomingResponse(
            status: Int(response.status.code), reason: response.status.reasonPhrase,
            headers: response.headers.map { ($0.name, $0.value) }, body: body)
    }

    static func isConnectFailure(_ error: any Error) -> Bool {
        if error is NIOConnectionError { return true }
        if let e = error as? HTTPClientError {
            return e == .connectTimeout || e == .remoteConnectionClosed
        }
        if let e = error as? IOError { return e.errnoCode == ECONNREFUSED || e.errnoCode == ECONNRESET }
        return false
    }

    /// A failure message for an error thrown by the HTTP client, without credentials.
    func describe(_ error: any Error, request: OutgoingRequest, timeoutMs: Int) -> HTTPToolsError {
        let target = "\(request.method) \(Self.redactQuery(request.url))"
        var text: String
        if let e = error as? HTTPClientError {
            switch e {
            case .deadlineExceeded, .readTimeout: text = "\(target): no answer within \(timeoutMs) ms"
            case .connectTimeout: text = "\(target): connect timeout"
            case .remoteConnectionClosed: text = "\(target): the server closed the connection"
            case .cancelled: text = "\(target): cancelled"
            default: text = "\(target): HTTP request failed (\(e))"
            }
        } else if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            text = "\(target): TLS failure (\(error))"
        } else if let e = error as? NIOConnectionError {
            if e.connectionErrors.contains(where: { ($0.error as? IOError)?.errnoCode == ECONNREFUSED }) {
                text = "\(target): connection refused"
            } else if let dns = e.dnsAAAAError ?? e.dnsAError, e.connectionErrors.isEmpty {
                text = "\(target): host not resolved (\(dns))"
            } else {
                text = "\(target): connection failed"
            }
        } else if let e = error as? IOError {
            text = "\(target): " + (e.errnoCode == ECONNREFUSED ? "connection refused" : "connection failed (\(e))")
        } else if error is CancellationError {
            text = "\(target): cancelled"
        } else {
            text = "\(target): HTTP request failed (\(error))"
        }
        return HTTPToolsError(scrub(text))
    }

    /// The URL without its query, which may carry arguments that belong in no log.
    static func redactQuery(_ url: String) -> String {
        url.split(separator: "?", maxSplits: 1).first.map(String.init) ?? url
    }

    /// Removes credentials from a message that may quote server or library text.
    public func scrub(_ message: String) -> String {
        var m = message
        for secret in secrets.withLock({ $0 }) where !secret.isEmpty && m.contains(secret) {
            m = m.split(separator: secret, omittingEmptySubsequences: false).joined(separator: "[redacted]")
        }
        return m
    }

    func remember(secret: String) {
        secrets.withLock { if !$0.contains(secret) { $0.append(secret) } }
    }
}
