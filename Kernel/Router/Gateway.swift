import CSodium
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
    public var policyMode: PolicyMode
    public var identityMode: IdentityMode
    /// What a tools/call record keeps of the arguments and the result, by exposed tool name (`audit.record`).
    public var recordModes: @Sendable (String) -> (arguments: AuditRecordMode, result: AuditRecordMode) = { _ in
        (.hash, .hash)
    }
    /// How many authentication refusals per source are recorded one by one (`audit.refusals`).
    public var refusalLimits = RefusalLimits()

    public init(pageSize: Int = 100, callTimeout: Duration = .seconds(30), serverName: String = "mcpg",
                serverVersion: String, policyMode: PolicyMode = .all, identityMode: IdentityMode = .first,
                recordModes: @escaping @Sendable (String) -> (arguments: AuditRecordMode, result: AuditRecordMode) = {
                    _ in (.hash, .hash)
                }, refusalLimits: RefusalLimits = RefusalLimits()) {
        self.recordModes = recordModes
        self.refusalLimits = refusalLimits
        self.policyMode = policyMode
        self.identityMode = identityMode
        self.pageSize = pageSize
        self.callTimeout = callTimeout
        self.serverName = serverName
        self.serverVersion = serverVersion
    }
}

/// How much of a value an audit record keeps.
public enum AuditRecordMode: String, Sendable {
    /// The value itself.
    case full
    /// Its SHA-256 over the compact JSON, as lowercase hex: proves what it was without keeping it.
    case hash
    /// Nothing.
    case omit

    /// Adds `value` to `event` under `key` (full) or `key_sha256` (hash).
    func record(_ value: JSON, as key: String, into event: inout JSONObject) {
        switch self {
        case .full: event[key] = value
        case .hash: event[key + "_sha256"] = .string(AuditHash.sha256Hex(value.serialized()))
        case .omit: break
        }
    }
}

/// SHA-256 for audit records (libsodium).
enum AuditHash {
    static func sha256Hex(_ bytes: [UInt8]) -> String {
        var out = [UInt8](repeating: 0, count: 32)
        _ = crypto_hash_sha256(&out, bytes, UInt64(bytes.count))
        let digits = Array("0123456789abcdef".utf8)
        var hex = [UInt8]()
        hex.reserveCapacity(64)
        for b in out {
            hex.append(digits[Int(b >> 4)])
            hex.append(digits[Int(b & 0xF)])
        }
        return String(decoding: hex, as: UTF8.self)
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
    let identityChain: IdentityChain
    let policy: PolicyChain
    let transforms: [Stage]
    let backends: [String: Stage]
    /// The catalog as it changes (refreshes, backends going down and up).
    public let store: CatalogStore
    /// The current catalog; read it once per request, so one request sees one catalog.
    var catalog: Catalog { store.current }
    let audit: any AuditTrail
    let settings: GatewaySettings
    let logger: Logger
    let cursors = CursorCodec()
    /// Bounds the refusals recorded one by one per source; the rest become summary records.
    let refusals: RefusalLimiter
    /// Task-augmented requests (TASK-*), run by the gateway.
    let tasks = TaskTable()
    /// 2026-07-28 calls waiting for their client's input (NEXT-6).
    let parkedCalls = ParkedCalls()
    /// Visible catalog indices per (principal, transport, peer), for the current catalog generation and the
    /// policy versions in `version`; an entry lives at most `listCacheTTL`, so time-dependent policies catch up.
    let listCache = Mutex<ListCache>(ListCache())
    static let listCacheLimit = 4096
    static let listCacheTTL: Duration = .seconds(10)

    struct ListCache {
        var version = ""
        var entries: [String: (visible: [Int], at: ContinuousClock.Instant)] = [:]
    }

    /// A gateway whose catalog never changes.
    public convenience init(identity: [Stage], policy: [Stage], transforms: [Stage], backends: [String: Stage],
                            catalog: Catalog, audit: any AuditTrail, settings: GatewaySettings, sessions: SessionTable,
                            logger: Logger) {
        self.init(identity: identity, policy: policy, transforms: transforms, backends: backends,
                  store: CatalogStore(fixed: catalog), audit: audit, settings: settings, sessions: sessions,
                  logger: logger)
    }

    public init(identity: [Stage], policy: [Stage], transforms: [Stage], backends: [String: Stage],
                store: CatalogStore, audit: any AuditTrail, settings: GatewaySettings, sessions: SessionTable,
                logger: Logger) {
        self.identity = identity
        identityChain = IdentityChain(stages: identity, mode: settings.identityMode, timeout: settings.callTimeout,
                                      logger: logger)
        self.policy = PolicyChain(stages: policy, mode: settings.policyMode, timeout: settings.callTimeout, logger: logger)
        self.transforms = transforms
        self.backends = backends
        self.store = store
        self.audit = audit
        self.settings = settings
        refusals = RefusalLimiter(settings.refusalLimits)
        self.sessions = sessions
        self.logger = logger
    }

    // MARK: - Identity

    /// Runs the identity chain (`IdentityChain`, in the configured mode) and audits a refusal.
    public func authenticate(_ caller: Caller) async -> Result<Identity, AuthenticationFailure> {
        switch await identityChain.run(caller.authenticateRequest) {
        case .authenticated(let p, let plugins, let reason, let answers):
            return .success(Identity(principal: p, plugins: plugins, reason: reason, answers: answers,
                                     mode: identityChain.mode))
        case .refused(let plugin, let reason, let answers, let challenge, let status):
            let f = AuthenticationFailure(plugin: plugin, reason: reason, answers: answers, challenge: challenge,
                                          status: status, correlationID: RandomID.correlation())
            await auditRefusal(caller, f)
            return .failure(f)
        }
    }

    /// Records a refusal, unless its source has used up its individually recorded refusals for the window
    /// (`RefusalLimiter`); a window that ended with refusals left out is recorded first as a summary.
    private func auditRefusal(_ caller: Caller, _ f: AuthenticationFailure) async {
        let (record, ended) = refusals.admit(
            peer: caller.peerAddress, reason: f.reason, now: .now, ts: UTCTimestamp.now())
        if let ended { await recordRefusalSummary(ended) }
        guard record else { return }
        var identityJSON: JSONObject = [
            "mode": .string(identityChain.mode.rawValue), "reason": .string(f.reason),
            "abstained": .array(f.abstained.map { ["plugin": .string($0.plugin), "reason": .string($0.reason)] }),
            "answers": .array(f.answers.map(\.json)),
        ]
        if let plugin = f.plugin { identityJSON["plugin"] = .string(plugin) }
        var decision: JSONObject = ["effect": "reject", "status": .int(Int64(f.status))]
        if let c = f.challenge { decision["challenge"] = .string(c.error) }
        let event: JSON = [
            "id": .string(f.correlationID), "type": "authentication", "transport": .string(caller.transport),
            "peer": .string(caller.peer), "identity": .object(identityJSON), "decision": .object(decision),
        ]
        do { try await audit.record(event) } catch {
            logger.critical("audit ledger write failed", metadata: ["mcpg.error.id": "\(f.correlationID)", "mcpg.error": "\(error)"])
        }
    }

    /// Records the summaries of the refusal windows that have ended (all of them when `all`, at shutdown).
    public func flushRefusalSummaries(all: Bool = false) async {
        for summary in refusals.drain(now: .now, all: all) { await recordRefusalSummary(summary) }
    }

    /// `{"type":"authentication","peer":source,"decision":{"effect":"reject"},"refusals":{"count","first","last",
    /// "reasons"}}`: `count` refusals from `source` between `first` and `last` that have no record of their own.
    private func recordRefusalSummary(_ s: RefusalLimiter.Summary) async {
        let id = RandomID.correlation()
        let reasons = JSONObject(s.reasons.sorted { $0.key < $1.key }.map { JSONMember($0.key, .int(Int64($0.value))) })
        let event: JSON = [
            "id": .string(id), "type": "authentication", "peer": .string(s.source),
            "decision": ["effect": "reject"],
            "refusals": [
                "count": .int(Int64(s.count)), "first": .string(s.first), "last": .string(s.last),
                "reasons": .object(reasons),
            ],
        ]
        do { try await audit.record(event) } catch {
            logger.critical("audit ledger write failed", metadata: ["mcpg.error.id": "\(id)", "mcpg.error": "\(error)"])
        }
        logger.warning(
            "authentication refusals recorded as one summary",
            metadata: ["mcpg.peer": "\(s.source)", "mcpg.refusals": "\(s.count)"])
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
        case .response(let id, let result):
            answerFromClient(id, ["result": result], session: session)
            return .none
        case .errorResponse(let id, let error):
            if let id { answerFromClient(id, ["error": error.json], session: session) }
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
            return await list(.tools, id: id, params: params, identity: identity, caller: caller, session: session)
        case "tools/call":
            if let p = params, p["task"]?.objectValue != nil, !session.modern {
                return callToolAsTask(id: id, params: p, identity: identity, caller: caller, session: session)
            }
            return await callTool(id: id, params: params, identity: identity, caller: caller, session: session, emit: emit)
        case "tasks/get", "tasks/result", "tasks/list", "tasks/cancel":
            // The sessionless protocol moved tasks to an extension mcpg does not offer (NEXT-8).
            if session.modern { return fail(.methodNotFound(method)) }
            return await taskRequest(method, id: id, params: params, identity: identity)
        case "prompts/list":
            return await list(.prompts, id: id, params: params, identity: identity, caller: caller, session: session)
        case "resources/list":
            return await list(.resources, id: id, params: params, identity: identity, caller: caller, session: session)
        case "resources/templates/list":
            return await list(.templates, id: id, params: params, identity: identity, caller: caller, session: session)
        case "prompts/get":
            return await getPrompt(id: id, params: params, identity: identity, caller: caller, session: session, emit: emit)
        case "resources/read":
            return await readResource(id: id, params: params, identity: identity, caller: caller, session: session,
                                      emit: emit)
        case "resources/subscribe", "resources/unsubscribe":
            return await subscription(method, id: id, params: params, identity: identity, caller: caller, session: session)
        case "completion/complete":
            return await complete(id: id, params: params, identity: identity, caller: caller, session: session)
        case "logging/setLevel":
            // LOG-1: the session's threshold for notifications/message relayed from backends.
            guard let level = params?["level"]?.stringValue, let rank = LogLevels.rank(level) else {
                return fail(.invalidParams("params.level must be one of \(LogLevels.names.joined(separator: ", "))"))
            }
            session.setLogLevel(rank)
            return .frame(.response(id: id, result: .object([:])))
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
        let clientCapabilities = params?["capabilities"] ?? .object([:])
        let session = Session(
            id: caller.transport == "stdio" ? RandomID.session()
                : sessions.newID(owner: identity.principal.id, protocolVersion: version,
                                 clientCapabilities: clientCapabilities, clientInfo: params?["clientInfo"] ?? .null),
            owner: identity.principal.id, protocolVersion: version,
            clientInfo: params?["clientInfo"] ?? .null, clientCapabilities: params?["capabilities"] ?? .object([:]),
            pinned: caller.transport == "stdio")
        let cid = RandomID.correlation()
        var event = auditEvent(cid, type: "initialize", session: session, caller: caller, identity: identity)
        event["protocolVersion"] = .string(version)
        event["clientInfo"] = session.clientInfo
        do { try await audit.record(.object(event)) } catch {
            logger.critical("audit ledger write failed", metadata: ["mcpg.error.id": "\(cid)", "mcpg.error": "\(error)"])
            return .frame(.errorResponse(id: id, error: RPCError.unavailable.withCorrelation(cid)))
        }
        let result: JSON = [
            "protocolVersion": .string(version),
            "capabilities": capabilities,
            "serverInfo": ["name": .string(settings.serverName), "version": .string(settings.serverVersion)],
        ]
        return .initialized(.response(id: id, result: result), session)
    }

    /// LIFE-2, LIFE-8, GW-2: what the backends can serve. A catalog kept by `maintainCatalog` changes whenever a
    /// backend reports a change, is refreshed, goes down past its grace period or comes back, so `listChanged` is
    /// true and prompts and resources are advertised even while empty (a backend may bring them later); a fixed
    /// catalog advertises what it has.
    var capabilities: JSON {
        let catalog = self.catalog
        let changing = !store.settings.isEmpty
        var c: JSONObject = ["tools": ["listChanged": .bool(changing)], "logging": [:], "tasks": Self.tasksCapability]
        if changing || !catalog.prompts.isEmpty { c["prompts"] = ["listChanged": .bool(changing)] }
        if changing || !catalog.resources.isEmpty || !catalog.templates.isEmpty {
            c["resources"] = ["subscribe": true, "listChanged": .bool(changing)]
        }
        if changing || !catalog.prompts.isEmpty || !catalog.templates.isEmpty { c["completions"] = [:] }
        return .object(c)
    }

    // MARK: - Policy

    /// The context policies see: how and from where the client connects, and when.
    func baseContext(_ caller: Caller, _ session: Session) -> JSONObject {
        var c = listContext(caller)
        c["session"] = .string(session.id)
        return c
    }

    /// The context of a list filter: no session, so one principal's filtered catalog is shared across its sessions.
    func listContext(_ caller: Caller) -> JSONObject {
        ["transport": .string(caller.transport), "peer": .string(caller.peerAddress), "time": .string(UTCTimestamp.now())]
    }

    /// The catalog indices of the entries of `kind` that `principal` may see, from the cache when the policy
    /// versions, the catalog and the caller's transport and address are unchanged and the entry is fresh.
    func visible(_ kind: ListKind, _ principal: Principal, in catalog: Catalog, context: JSONObject) async -> [Int] {
        let version = await policy.versionKey().map { $0 + "\u{0}" + String(catalog.generation) }
        let key = kind.rawValue + "\u{0}" + principal.cacheKey + "\u{0}" + (context["transport"]?.stringValue ?? "")
            + "\u{0}" + (context["peer"]?.stringValue ?? "")
        let now = ContinuousClock.now
        if let version, let hit = listCache.withLock({ c -> [Int]? in
            guard c.version == version, let e = c.entries[key], now - e.at < Self.listCacheTTL else { return nil }
            return e.visible
        }) {
            return hit
        }
        let targets = kind.targets(catalog)
        if targets.isEmpty { return [] }
        let verdicts = await policy.decide(principal, targets, context: context)
        let visible = verdicts.indices.filter { verdicts[$0].allow }
        // A list filtered while a policy plugin was failing hides everything; it is not kept. Nor is one whose
        // plugins cannot say when their decisions change.
        if let version, verdicts.allSatisfy(\.settled) {
            listCache.withLock { c in
                if c.version != version { c = ListCache(version: version) }
                if c.entries.count >= Self.listCacheLimit { c.entries.removeAll() }
                c.entries[key] = (visible, now)
            }
        }
        return visible
    }
}
