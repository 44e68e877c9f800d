import MCPGJSON

/// Outbound authentication of a request: a fixed header (static, bearer, basic) or an OAuth2 access token
/// from the client credentials grant, cached until shortly before it expires and fetched again after a 401.
public final class Authenticator: Sendable {
    enum Kind: Sendable {
        case none
        case header(name: String, value: String)
        case oauth2(OAuth2Tokens)
    }
    let kind: Kind
    /// The secret texts this authentication holds (for scrubbing messages).
    let secrets: [String]

    /// Reads the secrets the config references.
    /// - Throws: `HTTPToolsError` naming the bad key.
    public init(_ config: AuthConfig) throws {
        switch config.type {
        case "none":
            kind = .none
            secrets = []
        case "header":
            let name = config.name ?? "Authorization"
            guard let value = try Self.secret(inline: config.value, file: config.valueFile, env: config.valueEnv, what: "value")
            else { throw HTTPToolsError("auth header: one of value, value_file or value_env is required") }
            try HTTPCaller.checkHeader(name, value)
            kind = .header(name: name, value: value)
            secrets = config.value == nil ? [value] : []
        case "bearer":
            guard let token = try Self.secret(inline: nil, file: config.tokenFile, env: config.tokenEnv, what: "token")
            else { throw HTTPToolsError("auth bearer: token_file or token_env is required") }
            try HTTPCaller.checkHeader("Authorization", token)
            kind = .header(name: "Authorization", value: "Bearer \(token)")
            secrets = [token]
        case "basic":
            guard let user = config.username else { throw HTTPToolsError("auth basic: username is required") }
            guard !user.contains(":") else { throw HTTPToolsError("auth basic: username must not contain ':'") }
            guard let password = try Self.secret(inline: nil, file: config.passwordFile, env: config.passwordEnv, what: "password")
            else { throw HTTPToolsError("auth basic: password_file or password_env is required") }
            let encoded = Base64.encode(Array("\(user):\(password)".utf8))
            kind = .header(name: "Authorization", value: "Basic \(encoded)")
            secrets = [password, encoded]
        case "oauth2":
            guard let tokenURL = config.tokenURL, tokenURL.hasPrefix("http://") || tokenURL.hasPrefix("https://")
            else { throw HTTPToolsError("auth oauth2: token_url (an http or https URL) is required") }
            guard let clientID = config.clientID else { throw HTTPToolsError("auth oauth2: client_id is required") }
            guard let secret = try Self.secret(
                inline: nil, file: config.clientSecretFile, env: config.clientSecretEnv, what: "client_secret")
            else { throw HTTPToolsError("auth oauth2: client_secret_file or client_secret_env is required") }
            let inBody = config.clientAuth == "body"
            kind = .oauth2(
                OAuth2Tokens(
                    tokenURL: tokenURL, clientID: clientID, clientSecret: secret, scopes: config.scopes ?? [],
                    audience: config.audience, credentialsInBody: inBody))
            secrets = [secret]
        default:
            throw HTTPToolsError("auth type \"\(config.type)\" is not one of none, header, bearer, basic, oauth2")
        }
    }

    /// A secret from exactly one of its sources, trimmed; nil when none is given.
    static func secret(inline: String?, file: String?, env: String?, what: String) throws -> String? {
        let given = [inline != nil, file != nil, env != nil].filter { $0 }.count
        guard given <= 1 else { throw HTTPToolsError("auth: give only one source for the \(what)") }
        var text: String
        if let inline {
            text = inline
        } else if let file {
            guard let bytes = readFile(file, limit: 1 << 16) else {
                throw HTTPToolsError("auth \(what)_file \(file): cannot read file")
            }
            text = String(decoding: bytes, as: UTF8.self)
        } else if let env {
            guard let value = environmentValue(env) else {
                throw HTTPToolsError("auth \(what)_env: environment variable \(env) is not set")
            }
            text = value
        } else {
            return nil
        }
        text = text.trimmingWhitespace()
        guard !text.isEmpty else { throw HTTPToolsError("auth: the \(what) is empty") }
        guard !text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            throw HTTPToolsError("auth: the \(what) contains control characters")
        }
        return text
    }

    /// True when a 401 may be cured by fetching a new token.
    var isRefreshable: Bool {
        if case .oauth2 = kind { return true }
        return false
    }

    /// The header to add, fetching an OAuth2 token if none is cached.
    func header(using caller: HTTPCaller) async throws -> (String, String)? {
        switch kind {
        case .none: return nil
        case .header(let name, let value): return (name, value)
        case .oauth2(let tokens): return ("Authorization", "Bearer \(try await tokens.token(using: caller))")
        }
    }

    /// Forgets a cached OAuth2 token.
    func invalidate() async {
        if case .oauth2(let tokens) = kind { await tokens.invalidate() }
    }
}

/// The OAuth2 client credentials grant with a cached token: concurrent callers share one token request.
actor OAuth2Tokens {
    let tokenURL: String
    let clientID: String
    let clientSecret: String
    let scopes: [String]
    let audience: String?
    let credentialsInBody: Bool
    private var cached: (token: String, refreshAt: ContinuousClock.Instant)?
    private var pending: Task<(String, ContinuousClock.Instant), any Error>?

    init(tokenURL: String, clientID: String, clientSecret: String, scopes: [String], audience: String?,
         credentialsInBody: Bool) {
        self.tokenURL = tokenURL
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.scopes = scopes
        self.audience = audience
        self.credentialsInBody = credentialsInBody
    }

    func invalidate() {
        cached = nil
    }

    func token(using caller: HTTPCaller) async throws -> String {
        if let cached, ContinuousClock.now < cached.refreshAt { return cached.token }
        let task: Task<(String, ContinuousClock.Instant), any Error>
        if let pending {
            task = pending
        } else {
            task = Task { try await self.fetch(using: caller) }
            pending = task
        }
        do {
            let (token, refreshAt) = try await task.value
            pending = nil
            cached = (token, refreshAt)
            return token
        } catch {
            pending = nil
            throw error
        }
    }

    /// POSTs the grant to the token endpoint; the token is kept until `min(30 s, half its lifetime)` before
    /// `expires_in` (default lifetime 1 h).
    private func fetch(using caller: HTTPCaller) async throws -> (String, ContinuousClock.Instant) {
        var form: [(String, String)] = [("grant_type", "client_credentials")]
        if !scopes.isEmpty { form.append(("scope", scopes.joined(separator: " "))) }
        if let audience { form.append(("audience", audience)) }
        var headers: [(String, String)] = [
            ("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json"),
        ]
        if credentialsInBody {
            form += [("client_id", clientID), ("client_secret", clientSecret)]
        } else {
            let pair = PercentEncoding.component(clientID) + ":" + PercentEncoding.component(clientSecret)
            headers.append(("Authorization", "Basic " + Base64.encode(Array(pair.utf8))))
        }
        let started = ContinuousClock.now
        let response = try await caller.send(
            OutgoingRequest(
                method: "POST", url: tokenURL, headers: headers, body: Array(PercentEncoding.form(form).utf8)),
            auth: nil)
        guard (200..<300).contains(response.status) else {
            throw HTTPToolsError(
                caller.scrub("oauth2 token endpoint answered HTTP \(response.status): \(response.excerpt())"))
        }
        guard let json = try? JSON.parse(response.body), let token = json["access_token"]?.stringValue,
            !token.isEmpty
        else { throw HTTPToolsError("oauth2 token endpoint answered without an access_token") }
        caller.remember(secret: token)
        let lifetime = json["expires_in"]?.doubleValue ?? 3600
        let margin = min(30, lifetime / 2)
        return (token, started + .milliseconds(Int64((lifetime - margin) * 1000)))
    }
}

/// Base64 (RFC 4648) without padding omitted, for basic credentials.
enum Base64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".unicodeScalars)
    static func encode(_ bytes: [UInt8]) -> String {
        var out = ""
        var i = 0
        while i < bytes.count {
            let b0 = Int(bytes[i])
            let b1 = i + 1 < bytes.count ? Int(bytes[i + 1]) : 0
            let b2 = i + 2 < bytes.count ? Int(bytes[i + 2]) : 0
            out.unicodeScalars.append(alphabet[b0 >> 2])
            out.unicodeScalars.append(alphabet[((b0 & 3) << 4) | (b1 >> 4)])
            out += i + 1 < bytes.count ? String(Character(alphabet[((b1 & 15) << 2) | (b2 >> 6)])) : "="
            out += i + 2 < bytes.count ? String(Character(alphabet[b2 & 63])) : "="
            i += 3
        }
        return out
    }
}
