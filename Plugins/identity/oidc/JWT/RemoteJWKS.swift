import AsyncHTTPClient
import FoundationEssentials
import MCPGJSON
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// Signing keys fetched from an issuer over HTTP(S): from `jwks_uri`, or from the `jwks_uri` named by the
/// issuer's OpenID Connect discovery document.
///
/// Caching: a fetched set is fresh for `cacheSeconds`, or less when the JWKS response's `Cache-Control:
/// max-age` says so. A stale set keeps serving while one background refresh runs; if the issuer is down the
/// last good set stays in use. A token naming a key the set lacks triggers a refresh, at most once per
/// `minRefreshSeconds` (so a flood of made-up key ids costs the issuer one request per interval); a failed
/// fetch is retried no sooner either. Fetches are single-flight: concurrent callers wait for the same one.
/// Nothing here blocks a thread: HTTP runs on async-http-client's event loops.
///
/// Call `close()` when done; `deinit` starts the shutdown itself if `close()` was not called.
public final class RemoteJWKS: KeyProvider {
    public struct Settings: Sendable {
        /// The issuer, as tokens carry it in `iss`.
        public var issuer: String
        /// Fetch keys here; nil: discover `jwks_uri` at `<issuer>/.well-known/openid-configuration`.
        public var jwksURI: String?
        public var cacheSeconds: Double
        public var minRefreshSeconds: Double
        /// Deadline for one HTTP request.
        public var timeoutMilliseconds: Int
        /// PEM file of CA certificates to trust for https instead of the system roots.
        public var caFile: String?

        public init(issuer: String, jwksURI: String? = nil, cacheSeconds: Double = 300, minRefreshSeconds: Double = 30,
                    timeoutMilliseconds: Int = 5000, caFile: String? = nil) {
            self.issuer = issuer
            self.jwksURI = jwksURI
            self.cacheSeconds = cacheSeconds
            self.minRefreshSeconds = minRefreshSeconds
            self.timeoutMilliseconds = timeoutMilliseconds
            self.caFile = caFile
        }
    }

    private struct State {
        var set: JWKSet?
        /// When the cached set goes stale.
        var freshUntil: ContinuousClock.Instant = .now
        /// Start of the last fetch, successful or not (the rate limit counts from it).
        var lastAttempt: ContinuousClock.Instant?
        var lastError: String?
        var flight: Task<Result<JWKSet, KeysUnavailable>, Never>?
        /// `jwks_uri` from discovery, kept until a fetch from it fails.
        var discovered: String?
        var fetches = 0
    }

    public let settings: Settings
    private let state = Mutex(State())
    private let http: HTTPClient
    private let closed = Mutex(false)
    private let log: @Sendable (Event, String, [String: String]) -> Void

    /// What a log message is about, so the caller can pick its level.
    public enum Event: Sendable {
        /// A fetch succeeded (`oidc.keys` holds the number of usable keys).
        case fetched
        /// A JWKS entry was left out (encryption keys, unsupported types: often expected).
        case keySkipped
        /// A discovery or JWKS fetch failed; the previous keys, if any, stay in use.
        case fetchFailed
    }

    /// Largest discovery or JWKS document read.
    static let maxDocumentBytes = 1 << 20

    /// Checks the URLs and the CA file and creates the HTTP client; fetches nothing yet (see `prefetch`).
    /// - Parameter log: told (from any thread) about fetches, with a constant message and metadata that never
    ///   holds a credential.
    /// - Throws: `KeysUnavailable` describing the configuration problem.
    public init(settings: Settings, log: @escaping @Sendable (Event, String, [String: String]) -> Void = { _, _, _ in })
        throws(KeysUnavailable)
    {
        _ = try EndpointURL.check(settings.issuer, what: "issuer")
        if let uri = settings.jwksURI { _ = try EndpointURL.check(uri, what: "jwks_uri") }
        guard (1...600_000).contains(settings.timeoutMilliseconds) else {
            throw KeysUnavailable("http_timeout_ms must be between 1 and 600000")
        }
        for (name, value) in [("jwks_cache_s", settings.cacheSeconds), ("jwks_min_refresh_s", settings.minRefreshSeconds)]
        where !(value.isFinite && (0...31_536_000).contains(value)) {
            throw KeysUnavailable("\(name) must be between 0 and 31536000 seconds")
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile = settings.caFile {
            let certificates: [NIOSSLCertificate]
            do {
                certificates = try NIOSSLCertificate.fromPEMFile(caFile)
            } catch {
                throw KeysUnavailable("tls.ca_file \(caFile): cannot read PEM certificates")
            }
            guard !certificates.isEmpty else { throw KeysUnavailable("tls.ca_file \(caFile): no certificate in file") }
            tls.trustRoots = .certificates(certificates)
        }
        var pool = HTTPClient.Configuration.ConnectionPool()
        pool.retryConnectionEstablishment = false
        let limit = TimeAmount.milliseconds(Int64(settings.timeoutMilliseconds))
        let config = HTTPClient.Configuration(
            tlsConfiguration: tls,
            // The issuer's documents are fetched from where config and discovery say, nowhere else.
            redirectConfiguration: .disallow,
            timeout: .init(connect: limit, read: limit),
            connectionPool: pool,
            decompression: .disabled)
        self.settings = settings
        self.log = log
        // Created last: nothing may throw after it exists, or it would be released without a shutdown.
        http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: config)
    }

    deinit {
        if !closed.withLock({ $0 }) { http.shutdown { _ in } }
    }

    /// Shuts the HTTP client down; later fetches fail.
    public func close() async {
        let first = closed.withLock { c -> Bool in
            defer { c = true }
            return !c
        }
        if first { try? await http.shutdown() }
    }

    /// Starts fetching the keys now without waiting, so the first token does not wait for the issuer.
    public func prefetch() {
        state.withLock { s in
            if s.set == nil, s.flight == nil { s.flight = startFlight(&s) }
        }
    }

    /// Number of fetch attempts so far (discovery and JWKS together count as one).
    public var fetchCount: Int { state.withLock { $0.fetches } }

    public func keys() async -> Result<JWKSet, KeysUnavailable> {
        let now = ContinuousClock.now
        enum Step {
            case use(JWKSet)
            case wait(Task<Result<JWKSet, KeysUnavailable>, Never>)
            case fail(String)
        }
        let step = state.withLock { s -> Step in
            if let set = s.set {
                if now >= s.freshUntil, s.flight == nil, mayFetch(s, now) { s.flight = startFlight(&s) }
                return .use(set)
            }
            if let f = s.flight { return .wait(f) }
            guard mayFetch(s, now) else { return .fail(s.lastError ?? "no keys fetched yet") }
            let f = startFlight(&s)
            s.flight = f
            return .wait(f)
        }
        switch step {
        case .use(let set): return .success(set)
        case .fail(let why): return .failure(KeysUnavailable("signing keys unavailable: \(why)"))
        case .wait(let f): return settle(await f.value)
        }
    }

    public func keysAfterMiss() async -> Result<JWKSet, KeysUnavailable> {
        let now = ContinuousClock.now
        let flight = state.withLock { s -> Task<Result<JWKSet, KeysUnavailable>, Never>? in
            if let f = s.flight { return f }
            guard mayFetch(s, now) else { return nil }
            let f = startFlight(&s)
            s.flight = f
            return f
        }
        if let flight { return settle(await flight.value) }
        // Rate limited: the set as it is now (another caller's refresh may have brought the key meanwhile).
        return state.withLock { s in
            s.set.map { .success($0) }
                ?? .failure(KeysUnavailable("signing keys unavailable: \(s.lastError ?? "no keys fetched yet")"))
        }
    }

    /// A failed fetch still leaves the last good set in use.
    private func settle(_ result: Result<JWKSet, KeysUnavailable>) -> Result<JWKSet, KeysUnavailable> {
        if case .failure(let e) = result {
            return state.withLock { $0.set }.map { .success($0) }
                ?? .failure(KeysUnavailable("signing keys unavailable: \(e.message)"))
        }
        return result
    }

    private func mayFetch(_ s: State, _ now: ContinuousClock.Instant) -> Bool {
        guard let last = s.lastAttempt else { return true }
        return now - last >= .milliseconds(Int64(settings.minRefreshSeconds * 1000))
    }

    /// Starts the one fetch in flight; call with the lock held (the task only runs after it is released).
    private func startFlight(_ s: inout State) -> Task<Result<JWKSet, KeysUnavailable>, Never> {
        s.lastAttempt = .now
        s.fetches += 1
        return Task { [self] in
            let result = await fetch()
            state.withLock { s in
                s.flight = nil
                switch result {
                case .success(let set):
                    s.set = set
                    s.lastError = nil
                case .failure(let e):
                    s.lastError = e.message
                    s.discovered = nil
                }
            }
            return result
        }
    }

    private func fetch() async -> Result<JWKSet, KeysUnavailable> {
        guard !closed.withLock({ $0 }) else { return .failure(KeysUnavailable("key fetcher is closed")) }
        do {
            var uri = settings.jwksURI ?? state.withLock { $0.discovered }
            if uri == nil {
                let found = try await discover()
                state.withLock { $0.discovered = found }
                uri = found
            }
            let (document, maxAge) = try await get(uri!, what: "JWKS")
            let set: JWKSet
            do {
                set = try JWKSet(json: document)
            } catch {
                throw KeysUnavailable("JWKS at \(uri!): \(error.message)")
            }
            var ttl = settings.cacheSeconds
            if let maxAge { ttl = min(ttl, maxAge) }
            let freshUntil = ContinuousClock.now + .milliseconds(Int64(max(0, ttl) * 1000))
            state.withLock { $0.freshUntil = freshUntil }
            for s in set.skipped {
                log(.keySkipped, "jwks key skipped", ["oidc.kid": s.kid ?? "", "oidc.reason": s.reason])
            }
            log(.fetched, "jwks fetched", ["oidc.jwks_uri": uri!, "oidc.keys": String(set.keys.count)])
            return .success(set)
        } catch let e as KeysUnavailable {
            log(.fetchFailed, "jwks fetch failed", ["oidc.issuer": settings.issuer, "error": e.message])
            return .failure(e)
        } catch {
            return .failure(KeysUnavailable("\(error)"))
        }
    }

    /// `jwks_uri` from the discovery document, whose `issuer` must equal ours exactly (OpenID Connect
    /// Discovery 1.0 §4.3), or a document for some other issuer could hand us its keys.
    private func discover() async throws -> String {
        var base = settings.issuer
        if base.hasSuffix("/") { base.removeLast() }
        let url = base + "/.well-known/openid-configuration"
        let (document, _) = try await get(url, what: "discovery document")
        guard let issuer = document["issuer"]?.stringValue else {
            throw KeysUnavailable("discovery document at \(url) has no issuer")
        }
        guard issuer == settings.issuer else {
            throw KeysUnavailable(
                "discovery document names issuer \(JWKSet.quoted(issuer)), not \(JWKSet.quoted(settings.issuer))")
        }
        guard let jwksURI = document["jwks_uri"]?.stringValue else {
            throw KeysUnavailable("discovery document at \(url) has no jwks_uri")
        }
        return try EndpointURL.check(jwksURI, what: "discovered jwks_uri")
    }

    /// GETs a JSON document; returns it with the response's `Cache-Control` max-age in seconds, if any.
    private func get(_ url: String, what: String) async throws -> (JSON, Double?) {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/json")
        let response: HTTPClientResponse
        let body: ByteBuffer
        let deadline = NIODeadline.now() + .milliseconds(Int64(settings.timeoutMilliseconds))
        do {
            response = try await http.execute(request, deadline: deadline)
            body = try await response.body.collect(upTo: Self.maxDocumentBytes)
        } catch {
            throw KeysUnavailable("\(what) at \(url): \(Self.describe(error))")
        }
        guard response.status == .ok else {
            throw KeysUnavailable("\(what) at \(url): HTTP \(response.status.code)")
        }
        let json: JSON
        do {
            json = try JSON.parse(body.readableBytesView)
        } catch {
            throw KeysUnavailable("\(what) at \(url): \(error)")
        }
        return (json, Self.maxAge(response.headers["cache-control"]))
    }

    /// The `max-age` of Cache-Control values, 0 for `no-cache`/`no-store`, nil when neither is given.
    static func maxAge(_ values: [String]) -> Double? {
        var result: Double?
        for value in values {
            for directive in value.split(separator: ",") {
                let d = trimmed(directive).lowercased()
                if d == "no-cache" || d == "no-store" {
                    result = 0
                } else if d.hasPrefix("max-age="), let n = Int(d.dropFirst(8)), n >= 0 {
                    result = min(result ?? .infinity, Double(n))
                }
            }
        }
        return result
    }

    static func trimmed(_ s: Substring) -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let start = s.firstIndex(where: { !isSpace($0) }), let end = s.lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return s[start...end]
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? HTTPClientError {
            switch e {
            case .deadlineExceeded, .readTimeout, .connectTimeout, .tlsHandshakeTimeout,
                .getConnectionFromPoolTimeout:
                return "timed out"
            case .remoteConnectionClosed: return "connection closed before an answer"
            default: return "\(e)"
            }
        }
        if error is NIOTooManyBytesError { return "document larger than \(maxDocumentBytes) bytes" }
        return "\(error)"
    }
}

/// URLs of the issuer's endpoints: https, or plain http to a loopback host (a local issuer in development
/// and tests), never with credentials or a fragment.
public enum EndpointURL {
    /// Returns `url` unchanged when acceptable.
    /// - Throws: `KeysUnavailable` naming `what` and the problem.
    public static func check(_ url: String, what: String) throws(KeysUnavailable) -> String {
        let lower = url.lowercased()
        let rest: Substring
        let secure: Bool
        if lower.hasPrefix("https://") {
            rest = url.dropFirst(8)
            secure = true
        } else if lower.hasPrefix("http://") {
            rest = url.dropFirst(7)
            secure = false
        } else {
            throw KeysUnavailable("\(what) \(JWKSet.quoted(url)) must be an https URL")
        }
        guard !url.contains("#") else { throw KeysUnavailable("\(what) must not have a fragment") }
        guard !url.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) else {
            throw KeysUnavailable("\(what) must not contain spaces or control characters")
        }
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        guard !authority.contains("@") else { throw KeysUnavailable("\(what) must not carry credentials") }
        var host = authority
        if host.hasPrefix("[") {
            host = host.prefix { $0 != "]" }.dropFirst()
        } else if let colon = host.lastIndex(of: ":") {
            host = host[..<colon]
        }
        guard !host.isEmpty else { throw KeysUnavailable("\(what) \(JWKSet.quoted(url)) has no host") }
        if !secure && !isLoopback(host.lowercased()) {
            throw KeysUnavailable("\(what) \(JWKSet.quoted(url)) must use https (plain http only to a loopback host)")
        }
        return url
    }

    /// `localhost`, `::1`, or an IPv4 literal in 127.0.0.0/8 (not a DNS name that merely starts with "127.").
    static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127"
            && octets.allSatisfy { o in o.count <= 3 && !o.isEmpty && o.allSatisfy(\.isASCII) && UInt8(o) != nil }
    }
}
