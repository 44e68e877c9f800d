import CSodium
import Logging
import MCPGFrames
import MCPGJSON

/// Protocol versions of the sessionless protocol (NEXT-1…NEXT-12), newest first. A request that carries
/// `_meta["io.modelcontextprotocol/protocolVersion"]` is served this way; `initialize` selects the handshake-era
/// protocol for its session, so clients of both eras use the same endpoint at the same time.
public let modernProtocolVersions = ["2026-07-28"]

/// Reserved `_meta` keys of the sessionless protocol.
public enum ModernMeta {
    public static let protocolVersion = "io.modelcontextprotocol/protocolVersion"
    public static let clientCapabilities = "io.modelcontextprotocol/clientCapabilities"
    public static let clientInfo = "io.modelcontextprotocol/clientInfo"
    public static let serverInfo = "io.modelcontextprotocol/serverInfo"
    public static let logLevel = "io.modelcontextprotocol/logLevel"
    public static let subscriptionID = "io.modelcontextprotocol/subscriptionId"

    /// The envelope of the client's leg: its protocol version, capabilities, identity and log level.
    static let envelopeKeys = [protocolVersion, clientCapabilities, clientInfo, logLevel]

    /// A request's `_meta` as a backend gets it (BASE-6: untouched), minus the front leg's envelope, which
    /// describes the client's connection to the gateway, not the request, and would make a handshake-era
    /// upstream refuse it. Nil when nothing is left.
    static func forBackend(_ meta: JSON?) -> JSON? {
        guard case .object(var o)? = meta else { return meta }
        guard envelopeKeys.contains(where: { o[$0] != nil }) else { return meta }
        for k in envelopeKeys { o[k] = nil }
        return o.isEmpty ? nil : .object(o)
    }
}

extension Frame {
    /// A request in the sessionless protocol: its `_meta` names the protocol version (NEXT-1).
    public var isModern: Bool {
        guard case .request(_, _, let params) = self else { return false }
        return params?["_meta"]?[ModernMeta.protocolVersion] != nil
    }
}

/// Methods whose results carry `ttlMs` and `cacheScope` (NEXT-10).
let cacheableMethods: Set<String> = [
    "server/discover", "tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read",
]

/// Which parameter `Mcp-Name` must equal, per method (NEXT-9).
let nameBearingMethods = ["tools/call": "name", "prompts/get": "name", "resources/read": "uri"]

extension RPCError {
    static let headerMismatchCode = -32020
    static let unsupportedVersionCode = -32022

    /// The HTTP status of a sessionless request's error answer (NEXT-9): 400 for bad requests, 404 for unknown
    /// methods, 200 otherwise.
    public var modernHTTPStatus: Int {
        switch code {
        case -32700, -32600, -32602, -32020, -32021, -32022: return 400
        case -32601: return 404
        default: return 200
        }
    }
}

extension Gateway {
    /// Serves one request of the sessionless protocol: checks its envelope and (HTTP) routing headers, serves it
    /// in a session that lives as long as the request, and shapes the result (`resultType`, server info, caching
    /// fields). `headers` are the HTTP request's, nil on stdio (no header rung).
    public func handleModern(_ frame: Frame, identity: Identity, caller: Caller, headers: [String: String]?,
                             emit: (@Sendable (JSON) -> Bool)?) async -> Reply {
        guard case .request(let id, let method, let params) = frame else { return .none }
        func fail(_ e: RPCError) -> Reply { .frame(.errorResponse(id: id, error: e)) }
        let session: Session
        switch modernSession(method: method, params: params, identity: identity, headers: headers) {
        case .failure(let e): return fail(e)
        case .success(let s): session = s
        }
        let reply: Reply
        switch method {
        case "server/discover":
            reply = .frame(.response(id: id, result: [
                "supportedVersions": .array((modernProtocolVersions + supportedProtocolVersions).map { .string($0) }),
                "capabilities": modernCapabilities,
            ]))
        case "initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe":
            // Handshake-era methods the sessionless protocol removed (NEXT-4, NEXT-5).
            reply = fail(.methodNotFound(method))
        case "subscriptions/listen":
            reply = await listen(id: id, params: params, session: session, emit: emit)
        case _ where Self.inputRequiredMethods.contains(method):
            reply = await serveWithInput(id: id, method: method, params: params, identity: identity, caller: caller,
                                         session: session, emit: emit)
        default:
            reply = await request(id: id, method: method, params: params, identity: identity, caller: caller,
                                  session: session, emit: emit)
        }
        return shapeModern(reply, method: method)
    }

    /// The session one sessionless request runs in, from its envelope (NEXT-1) after the header rung (NEXT-9).
    func modernSession(method: String, params: JSON?, identity: Identity, headers: [String: String]?)
        -> Result<Session, RPCError>
    {
        guard let meta = params?["_meta"]?.objectValue else {
            return .failure(.invalidParams("params._meta must carry the protocol version and client capabilities"))
        }
        let missing = [ModernMeta.protocolVersion, ModernMeta.clientCapabilities].filter { meta[$0] == nil }
        if !missing.isEmpty {
            return .failure(.invalidParams("params._meta is missing \(missing.joined(separator: ", "))"))
        }
        let version = meta[ModernMeta.protocolVersion]
        if let headers {
            guard let h = headers["mcp-protocol-version"], .string(h) == version else {
                return .failure(RPCError(code: RPCError.headerMismatchCode,
                                         message: "MCP-Protocol-Version header does not match the request's protocol version"))
            }
            guard headers["mcp-method"] == method else {
                return .failure(RPCError(code: RPCError.headerMismatchCode,
                                         message: "Mcp-Method header does not match the request's method"))
            }
            if let key = nameBearingMethods[method], let value = params?[key]?.stringValue,
                Self.decodeHeaderValue(headers["mcp-name"]) != value
            {
                return .failure(RPCError(code: RPCError.headerMismatchCode,
                                         message: "Mcp-Name header does not match the request's \(key)"))
            }
        }
        guard let v = version?.stringValue else {
            return .failure(.invalidParams("the protocol version in params._meta must be a string"))
        }
        guard modernProtocolVersions.contains(v) else {
            return .failure(RPCError(
                code: RPCError.unsupportedVersionCode, message: "Unsupported protocol version",
                data: ["supported": .array(modernProtocolVersions.map { .string($0) }), "requested": .string(v)]))
        }
        let session = Session(
            id: RandomID.session(), owner: identity.principal.id, protocolVersion: v,
            clientInfo: meta[ModernMeta.clientInfo] ?? .null, clientCapabilities: meta[ModernMeta.clientCapabilities] ?? [:],
            pinned: true, modern: true)
        session.markInitialized()
        // NEXT-5: log messages only when the request asks for them, at or above its level.
        let level = meta[ModernMeta.logLevel]?.stringValue.flatMap(LogLevels.rank) ?? LogLevels.names.count
        session.setLogLevel(level)
        return .success(session)
    }

    /// `Mcp-Name` values that are not plain ASCII arrive as `=?base64?…?=` (NEXT-9).
    static func decodeHeaderValue(_ value: String?) -> String? {
        guard let value, value.hasPrefix("=?base64?"), value.hasSuffix("?="), value.utf8.count >= 11 else { return value }
        let inner = Array(value.utf8.dropFirst(9).dropLast(2))
        var out = [UInt8](repeating: 0, count: inner.count)
        var length = 0
        let ok = inner.withUnsafeBufferPointer { b in
            b.withMemoryRebound(to: CChar.self) { c in
                sodium_base642bin(&out, out.count, c.baseAddress, c.count, nil, &length, nil,
                                  sodium_base64_VARIANT_ORIGINAL) == 0
            }
        }
        guard ok else { return nil }
        return String(validating: out.prefix(length), as: UTF8.self)
    }

    /// Capabilities in the sessionless protocol: as the handshake's, without logging/setLevel and subscribe
    /// (replaced by per-request log levels and `subscriptions/listen`).
    var modernCapabilities: JSON {
        guard case .object(var c) = capabilities else { return capabilities }
        c["logging"] = nil
        c["tasks"] = nil
        if case .object(var r)? = c["resources"] { r["subscribe"] = nil; c["resources"] = .object(r) }
        return .object(c)
    }

    /// NEXT-7, NEXT-10, NEXT-11: every result says `resultType` and who answered; cacheable ones say how long;
    /// "resource not found" is -32602.
    func shapeModern(_ reply: Reply, method: String) -> Reply {
        guard case .frame(let frame) = reply else { return reply }
        switch frame {
        case .response(let id, .object(var r)):
            if r["resultType"] == nil { r["resultType"] = "complete" }
            var meta = r["_meta"]?.objectValue ?? [:]
            meta[ModernMeta.serverInfo] = ["name": .string(settings.serverName), "version": .string(settings.serverVersion)]
            r["_meta"] = .object(meta)
            if cacheableMethods.contains(method), r["resultType"] == "complete" {
                // Lists depend on who asks (policy filters them) and change when backends do: private, not cached.
                r["ttlMs"] = 0
                r["cacheScope"] = "private"
            }
            return .frame(.response(id: id, result: .object(r)))
        case .errorResponse(let id, var e) where e.code == -32002:
            e = RPCError(code: -32602, message: e.message, data: e.data)
            return .frame(.errorResponse(id: id, error: e))
        default:
            return reply
        }
    }

    /// subscriptions/listen (NEXT-4): acknowledges the notifications the gateway will send, then carries them on
    /// this request's stream, each tagged with the request's id, until the client goes away (the task is
    /// cancelled) or the gateway shuts down.
    func listen(id: RequestID, params: JSON?, session: Session, emit: (@Sendable (JSON) -> Bool)?) async -> Reply {
        guard let emit else {
            return .frame(.errorResponse(id: id, error: .invalidRequest("subscriptions/listen needs a stream (Accept: text/event-stream)")))
        }
        guard let wanted = params?["notifications"]?.objectValue else {
            return .frame(.errorResponse(id: id, error: .invalidParams("subscriptions/listen needs params.notifications")))
        }
        var honoured: JSONObject = [:]
        var methods: Set<String> = []
        for (key, method) in [("toolsListChanged", "notifications/tools/list_changed"),
                              ("promptsListChanged", "notifications/prompts/list_changed"),
                              ("resourcesListChanged", "notifications/resources/list_changed")]
        where wanted[key]?.boolValue == true {
            honoured[key] = true
            methods.insert(method)
        }
        let uris = (wanted["resourceSubscriptions"]?.arrayValue ?? []).compactMap(\.stringValue)
        if !uris.isEmpty {
            honoured["resourceSubscriptions"] = .array(uris.map { .string($0) })
            for u in uris { session.subscribe(u) }
        }
        let tag = id.json
        @Sendable func tagged(_ m: JSON) -> JSON {
            guard case .object(var o) = m else { return m }
            var p = o["params"]?.objectValue ?? [:]
            var meta = p["_meta"]?.objectValue ?? [:]
            meta[ModernMeta.subscriptionID] = tag
            p["_meta"] = .object(meta)
            o["params"] = .object(p)
            return .object(o)
        }
        guard emit(tagged(["jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged",
                           "params": ["notifications": .object(honoured)]])) else { return .none }
        let forwarded = methods
        _ = session.attachOutbound { m in
            let method = m["method"]?.stringValue ?? ""
            guard forwarded.contains(method) || method == "notifications/resources/updated" else { return true }
            return emit(tagged(m))
        }
        sessions.insert(session)
        defer { sessions.drop(session.id) }
        // Cancellation (the client went away) ends the sleep at once; shutdown closes the session.
        while !Task.isCancelled && !session.isClosed {
            try? await Task.sleep(for: .seconds(1))
        }
        if session.isClosed {
            // Shutdown: the stream ends with a result (NEXT-4).
            return .frame(.response(id: id, result: ["_meta": [ModernMeta.subscriptionID: tag]]))
        }
        return .none
    }
}
