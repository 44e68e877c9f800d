import MCPGJSON

/// The authenticated caller, as the identity chain produced it.
public struct Principal: Sendable, Equatable {
    public var id: String
    public var groups: [String]
    public var tenant: String?
    public var attributes: JSONObject

    public init(id: String, groups: [String] = [], tenant: String? = nil, attributes: JSONObject = [:]) {
        self.id = id
        self.groups = groups
        self.tenant = tenant
        self.attributes = attributes
    }

    init?(json: JSON) {
        guard let id = json["id"]?.stringValue, !id.isEmpty else { return nil }
        self.id = id
        groups = json["groups"]?.arrayValue?.compactMap(\.stringValue) ?? []
        tenant = json["tenant"]?.stringValue
        attributes = json["attributes"]?.objectValue ?? [:]
    }

    public var json: JSON {
        var o: JSONObject = ["id": .string(id), "groups": .array(groups.map { .string($0) })]
        if let tenant { o["tenant"] = .string(tenant) }
        if !attributes.isEmpty { o["attributes"] = .object(attributes) }
        return .object(o)
    }

    /// A key that is equal for principals that every policy must treat alike (for the list-filter cache).
    var cacheKey: String {
        var k = id + "\u{0}" + (tenant ?? "") + "\u{0}" + groups.sorted().joined(separator: "\u{1}")
        if !attributes.isEmpty { k += "\u{0}" + JSON.object(attributes).text }
        return k
    }
}

/// What the front knows about the caller before identity runs.
public struct Caller: Sendable {
    /// "http" or "stdio".
    public var transport: String
    /// Peer address ("127.0.0.1:53122"), or "stdio".
    public var peer: String
    public var peerIsLoopback: Bool
    /// Request headers with lowercased names (HTTP), or credentials from the environment (stdio).
    public var headers: [String: String]
    /// The TLS client certificate chain, when the connection is TLS and the client presented one.
    public var tls: ClientTLS?

    public init(transport: String, peer: String, peerIsLoopback: Bool, headers: [String: String],
                tls: ClientTLS? = nil) {
        self.transport = transport
        self.peer = peer
        self.peerIsLoopback = peerIsLoopback
        self.headers = headers
        self.tls = tls
    }

    /// The peer's IP address without the port ("127.0.0.1", "::1"), or the peer as given when it has none.
    public var peerAddress: String {
        if peer.hasPrefix("["), let close = peer.firstIndex(of: "]") {
            return String(peer[peer.index(after: peer.startIndex)..<close])
        }
        if let colon = peer.lastIndex(of: ":"), peer.firstIndex(of: ":") == colon {
            return String(peer[..<colon])
        }
        return peer
    }

    var authenticateRequest: JSON {
        var h = JSONObject()
        for (k, v) in headers.sorted(by: { $0.key < $1.key }) { h[k] = .string(v) }
        var o: JSONObject = [
            "transport": .string(transport),
            "peer": ["address": .string(peer), "loopback": .bool(peerIsLoopback)],
            "headers": .object(h),
        ]
        if let tls {
            o["tls"] = [
                "client_certificates": .array(tls.certificates.map { .string($0) }), "verified": .bool(tls.verified),
            ]
        }
        return .object(o)
    }
}

/// The client certificate chain of a TLS connection, as identity plugins get it (`tls` in `authenticate`).
public struct ClientTLS: Sendable, Equatable {
    /// The leaf first, then the rest of the chain the client sent, each as PEM.
    public var certificates: [String]
    /// True when the TLS layer verified the chain against `server.http.tls.client_ca_file`.
    public var verified: Bool

    public init(certificates: [String], verified: Bool) {
        self.certificates = certificates
        self.verified = verified
    }
}

/// The identity chain's verdict for one request.
public struct Identity: Sendable {
    public var principal: Principal
    /// The label of the plugin that authenticated (in `all` mode, the first of them), and why.
    public var plugin: String
    public var reason: String
    /// Every plugin that authenticated the caller: one in `first` mode, all of the chain in `all` mode.
    public var plugins: [String]
    /// Every plugin asked, in order, with its answer (for the audit record).
    public var answers: [IdentityAnswer]
    public var mode: IdentityMode

    public init(principal: Principal, plugins: [String], reason: String, answers: [IdentityAnswer] = [],
                mode: IdentityMode = .first) {
        self.principal = principal
        self.plugin = plugins.first ?? ""
        self.plugins = plugins
        self.reason = reason
        self.answers = answers
        self.mode = mode
    }

    /// Plugins that abstained, with their reasons.
    public var abstained: [(plugin: String, reason: String)] {
        answers.filter { $0.result == "abstain" }.map { ($0.plugin, $0.reason) }
    }

    var auditJSON: JSON {
        [
            "plugin": .string(plugin), "plugins": .array(plugins.map { .string($0) }), "mode": .string(mode.rawValue),
            "reason": .string(reason),
            "abstained": .array(abstained.map { ["plugin": .string($0.plugin), "reason": .string($0.reason)] }),
            "answers": .array(answers.map(\.json)),
        ]
    }
}

/// Why the identity chain did not produce a principal.
public struct AuthenticationFailure: Error, Sendable {
    /// The plugin that refused (rejected, failed, or in `all` mode abstained), or nil when every plugin
    /// abstained in `first` mode.
    public var plugin: String?
    public var reason: String
    /// Every plugin asked, in order, with its answer.
    public var answers: [IdentityAnswer]
    /// The refusing plugin's RFC 6750 challenge, if it gave one.
    public var challenge: AuthChallenge?
    /// 401, or 403 for `insufficient_scope` (AUTH-5).
    public var status: Int
    /// Correlation id of the audit record written for this failure.
    public var correlationID: String

    /// Plugins that abstained, with their reasons.
    public var abstained: [(plugin: String, reason: String)] {
        answers.filter { $0.result == "abstain" }.map { ($0.plugin, $0.reason) }
    }
}
