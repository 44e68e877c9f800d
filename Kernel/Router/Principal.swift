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

    public init(transport: String, peer: String, peerIsLoopback: Bool, headers: [String: String]) {
        self.transport = transport
        self.peer = peer
        self.peerIsLoopback = peerIsLoopback
        self.headers = headers
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
        return [
            "transport": .string(transport),
            "peer": ["address": .string(peer), "loopback": .bool(peerIsLoopback)],
            "headers": .object(h),
        ]
    }
}

/// The identity chain's verdict for one request.
public struct Identity: Sendable {
    public var principal: Principal
    /// The plugin label that authenticated, and why.
    public var plugin: String
    public var reason: String
    /// Plugins that abstained before it, with their reasons (for the audit record).
    public var abstained: [(plugin: String, reason: String)]

    var auditJSON: JSON {
        [
            "plugin": .string(plugin), "reason": .string(reason),
            "abstained": .array(abstained.map { ["plugin": .string($0.plugin), "reason": .string($0.reason)] }),
        ]
    }
}

/// Why the identity chain did not produce a principal.
public struct AuthenticationFailure: Error, Sendable {
    /// The plugin that rejected, or nil when every plugin abstained.
    public var plugin: String?
    public var reason: String
    public var abstained: [(plugin: String, reason: String)]
    /// Correlation id of the audit record written for this failure.
    public var correlationID: String
}
