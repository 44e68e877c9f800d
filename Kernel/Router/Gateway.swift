import Logging
import MCPGFrames
import MCPGJSON
import Synchronization

/// Where the router writes every decision and outcome (the audit ledger in production).
public protocol AuditTrail: Sendable {
    /// Appends one event and returns once it is durable. Throws when it cannot be made durable.
    func record(_ event: JSON) async throws
}

/// Settings the router needs from config.
public struct GatewaySettings: Sendable {
    public var pageSize: Int
    public var callTimeout: Duration
    public var serverName: String
    public var serverVersion: String

    public init(pageSize: Int = 100, callTimeout: Duration = .seconds(30), serverName: String = "mcpg",
                serverVersion: String) {
        self.pageSize = pageSize
        self.callTimeout = callTimeout
        self.serverName = serverName
        self.serverVersion = serverVersion
    }
}

/// What the router answers to one frame.
public enum Reply: Sendable {
    /// Nothing to send (notifications, client responses, cancelled requests).
    case none
    /// One response frame.
    case frame(Frame)
    /// The answer to `initialize`, and the session it created.
    case initialized(Frame, Session)
}

/// The kernel's router: identity → policy → transforms → backend → transforms → ledger, plus the MCP methods
/// the gateway answers itself. One instance per process, shared by every front; all state that changes lives
/// in `sessions` and small locked caches.
public final class Gateway: Sendable {
    public let sessions: SessionTable
    let identity: [Stage]
    let policy: [Stage]
    let transforms: [Stage]
    let backends: [String: Stage]
    let catalog: Catalog
    let audit: any AuditTrail
    let settings: GatewaySettings
    let logger: Logger
    let cursors = CursorCodec()
    /// Visible catalog indices per principal, for the current catalog generation.
    let listCache = Mutex<[String: [Int]]>([:])
    static let listCacheLimit = 4096

    public init(identity: [Stage], policy: [Stage], transforms: [Stage], backends: [String: Stage], catalog: Catalog,
                audit: any AuditTrail, settings: GatewaySettings, sessions: SessionTable, logger: Logger) {
        self.identity = identity
        self.policy = policy
        self.transforms = transforms
        self.backends = backends
        self.catalog = catalog
        self.audit = audit
        self.settings = settings
        self.sessions = sessions
        self.logger = logger
    }

    // MARK: - Identity

    /// Runs the identity chain: the first plugin that authenticates wins; a reject stops the chain; when every
    /// plugin abstains the caller is unauthenticated. Failures are audited.
    public func authenticate(_ caller: Caller) async -> Result<Identity, AuthenticationFailure> {
        var abstained: [(plugin: String, reason: String)] = []
        let request = caller.authenticateRequest
        for stage in identity {
            switch await stage.caller.call(op: "authenticate", request: request, timeout: settings.callTimeout, emit: nil) {
            case .failure(let f):
                // Fail closed: a broken identity plugin rejects, it never lets the next one decide.
                logger.error("identity plugin failed", metadata: ["mcpg.plugin.id": "\(stage.label)", "mcpg.error": "\(f.summary)"])
                return .failure(await authFailure(caller, plugin: stage.label, reason: "identity plugin failed", abstained))
            case .success(let answer):
                let reason = answer["reason"]?.stringValue ?? ""
                switch answer["result"]?.stringValue {
                case "authenticated":
                    guard let p = answer["principal"].flatMap(Principal.init(json:)) else {
                        logger.error("identity plugin answered without a principal", metadata: ["mcpg.plugin.id": "\(stage.label)"])
                        return .failure(await authFailure(caller, plugin: stage.label, reason: "identity plugin failed", abstained))
                    }
                    return .success(Identity(principal: p, plugin: stage.label, reason: reason, abstained: abstained))
                case "abstain":
                    abstained.append((stage.label, reason))
                case "reject":
                    return .failure(await authFailure(caller, plugin: stage.label, reason: reason, abstained))
                default:
                    logger.error("identity plugin answered an unknown result", metadata: ["mcpg.plugin.id": "\(stage.label)"])
                    return .failure(await authFailure(caller, plugin: stage.label, reason: "identity plugin failed", abstained))
                }
            }
        }
        return .failure(await authFailure(caller, plugin: nil, reason: "no identity plugin authenticated the caller", abstained))
    }

    private func authFailure(_ caller: Caller, plugin: String?, reason: String,
                             _ abstained: [(plugin: String, reason: String)]) async -> AuthenticationFailure {
        let cid = RandomID.correlation()
        var identityJSON: JSONObject = [
            "reason": .string(reason),
            "abstained": .array(abstained.map { ["plugin": .string($0.plugin), "reason": .string($0.reason)] }),
        ]
        if let plugin { identityJSON["plugin"] = .string(plugin) }
        let event: JSON = [
            "id": .string(cid), "type": "authentication", "transport": .string(caller.transport),
            "peer": .string(caller.peer), "identity": .object(identityJSON),
            "decision": ["effect": "reject"],
        ]
        do { try await audit.record(event) } catch {
            logger.critical("audit ledger write failed", metadata: ["mcpg.error.id": "\(cid)", "mcpg.error": "\(error)"])
        }
        return AuthenticationFailure(plugin: plugin, reason: reason, abstained: abstained, correlationID: cid)
    }

    // MARK: - Frames

    /// Answers one frame from an authenticated caller. `session` is the caller's session, nil before
    /// `initialize`. `emit` delivers messages plugins send during a call to this client.
    public func handle(_ frame: Frame, identity: Identity, caller: Caller, session: Session?,
                       emit: (@Sendable (JSON) -> Bool)? = nil) async -> Reply {
        switch frame {
        case .request(let id, let method, let params):
            return await request(id: id, method: method, params: params, identity: identity, caller: caller,
                                 session: session, emit: emit)
        case .notification(let method, let params):
            notification(method: method, params: params, session: session)
            return .none
        case .response, .errorResponse:
            // The gateway sends no requests to clients yet; answers to unknown requests are ignored (CANC-1).
            return .none
        }
    }

    func request(id: RequestID, method: String, params: JSON?, identity: Identity, caller: Caller, session: Session?,
                 emit: (@Sendable (JSON) -> Bool)?) async -> Reply {
        func fail(_ e: RPCError) -> Reply { .frame(.errorResponse(id: id, error: e)) }
        if method == "initialize" {
            return await initialize(id: id, params: params, identity: identity, caller: caller, existing: session)
        }
        if method == "ping" { return .frame(.response(id: id, result: .object([:]))) }
        guard let session else {
            return fail(.invalidRequest("Session not initialized: send initialize first"))
        }
        if let p = params, p.objectValue == nil { return fail(.invalidParams("params must be an object")) }
        switch method {
        case "tools/list":
            return await listTools(id: id, params: params, identity: identity, caller: caller, session: session)
        case "tools/call":
            return await callTool(id: id, params: params, identity: identity, caller: caller, session: session, emit: emit)
        default:
            return fail(.methodNotFound(method))
        }
    }

    func notification(method: String, params: JSON?, session: Session?) {
        switch method {
        case "notifications/initialized":
            session?.markInitialized()
        case "notifications/cancelled":
            // CANC-1: stop the request if it is ours and in flight; unknown ids are ignored.
            if let rid = params?["requestId"].flatMap(RequestID.init) { session?.cancel(rid) }
        default:
            break
        }
    }

    /// Runs `body` as the task serving request `id` of `session`, so that `notifications/cancelled` can stop it.
    /// Returns nil when the request was cancelled (no answer is sent, CANC-1); an id already in flight in the
    /// session is answered with -32600 without running `body` (BASE-2).
    public func serve(_ id: RequestID, in session: Session?, _ body: @escaping @Sendable () async -> Reply) async -> Reply? {
        guard let session else { return await body() }
        guard session.reserve(id) else {
            return .frame(.errorResponse(id: id, error: .invalidRequest("Request id \(id) is already in use")))
        }
        let box = Mutex<Reply?>(nil)
        // Starts on this thread: no hop until the request really waits (typically for the ledger's fsync).
        let task = Task.immediate {
            let r = await body()
            box.withLock { $0 = r }
        }
        session.attach(id, task)
        await task.value
        session.untrack(id)
        if task.isCancelled { return nil }
        return box.withLock { $0 }
    }

    // MARK: - initialize

    func initialize(id: RequestID, params: JSON?, identity: Identity, caller: Caller, existing: Session?) async -> Reply {
        if existing != nil {
            return .frame(.errorResponse(id: id, error: .invalidRequest("Session is already initialized")))
        }
        guard let requested = params?["protocolVersion"]?.stringValue else {
            return .frame(.errorResponse(id: id, error: .invalidParams("initialize needs params.protocolVersion")))
        }
        if caller.transport == "http" && sessions.isFull {
            logger.warning("session limit reached; initialize refused", metadata: ["mcpg.sessions": "\(sessions.limit)"])
            return .frame(.errorResponse(id: id, error: RPCError(code: -32005, message: "Too many open sessions")))
        }
        // LIFE-3: answer with the requested version when supported, else with our latest.
        let version = supportedProtocolVersions.contains(requested) ? requested : supportedProtocolVersions[0]
        let session = Session(
            id: RandomID.session(), owner: identity.principal.id, protocolVersion: version,
            clientInfo: params?["clientInfo"] ?? .null, clientCapabilities: params?["capabilities"] ?? .object([:]))
        let cid = RandomID.correlation()
        let event: JSON = [
            "id": .string(cid), "type": "initialize", "session": .string(session.id),
            "transport": .string(caller.transport), "peer": .string(caller.peer),
            "principal": identity.principal.json, "identity": identity.auditJSON,
            "protocolVersion": .string(version), "clientInfo": session.clientInfo,
        ]
        do { try await audit.record(event) } catch {
            logger.critical("audit ledger write failed", metadata: ["mcpg.error.id": "\(cid)", "mcpg.error": "\(error)"])
            return .frame(.errorResponse(id: id, error: RPCError.unavailable.withCorrelation(cid)))
        }
        let result: JSON = [
            "protocolVersion": .string(version),
            "capabilities": ["tools": ["listChanged": false]],
            "serverInfo": ["name": .string(settings.serverName), "version": .string(settings.serverVersion)],
        ]
        return .initialized(.response(id: id, result: result), session)
    }

    // MARK: - tools/list

    func listTools(id: RequestID, params: JSON?, identity: Identity, caller: Caller, session: Session) async -> Reply {
        var offset = 0
        if let c = params?["cursor"] {
            guard let s = c.stringValue, let o = cursors.decode(s, generation: catalog.generation) else {
                return .frame(.errorResponse(id: id, error: .invalidParams("Invalid cursor")))
            }
            offset = o
        }
        let visible: [Int]
        let key = identity.principal.cacheKey
        if let cached = listCache.withLock({ $0[key] }) {
            visible = cached
        } else {
            let queries = catalog.tools.map { (action: "tools/list", tool: $0.name, backend: $0.backend) }
            let verdicts = await authorize(identity.principal, queries, context: baseContext(caller, session))
            visible = verdicts.indices.filter { verdicts[$0].allow }
            // A list filtered while a policy plugin was failing hides everything; it is not kept.
            if verdicts.allSatisfy(\.settled) {
                listCache.withLock { c in
                    if c.count >= Self.listCacheLimit { c.removeAll() }
                    c[key] = visible
                }
            }
        }
        guard offset <= visible.count else {
            return .frame(.errorResponse(id: id, error: .invalidParams("Invalid cursor")))
        }
        let end = min(visible.count, offset + settings.pageSize)
        var result: JSONObject = ["tools": .array(visible[offset..<end].map { catalog.tools[$0].tool })]
        if end < visible.count { result["nextCursor"] = .string(cursors.encode(offset: end, generation: catalog.generation)) }
        if offset == 0 {
            let cid = RandomID.correlation()
            let event: JSON = [
                "id": .string(cid), "type": "tools/list", "session": .string(session.id),
                "transport": .string(caller.transport), "peer": .string(caller.peer),
                "principal": identity.principal.json, "identity": identity.auditJSON,
                "decision": ["visible": .int(Int64(visible.count)), "hidden": .int(Int64(catalog.tools.count - visible.count))],
            ]
            do { try await audit.record(event) } catch {
                logger.critical("audit ledger write failed", metadata: ["mcpg.error.id": "\(cid)", "mcpg.error": "\(error)"])
                return .frame(.errorResponse(id: id, error: RPCError.unavailable.withCorrelation(cid)))
            }
        }
        return .frame(.response(id: id, result: .object(result)))
    }

    // MARK: - Policy

    struct Verdict: Sendable {
        var allow: Bool
        var reasons: [String]
        /// False when a policy plugin failed and the verdict is a fail-closed deny (not worth caching).
        var settled = true
    }

    func baseContext(_ caller: Caller, _ session: Session) -> JSONObject {
        ["transport": .string(caller.transport), "peer": .string(caller.peer), "session": .string(session.id)]
    }

    /// Runs the policy chain over a batch of queries. Every plugin must allow and none may deny; a query every
    /// plugin abstains on is denied (deny by default). A failing plugin denies (fail closed).
    func authorize(_ principal: Principal, _ queries: [(action: String, tool: String, backend: String)],
                   context: JSONObject) async -> [Verdict] {
        var verdicts = [Verdict](repeating: Verdict(allow: false, reasons: []), count: queries.count)
        var allowed = [Bool](repeating: false, count: queries.count)
        var denied = [Bool](repeating: false, count: queries.count)
        if queries.isEmpty { return verdicts }
        let request: JSON = [
            "principal": principal.json,
            "queries": .array(queries.map { q in
                ["action": .string(q.action), "resource": ["type": "tool", "name": .string(q.tool), "backend": .string(q.backend)]]
            }),
            "context": .object(context),
        ]
        for stage in policy {
            let answer = await stage.caller.call(op: "authorize", request: request, timeout: settings.callTimeout, emit: nil)
            guard case .success(let a) = answer, let ds = a["decisions"]?.arrayValue, ds.count == queries.count else {
                if case .failure(let f) = answer {
                    logger.error("policy plugin failed", metadata: ["mcpg.plugin.id": "\(stage.label)", "mcpg.error": "\(f.summary)"])
                } else {
                    logger.error("policy plugin answered malformed decisions", metadata: ["mcpg.plugin.id": "\(stage.label)"])
                }
                for i in queries.indices {
                    denied[i] = true
                    verdicts[i].settled = false
                    verdicts[i].reasons.append("\(stage.label): policy plugin failed")
                }
                continue
            }
            for (i, d) in ds.enumerated() {
                let reasons = d["reasons"]?.arrayValue?.compactMap(\.stringValue) ?? []
                switch d["effect"]?.stringValue {
                case "allow":
                    allowed[i] = true
                    verdicts[i].reasons += reasons.map { "\(stage.label):\($0)" }
                case "abstain":
                    break
                default:
                    denied[i] = true
                    verdicts[i].reasons += (reasons.isEmpty ? ["deny"] : reasons).map { "\(stage.label):\($0)" }
                }
            }
        }
        for i in queries.indices {
            verdicts[i].allow = allowed[i] && !denied[i]
            if !allowed[i] && !denied[i] { verdicts[i].reasons.append("default deny") }
        }
        return verdicts
    }
}
