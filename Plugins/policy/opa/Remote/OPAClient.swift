import AsyncHTTPClient
import Foundation
import MCPGJSON
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// Asks an OPA server's Data API for decisions: `POST <url>/v1/data/<path>` with `{"input": …}`, reading
/// `result` from the answer.
///
/// One instance per plugin instance; it owns one `HTTPClient` (on the shared singleton event loop group,
/// keeping connections alive between calls). `decide` may be called from any number of tasks at once. It
/// never throws and never waits past `timeout_ms`: every problem becomes a `.failure` for the queries it
/// touched, which the plugin turns into a deny. Answers (values and undefined, not failures) are cached
/// by serialized input for `cache_ttl_ms`.
///
/// Call `close()` when done; `deinit` starts the shutdown itself if `close()` was not called.
public final class OPAClient: Sendable {
    /// The server's answer for one input.
    public enum Outcome: Sendable, Equatable {
        /// The document's `result`.
        case value(JSON)
        /// The answer had no `result`: the document is undefined for this input.
        case undefined
        /// No answer: timeout, connection refused, non-200 status, bad JSON, TLS failure. The text says which
        /// and never contains a credential.
        case failure(String)
    }

    /// The configuration as given.
    public let config: Config
    /// `<url>/v1/data/<path>`; also what logs name (the URL may not carry credentials).
    public let endpoint: String
    private let headers: HTTPHeaders
    /// Credentials and header values that must never appear in a failure message.
    private let secrets: [String]
    private let timeout: Duration
    private let cache: DecisionCache
    private let http: HTTPClient
    private let log: @Sendable (String, [String: String]) -> Void
    private let closed = Mutex(false)

    /// Largest response body read; a batch answer for 10,000 queries is well below it.
    static let maxResponseBytes = 32 << 20

    /// Validates `config`, reads the bearer token and CA file, and creates the HTTP client.
    /// - Parameter log: called (from any thread) with a constant message and metadata when requests fail;
    ///   metadata never holds a credential.
    /// - Throws: `OPAClientError` naming the bad key: URL not http(s) or carrying credentials, empty path,
    ///   out-of-range numbers, unreadable token or CA file, invalid header.
    public init(config: Config, log: @escaping @Sendable (String, [String: String]) -> Void) throws {
        let base = try Self.baseURL(config.url)
        let segments = try Self.documentPath(config.path)
        guard config.timeoutMs >= 1 else { throw OPAClientError("timeout_ms must be at least 1") }
        guard config.cacheTTLMs >= 0 else { throw OPAClientError("cache_ttl_ms must not be negative") }
        guard config.cacheSize >= 1 else { throw OPAClientError("cache_size must be at least 1") }
        guard (1...4096).contains(config.maxConcurrency) else {
            throw OPAClientError("max_concurrency must be between 1 and 4096")
        }

        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Accept", value: "application/json")
        var secrets: [String] = []
        for (name, value) in config.headers.sorted(by: { $0.key < $1.key }) {
            guard Self.isToken(name) else { throw OPAClientError("headers: invalid header name \"\(name)\"") }
            guard !value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else {
                throw OPAClientError("headers: value of \"\(name)\" contains a line break")
            }
            headers.replaceOrAdd(name: name, value: value)
            if value.utf8.count >= 8 { secrets.append(value) }
        }
        if let token = try Self.bearerToken(config) {
            guard !config.headers.keys.contains(where: { $0.lowercased() == "authorization" }) else {
                throw OPAClientError("headers: Authorization is set together with a bearer token")
            }
            headers.replaceOrAdd(name: "Authorization", value: "Bearer \(token)")
            secrets.append(token)
        }

        var tls: TLSConfiguration?
        if base.hasPrefix("https://") {
            var t = TLSConfiguration.makeClientConfiguration()
            if let caFile = config.tls?.caFile {
                let certificates: [NIOSSLCertificate]
                do {
                    certificates = try NIOSSLCertificate.fromPEMFile(caFile)
                } catch {
                    throw OPAClientError("tls.ca_file \(caFile): cannot read PEM certificates (\(error))")
                }
                guard !certificates.isEmpty else {
                    throw OPAClientError("tls.ca_file \(caFile): no certificate in file")
                }
                t.trustRoots = .certificates(certificates)
            }
            if config.tls?.insecureSkipVerify == true { t.certificateVerification = .none }
            tls = t
        } else if config.tls != nil {
            throw OPAClientError("tls is set but url is not https")
        }

        var pool = HTTPClient.Configuration.ConnectionPool()
        pool.concurrentHTTP1ConnectionsPerHostSoftLimit = config.maxConcurrency
        // A refused connection should fail this call at once (and deny), not be retried until the deadline.
        pool.retryConnectionEstablishment = false
        let limit = TimeAmount.milliseconds(Int64(config.timeoutMs))
        let httpConfig = HTTPClient.Configuration(
            tlsConfiguration: tls,
            // Following a redirect would carry the Authorization header to wherever it points.
            redirectConfiguration: .disallow,
            timeout: .init(connect: limit, read: limit),
            connectionPool: pool,
            decompression: .disabled)

        self.config = config
        self.endpoint = base + "/v1/data" + segments.map { "/" + Self.percentEncoded($0) }.joined()
        self.headers = headers
        self.secrets = secrets
        self.timeout = .milliseconds(config.timeoutMs)
        self.cache = DecisionCache(ttl: .milliseconds(config.cacheTTLMs), capacity: config.cacheSize)
        self.log = log
        // Created last: nothing may throw after it exists, or it would be released without a shutdown.
        self.http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: httpConfig)
    }

    deinit {
        if !closed.withLock({ $0 }) { http.shutdown { _ in } }
    }

    /// Shuts the HTTP client down; later `decide` calls fail with "OPA client is closed".
    public func close() async {
        let first = closed.withLock { c -> Bool in
            defer { c = true }
            return !c
        }
        if first { try? await http.shutdown() }
    }

    /// Number of answers in the cache (for tests and diagnostics).
    public var cachedCount: Int { cache.count }

    /// Drops every cached answer, e.g. after the policy on the server changed.
    public func clearCache() { cache.removeAll() }

    /// Decides each input as the document's input, in order: per-query mode sends `{"input": input}` for
    /// each (at most `max_concurrency` in flight); batch mode sends one `{"input": {"queries": inputs}}`.
    public func decide(inputs: [JSON]) async -> [Outcome] {
        await decide(queries: inputs, shared: JSONObject())
    }

    /// Decides each query together with fields shared by all of them (principal, context), in order.
    ///
    /// Per-query mode sends, for each query, `{"input": {…shared, …query}}` (the query's members override
    /// shared ones of the same name; a query that is not an object goes in as `"query"`). Batch mode sends
    /// one `{"input": {…shared, "queries": [query, …]}}` and reads `result` as an array with one decision
    /// per query, in order. Either way a query's answer is cached under its shared fields and itself,
    /// identical queries are asked once, and only cache misses are sent.
    public func decide(queries: [JSON], shared: JSONObject) async -> [Outcome] {
        guard !queries.isEmpty else { return [] }
        guard !closed.withLock({ $0 }) else {
            return Array(repeating: .failure("OPA client is closed"), count: queries.count)
        }
        let deadline = ContinuousClock.now + timeout

        // The key is the serialized shared fields, a 0 byte (never part of serialized JSON), and the
        // serialized query: it identifies the per-query input without building it, so a cached
        // 10,000-query call serializes the principal and context once.
        var prefix: [UInt8] = []
        JSON.object(shared).write(into: &prefix)
        prefix.append(0)
        let keys = queries.map { query -> CacheKey in
            var bytes = prefix
            query.write(into: &bytes)
            return CacheKey(bytes: bytes)
        }
        var outcomes = [Outcome?](repeating: nil, count: queries.count)
        var misses: [Miss] = []
        var missByKey: [CacheKey: Int] = [:]
        for (i, hit) in cache.lookup(keys).enumerated() {
            switch hit {
            case .value(let v)?: outcomes[i] = .value(v)
            case .undefined?: outcomes[i] = .undefined
            case nil:
                if let m = missByKey[keys[i]] {
                    misses[m].indices.append(i)
                } else {
                    missByKey[keys[i]] = misses.count
                    misses.append(Miss(key: keys[i], query: queries[i], indices: [i]))
                }
            }
        }
        guard !misses.isEmpty else { return outcomes.map { $0 ?? .undefined } }

        let answers = await fetch(misses, shared: shared, deadline: deadline)
        var fresh: [(CacheKey, CachedResult)] = []
        var failures = 0
        var firstFailure: String?
        for (miss, answer) in zip(misses, answers) {
            switch answer {
            case .value(let v): fresh.append((miss.key, .value(v)))
            case .undefined: fresh.append((miss.key, .undefined))
            case .failure(let message):
                failures += miss.indices.count
                if firstFailure == nil { firstFailure = message }
            }
            for i in miss.indices { outcomes[i] = answer }
        }
        cache.store(fresh)
        if let firstFailure {
            log(
                "opa request failed",
                [
                    "opa.url": endpoint, "opa.error": firstFailure, "opa.failed": String(failures),
                    "opa.queries": String(queries.count),
                ])
        }
        return outcomes.map { $0 ?? .failure("OPA gave no answer") }
    }

    /// A distinct input not found in the cache, and the positions of the queries that share it.
    private struct Miss: Sendable {
        let key: CacheKey
        let query: JSON
        var indices: [Int]
    }

    /// Asks the server about `misses`, returning one outcome each; what has no answer at the deadline is a
    /// timeout failure.
    private func fetch(_ misses: [Miss], shared: JSONObject, deadline: ContinuousClock.Instant) async -> [Outcome] {
        let sink = Sink(count: misses.count)
        let batch = config.batch
        let limit = config.maxConcurrency
        await runUntil(deadline) { [self] in
            if batch {
                var input = shared
                input["queries"] = .array(misses.map(\.query))
                let answer = await post(.object(input), deadline: deadline)
                sink.setAll(Self.splitBatch(answer, count: misses.count))
                return
            }
            await withTaskGroup(of: Void.self) { group in
                var next = 0
                while next < misses.count {
                    if next >= limit { await group.next() }
                    if Task.isCancelled { break }
                    let i = next
                    let input = Self.merged(shared, misses[i].query)
                    group.addTask { sink.set(i, await self.post(input, deadline: deadline)) }
                    next += 1
                }
            }
        }
        let timedOut = Outcome.failure("OPA request timed out (timeout_ms \(config.timeoutMs))")
        return sink.seal().map { $0 ?? timedOut }
    }

    /// Spreads a batch answer over its queries: `result` must be an array with one decision per query.
    static func splitBatch(_ answer: Outcome, count: Int) -> [Outcome] {
        switch answer {
        case .failure, .undefined:
            return Array(repeating: answer, count: count)
        case .value(.array(let items)) where items.count == count:
            return items.map { .value($0) }
        case .value(let other):
            let got = other.arrayValue.map { "an array of \($0.count)" } ?? "a \(other.typeName)"
            return Array(
                repeating: .failure("OPA batch result is \(got), expected an array of \(count) decisions"),
                count: count)
        }
    }

    /// One Data API request.
    private func post(_ input: JSON, deadline: ContinuousClock.Instant) async -> Outcome {
        let remaining = deadline - ContinuousClock.now
        guard remaining > .zero else {
            return .failure("OPA request timed out (timeout_ms \(config.timeoutMs))")
        }
        var body: [UInt8] = Array(#"{"input":"#.utf8)
        input.write(into: &body)
        body.append(UInt8(ascii: "}"))
        var request = HTTPClientRequest(url: endpoint)
        request.method = .POST
        request.headers = headers
        request.body = .bytes(body)
        do {
            let response = try await http.execute(request, deadline: .now() + TimeAmount(remaining))
            let bytes = try await response.body.collect(upTo: Self.maxResponseBytes)
            return interpret(status: response.status, body: bytes.readableBytesView)
        } catch {
            return .failure(scrub(describe(error)))
        }
    }

    /// Turns a response into an outcome: 200 with a JSON object, `result` present or not.
    func interpret(status: HTTPResponseStatus, body: some Collection<UInt8>) -> Outcome {
        guard status == .ok else {
            var detail = ""
            if let answer = try? JSON.parse(body), let code = answer["code"]?.stringValue {
                detail = ": " + code
                if let message = answer["message"]?.stringValue { detail += ": " + message }
            }
            if detail.count > 300 { detail = String(detail.prefix(300)) + "…" }
            return .failure(scrub("OPA answered HTTP \(status.code)\(detail)"))
        }
        let answer: JSON
        do {
            answer = try JSON.parse(body)
        } catch {
            return .failure("OPA answered invalid JSON (\(error))")
        }
        guard case .object(let object) = answer else {
            return .failure("OPA answered a JSON \(answer.typeName), expected an object")
        }
        if let result = object["result"] { return .value(result) }
        return .undefined
    }

    /// A failure message for an error thrown by the HTTP client.
    func describe(_ error: any Error) -> String {
        let timedOut = "OPA request timed out (timeout_ms \(config.timeoutMs))"
        if error is CancellationError { return timedOut }
        if let e = error as? HTTPClientError {
            switch e {
            case .deadlineExceeded, .readTimeout, .writeTimeout, .connectTimeout, .tlsHandshakeTimeout,
                .getConnectionFromPoolTimeout, .cancelled:
                return timedOut
            case .remoteConnectionClosed: return "OPA closed the connection before answering"
            default: return "OPA request failed: \(e)"
            }
        }
        if error is NIOTooManyBytesError { return "OPA answer larger than \(Self.maxResponseBytes) bytes" }
        if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            return "OPA TLS failure: \(error)"
        }
        if let refused = Self.connectionRefused(error) { return refused }
        return "OPA request failed: \(error)"
    }

    /// "connection refused" with the address, when that is what `error` is.
    private static func connectionRefused(_ error: any Error) -> String? {
        if let e = error as? IOError, e.errnoCode == ECONNREFUSED { return "OPA connection refused" }
        if let e = error as? NIOConnectionError {
            let refused = e.connectionErrors.contains { ($0.error as? IOError)?.errnoCode == ECONNREFUSED }
            if refused { return "OPA connection refused (\(e.host):\(e.port))" }
            if let first = e.connectionErrors.first { return "OPA connection failed (\(first.error))" }
            if let dns = e.dnsAAAAError ?? e.dnsAError { return "OPA host not resolved (\(dns))" }
        }
        return nil
    }

    /// Removes credentials from a message that may quote server or library text.
    private func scrub(_ message: String) -> String {
        var m = message
        for secret in secrets where m.contains(secret) {
            m = m.replacingOccurrences(of: secret, with: "[redacted]")
        }
        return m
    }

    // MARK: Config parsing

    /// The base URL without a trailing slash; http or https, with a host, without credentials or query.
    static func baseURL(_ text: String) throws -> String {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = url.host, !host.isEmpty
        else { throw OPAClientError("url \"\(text)\" is not an http(s) URL with a host") }
        guard url.user == nil, url.password == nil else {
            throw OPAClientError("url must not carry credentials: use bearer_token_file, bearer_token_env or headers")
        }
        guard url.query == nil, url.fragment == nil else {
            throw OPAClientError("url \"\(text)\" must not have a query or fragment")
        }
        var base = text
        // Normalise the scheme's case so the https check and the HTTP client agree.
        if let colon = base.firstIndex(of: ":") { base = scheme + base[colon...] }
        while base.hasSuffix("/") { base.removeLast() }
        return base
    }

    /// The document's path segments: `/` separated (`mcpg/authz/allow`), or dotted with an optional
    /// `data.` prefix (`data.mcpg.authz.allow`) when there is no `/`.
    static func documentPath(_ text: String) throws -> [String] {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else {
            throw OPAClientError("path \"\(text)\" names no document (e.g. \"mcpg/authz/allow\")")
        }
        var segments: [String]
        if trimmed.contains("/") {
            segments = trimmed.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        } else {
            segments = trimmed.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            if segments.first == "data" { segments.removeFirst() }
            guard !segments.contains(where: \.isEmpty) else {
                throw OPAClientError("path \"\(text)\" has an empty segment")
            }
        }
        guard !segments.isEmpty else {
            throw OPAClientError("path \"\(text)\" names no document (e.g. \"mcpg/authz/allow\")")
        }
        return segments
    }

    /// Percent-encodes everything but RFC 3986 unreserved characters.
    static func percentEncoded(_ segment: String) -> String {
        var out = ""
        for byte in segment.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".unicodeScalars)
                out.unicodeScalars.append("%")
                out.unicodeScalars.append(hex[Int(byte >> 4)])
                out.unicodeScalars.append(hex[Int(byte & 0xF)])
            }
        }
        return out
    }

    /// An HTTP header name: RFC 9110 token characters.
    static func isToken(_ name: String) -> Bool {
        !name.isEmpty
            && name.utf8.allSatisfy { c in
                switch c {
                case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"):
                    return true
                default: return "!#$%&'*+-.^_`|~".utf8.contains(c)
                }
            }
    }

    /// The bearer token from the file or environment variable named in config, if any.
    static func bearerToken(_ config: Config) throws -> String? {
        if config.bearerTokenFile != nil, config.bearerTokenEnv != nil {
            throw OPAClientError("set bearer_token_file or bearer_token_env, not both")
        }
        var token: String
        if let file = config.bearerTokenFile {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw OPAClientError("bearer_token_file \(file): cannot read file")
            }
            token = String(decoding: data, as: UTF8.self)
        } else if let name = config.bearerTokenEnv {
            guard let value = ProcessInfo.processInfo.environment[name] else {
                throw OPAClientError("bearer_token_env: environment variable \(name) is not set")
            }
            token = value
        } else {
            return nil
        }
        token = token.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw OPAClientError("bearer token is empty") }
        guard !token.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            throw OPAClientError("bearer token contains control characters")
        }
        return token
    }

    /// `{…shared, …query}`; a non-object query goes in as `"query"`.
    static func merged(_ shared: JSONObject, _ query: JSON) -> JSON {
        if shared.isEmpty { return query }
        var input = shared
        if case .object(let fields) = query {
            for m in fields { input[m.key] = m.value }
        } else {
            input["query"] = query
        }
        return .object(input)
    }
}

/// Collects outcomes as requests finish; once sealed (at the deadline) late answers are dropped.
private final class Sink: Sendable {
    private struct State {
        var outcomes: [OPAClient.Outcome?]
        var sealed = false
    }
    private let state: Mutex<State>

    init(count: Int) { state = Mutex(State(outcomes: Array(repeating: nil, count: count))) }

    func set(_ index: Int, _ outcome: OPAClient.Outcome) {
        state.withLock { s in
            if !s.sealed, s.outcomes.indices.contains(index) { s.outcomes[index] = outcome }
        }
    }

    func setAll(_ outcomes: [OPAClient.Outcome]) {
        state.withLock { s in
            if !s.sealed, outcomes.count == s.outcomes.count { s.outcomes = outcomes }
        }
    }

    func seal() -> [OPAClient.Outcome?] {
        state.withLock { s in
            s.sealed = true
            return s.outcomes
        }
    }
}
