import MCPGJSON

#if canImport(Glibc)
import Glibc
#endif

/// An MCP client for one upstream server: one connection and session, shared by every call, kept alive and
/// re-established in the background with backoff when it ends (DESIGN §7).
///
/// Lifecycle: `init` validates the config; `start()` begins connecting in the background and returns at once;
/// `close()` ends everything (stdio: close stdin, wait, SIGTERM, SIGKILL; HTTP: DELETE the session). Calls made
/// while the first connection attempt is under way wait for its outcome; calls made while the upstream is down
/// fail at once with -32004 and the reason, never hang.
///
/// Requests: our own ids per connection; a deadline per request (`timeout_ms`; on expiry the upstream gets
/// `notifications/cancelled` and the call fails with -32004); a cancelled calling Task sends
/// `notifications/cancelled` and ends with `CancellationError`; the upstream's JSON-RPC errors are thrown as
/// `MCPClientError` with their code, transport failures as -32004. Each call may bring `CallHooks`: progress
/// is requested upstream under a token of ours and relayed with the caller's token; the upstream's
/// `sampling/createMessage`, `elicitation/create` and `roots/list` are answered through the call's `request`
/// hook when they relate to it (on HTTP: they came on its POST stream; otherwise — stdio, legacy SSE, or an
/// HTTP server's GET stream — it is the only call in flight that has a hook). Everything the upstream says about changes (list_changed, resource
/// updates) and the connection's health go to `events()`.
public final class MCPClient: Sendable {
    public enum LogLevel: Sendable { case debug, info, notice, warning, error }
    /// Called from any thread with a constant message and metadata (never a credential).
    public typealias LogFunction = @Sendable (LogLevel, String, [String: String]) -> Void

    /// What one call brings along for the client that made it.
    public struct CallHooks: Sendable {
        /// The client's `_meta.progressToken`, if it asked for progress.
        public var progressToken: JSON?
        /// Receives messages for the call's client: `notifications/progress` (with the client's token) and
        /// `notifications/message` that came on the call's stream.
        public var notify: (@Sendable (JSON) -> Void)?
        /// Answers a request of the upstream (method, params) through the call's client; throw `MCPClientError`
        /// to answer with that error.
        public var request: (@Sendable (String, JSON?) async throws -> JSON)?

        public init(
            progressToken: JSON? = nil, notify: (@Sendable (JSON) -> Void)? = nil,
            request: (@Sendable (String, JSON?) async throws -> JSON)? = nil
        ) {
            self.progressToken = progressToken
            self.notify = notify
            self.request = request
        }
    }

    /// The connection as `events()` reports it.
    public enum Health: Sendable, Equatable {
        case connecting
        case up
        case down(String)
    }

    /// The version we ask for in `initialize`.
    public static let protocolVersion = "2025-11-25"
    /// Versions we accept in the answer (LIFE-3).
    public static let supportedVersions = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"]
    /// Server requests relayed to the call's client.
    static let relayedRequests: Set<String> = ["sampling/createMessage", "elicitation/create", "roots/list"]
    /// Notifications that describe upstream changes, reported by `events()`.
    static let changeNotifications: Set<String> = [
        "notifications/tools/list_changed", "notifications/prompts/list_changed",
        "notifications/resources/list_changed", "notifications/resources/updated",
    ]
    /// Most pages read for one list before giving up.
    public static let maxPages = 1000

    public let config: Config
    let clientVersion: String
    let log: LogFunction
    let environment: @Sendable (String) -> String?
    let http: HTTPConnection?
    let state = MutexBox(State())

    /// Validates `config` and prepares the transport (reads the bearer token and TLS files). Starts nothing.
    /// - Parameters:
    ///   - clientVersion: `clientInfo.version` sent in `initialize`.
    ///   - environment: looks up the gateway's environment variables (`env_allow`, `bearer_token_env`).
    /// - Throws: `MCPConfigError`.
    public init(
        config: Config, clientVersion: String = "1.0.0",
        environment: @escaping @Sendable (String) -> String? = { name in getenv(name).map { String(cString: $0) } },
        log: @escaping LogFunction
    ) throws {
        try config.validate()
        self.config = config
        self.clientVersion = clientVersion
        self.environment = environment
        self.log = log
        http = config.transport == .stdio ? nil : try HTTPConnection(config: config, environment: environment)
    }

    // MARK: State

    struct Session: Sendable {
        let transport: any Transport
        let generation: Int
        let capabilities: JSON
        let serverInfo: JSON
        let protocolVersion: String
    }

    enum Phase: Sendable {
        case idle
        case connecting
        case up(Session)
        case down(String)
        case closed
    }

    struct Pending {
        let continuation: CheckedContinuation<JSON, any Error>
        let method: String
        let generation: Int
        let hooks: CallHooks?
        let ourToken: String?
        let transport: any Transport
        let cancellable: Bool
        var timer: Task<Void, Never>?
        var sender: Task<Void, Never>?
    }

    struct State {
        var phase: Phase = .idle
        var generation = 0
        var nextID: Int64 = 0
        var pending: [Int64: Pending] = [:]
        /// Ids cancelled before their request was registered.
        var cancelledEarly: Set<Int64> = []
        /// Our progress tokens → the request they belong to.
        var tokens: [String: Int64] = [:]
        var watchers: [Int: AsyncStream<JSON>.Continuation] = [:]
        var nextWatcher = 0
        /// Callers waiting for the phase to change.
        var phaseWaiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
        var subscriptions: [String] = []
        /// The upstream's requests being answered, by their id's JSON text.
        var inbound: [String: Task<Void, Never>] = [:]
        /// Upstream requests it cancelled while we were answering them: their answer is dropped.
        var cancelledInbound: Set<String> = []
        var lastHealth: String?
        var everUp = false
        var runner: Task<Void, Never>?
    }

    /// The connection's current health.
    public var health: Health {
        state.withLock { s in
            switch s.phase {
            case .idle, .connecting: return .connecting
            case .up: return .up
            case .down(let reason): return .down(reason)
            case .closed: return .down("closed")
            }
        }
    }

    /// The upstream's `capabilities` from `initialize`, while connected.
    public var serverCapabilities: JSON? {
        state.withLock { s in if case .up(let session) = s.phase { return session.capabilities } else { return nil } }
    }

    /// The upstream's `serverInfo` and the negotiated protocol version, while connected.
    public var serverInfo: (info: JSON, protocolVersion: String)? {
        state.withLock { s in
            if case .up(let session) = s.phase {
                return (session.serverInfo, session.protocolVersion)
            } else {
                return nil
            }
        }
    }

    // MARK: Lifecycle

    /// Starts connecting in the background; returns at once. Calling it again does nothing.
    public func start() {
        state.withLock { s in
            guard s.runner == nil, case .idle = s.phase else { return }
            s.phase = .connecting
            s.runner = Task { [self] in await run() }
        }
    }

    /// Ends the connection and every call in flight (-32004), and stops reconnecting. Idempotent.
    public func close() async {
        let (runner, session, pending, inbound, waiters) = state.withLock { s in
            let session: Session? = if case .up(let x) = s.phase { x } else { nil }
            s.phase = .closed
            defer {
                s.pending = [:]
                s.tokens = [:]
                s.inbound = [:]
                s.phaseWaiters = [:]
            }
            return (s.runner, session, s.pending, s.inbound, s.phaseWaiters)
        }
        for (_, p) in pending {
            p.timer?.cancel()
            p.sender?.cancel()
            p.continuation.resume(throwing: MCPClientError.unavailable("the backend is shutting down"))
        }
        inbound.values.forEach { $0.cancel() }
        waiters.values.forEach { $0.resume() }
        runner?.cancel()
        if let session { await session.transport.close() }
        await runner?.value
        let watchers = state.withLock { s in
            defer { s.watchers = [:] }
            return s.watchers
        }
        watchers.values.forEach { $0.finish() }
        await http?.shutdown()
    }

    private var isClosed: Bool { state.withLock { if case .closed = $0.phase { true } else { false } } }

    /// Sets the phase and wakes everyone waiting for a change.
    private func setPhase(_ phase: Phase, unlessClosed: Bool = true) -> Bool {
        let (ok, waiters) = state.withLock { s -> (Bool, [CheckedContinuation<Void, Never>]) in
            if unlessClosed, case .closed = s.phase { return (false, []) }
            s.phase = phase
            defer { s.phaseWaiters = [:] }
            return (true, Array(s.phaseWaiters.values))
        }
        waiters.forEach { $0.resume() }
        return ok
    }

    /// Connects, waits for the connection to end, and reconnects with backoff, until `close()`.
    private func run() async {
        var backoff = Backoff(initialMs: config.restart.initialMs, maxMs: config.restart.maxMs)
        while !Task.isCancelled {
            let generation = state.withLock { s -> Int? in
                if case .closed = s.phase { return nil }
                s.generation += 1
                return s.generation
            }
            guard let generation, setPhase(.connecting) else { return }
            let transport = makeTransport()
            let ended = EndSignal()
            let sink = TransportSink(
                message: { [weak self] message, origin in
                    self?.receive(message, origin: origin, generation: generation, transport: transport)
                },
                closed: { [weak self] reason in
                    self?.failPending(generation: generation, reason: reason.reason)
                    ended.fire(reason)
                })
            let session: Session
            do {
                session = try await withDeadline(ms: config.connectTimeoutMs, what: "connecting") {
                    try await self.connect(transport, sink: sink, generation: generation)
                }
            } catch {
                let reason = (error as? MCPClientError)?.message ?? (error as? TransportError)?.message ?? "\(error)"
                transport.fail(TransportClosed(reason: reason))
                failPending(generation: generation, reason: reason)
                if isClosed || Task.isCancelled { return }
                _ = setPhase(.down(reason))
                log(.warning, "upstream connection failed", ["mcp.error": reason])
                emitHealth("down", reason)
                try? await Task.sleep(for: .milliseconds(backoff.next()))
                continue
            }
            let restarted = state.withLock { s -> Bool in
                defer { s.everUp = true }
                return s.everUp
            }
            guard setPhase(.up(session)) else {
                await transport.close()
                return
            }
            backoff.reset()
            log(
                .info, "upstream connected",
                [
                    "mcp.server": session.serverInfo["name"]?.stringValue ?? "",
                    "mcp.protocol": session.protocolVersion,
                ])
            emitHealth("up", restarted ? "reconnected" : "connected")
            if restarted {
                for kind in ["tools", "prompts", "resources"] {
                    broadcast(["jsonrpc": "2.0", "method": .string("notifications/\(kind)/list_changed")])
                }
            }
            let reason = await ended.wait()
            transport.fail(reason)
            if isClosed { return }
            if reason.sessionExpired {
                log(.notice, "upstream session expired; initializing a new one", [:])
                _ = setPhase(.connecting)
                continue
            }
            _ = setPhase(.down(reason.reason))
            log(.warning, "upstream connection lost", ["mcp.error": reason.reason])
            emitHealth("down", reason.reason)
            try? await Task.sleep(for: .milliseconds(backoff.next()))
        }
    }

    private func makeTransport() -> any Transport {
        switch config.transport {
        case .stdio:
            var vars: [String: String] = [:]
            for name in config.envAllow { if let v = environment(name) { vars[name] = v } }
            for (k, v) in config.env { vars[k] = v }
            let settings = StdioTransport.Settings(
                command: config.command, environment: vars.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" },
                cwd: config.cwd)
            return StdioTransport(settings: settings, log: log)
        case .http:
            return StreamableHTTPTransport(connection: http!, backoff: config.restart, log: log)
        case .sse:
            return LegacySSETransport(connection: http!, log: log)
        }
    }

    /// Starts the transport and runs the handshake (LIFE-1..4).
    private func connect(_ transport: any Transport, sink: TransportSink, generation: Int) async throws -> Session {
        try await transport.start(sink)
        let params: JSON = [
            "protocolVersion": .string(Self.protocolVersion),
            "capabilities": [
                "sampling": [:], "elicitation": ["form": [:], "url": [:]], "roots": ["listChanged": false],
            ],
            "clientInfo": ["name": "mcpg", "version": .string(clientVersion)],
        ]
        let result = try await send(
            "initialize", params: params, hooks: nil, transport: transport, generation: generation,
            timeoutMs: config.connectTimeoutMs, cancellable: false)
        guard let version = result["protocolVersion"]?.stringValue else {
            throw MCPClientError.unavailable("upstream answered initialize without protocolVersion")
        }
        guard Self.supportedVersions.contains(version) else {
            let supported = Self.supportedVersions.joined(separator: ", ")
            throw MCPClientError.unavailable(
                "upstream speaks MCP protocol version \(truncated(version, 40)); supported: \(supported)")
        }
        _ = try await transport.send(["jsonrpc": "2.0", "method": "notifications/initialized"], requestID: nil)
        transport.initialized(protocolVersion: version)
        let session = Session(
            transport: transport, generation: generation, capabilities: result["capabilities"] ?? [:],
            serverInfo: result["serverInfo"] ?? [:], protocolVersion: version)
        await setUp(session)
        return session
    }

    /// Sets the log level and renews resource subscriptions on a new session, before calls can use it; a
    /// refusal is logged, not fatal.
    private func setUp(_ session: Session) async {
        if let level = config.logLevel, session.capabilities["logging"]?.objectValue != nil {
            do {
                _ = try await send(
                    "logging/setLevel", params: ["level": .string(level)], hooks: nil, transport: session.transport,
                    generation: session.generation, timeoutMs: config.timeoutMs, cancellable: true)
            } catch {
                log(.warning, "upstream refused logging/setLevel", ["mcp.error": "\(error)"])
            }
        }
        for uri in state.withLock({ $0.subscriptions }) {
            if Task.isCancelled { return }
            do {
                _ = try await send(
                    "resources/subscribe", params: ["uri": .string(uri)], hooks: nil, transport: session.transport,
                    generation: session.generation, timeoutMs: config.timeoutMs, cancellable: true)
            } catch {
                log(
                    .warning, "resubscribing a resource failed",
                    ["mcp.uri": truncated(uri, 200), "mcp.error": "\(error)"])
            }
        }
    }

    // MARK: Requests

    /// The session to send on: now if up; after the attempt under way if connecting; else -32004.
    func currentSession(newerThan generation: Int = 0) async throws -> Session {
        let deadline = ContinuousClock.now + .milliseconds(config.connectTimeoutMs + 1000)
        while true {
            let phase = state.withLock { $0.phase }
            switch phase {
            case .up(let session) where session.generation > generation: return session
            case .down(let reason): throw MCPClientError.unavailable("upstream unavailable: \(reason)")
            case .closed: throw MCPClientError.unavailable("the backend is shutting down")
            case .idle: throw MCPClientError.unavailable("the client was not started")
            case .connecting, .up:
                guard ContinuousClock.now < deadline else {
                    throw MCPClientError.unavailable("upstream is still connecting")
                }
                try await waitForPhaseChange(newerThan: generation, until: deadline)
            }
        }
    }

    private func waitForPhaseChange(newerThan generation: Int, until deadline: ContinuousClock.Instant) async throws {
        let id = state.withLock { s in
            s.nextWaiter += 1
            return s.nextWaiter
        }
        let timer = Task { [self] in
            try? await Task.sleep(until: deadline, clock: .continuous)
            state.withLock { $0.phaseWaiters.removeValue(forKey: id) }?.resume()
        }
        defer { timer.cancel() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let phaseIsSettled = state.withLock { s -> Bool in
                    if Task.isCancelled { return true }
                    switch s.phase {
                    case .connecting: break
                    case .up(let session) where session.generation > generation: return true
                    case .up: break
                    default: return true
                    }
                    s.phaseWaiters[id] = c
                    return false
                }
                if phaseIsSettled { c.resume() }
            }
        } onCancel: {
            state.withLock { $0.phaseWaiters.removeValue(forKey: id) }?.resume()
        }
        try Task.checkCancellation()
    }

    /// Sends one request on the current session and returns its `result`.
    /// - Throws: `MCPClientError` (the upstream's error, or -32004), `CancellationError`.
    public func request(_ method: String, params: JSON? = nil, hooks: CallHooks? = nil) async throws -> JSON {
        let session = try await currentSession()
        do {
            return try await send(
                method, params: params, hooks: hooks, transport: session.transport, generation: session.generation,
                timeoutMs: config.timeoutMs, cancellable: true)
        } catch let e as MCPClientError where e.sessionExpired {
            // HTTP-13: the upstream forgot the session; initialize a new one and retry once.
            session.transport.fail(TransportClosed(reason: "upstream session expired", sessionExpired: true))
            let fresh = try await currentSession(newerThan: session.generation)
            return try await send(
                method, params: params, hooks: hooks, transport: fresh.transport, generation: fresh.generation,
                timeoutMs: config.timeoutMs, cancellable: true)
        }
    }

    private func send(
        _ method: String, params: JSON?, hooks: CallHooks?, transport: any Transport, generation: Int,
        timeoutMs: Int, cancellable: Bool
    ) async throws -> JSON {
        let (id, token) = state.withLock { s -> (Int64, String?) in
            s.nextID += 1
            return (s.nextID, hooks?.progressToken == nil ? nil : "mcpg-\(generation)-\(s.nextID)")
        }
        var message: JSONObject = ["jsonrpc": "2.0", "id": .int(id), "method": .string(method)]
        if var p = params?.objectValue {
            if let token {
                var meta = p["_meta"]?.objectValue ?? [:]
                meta["progressToken"] = .string(token)
                p["_meta"] = .object(meta)
            }
            message["params"] = .object(p)
        } else if let params {
            message["params"] = params
        } else if let token {
            message["params"] = ["_meta": ["progressToken": .string(token)]]
        }
        let frame = JSON.object(message)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<JSON, any Error>) in
                let registered = state.withLock { s -> Bool in
                    if s.cancelledEarly.remove(id) != nil { return false }
                    if case .closed = s.phase { return false }
                    s.pending[id] = Pending(
                        continuation: c, method: method, generation: generation, hooks: hooks, ourToken: token,
                        transport: transport, cancellable: cancellable)
                    if let token { s.tokens[token] = id }
                    return true
                }
                guard registered else {
                    c.resume(
                        throwing: isClosed
                            ? MCPClientError.unavailable("the backend is shutting down") : CancellationError())
                    return
                }
                let timer = Task { [weak self] in
                    try? await Task.sleep(for: .milliseconds(timeoutMs))
                    if !Task.isCancelled { self?.timedOut(id, after: timeoutMs) }
                }
                let sender = Task { [weak self] in
                    do {
                        if try await transport.send(frame, requestID: id) {
                            self?.fail(
                                id, MCPClientError.unavailable("upstream ended its answer stream without answering"))
                        }
                    } catch {
                        self?.sendFailed(id, error, transport: transport)
                    }
                }
                let orphan = state.withLock { s -> Bool in
                    guard s.pending[id] != nil else { return true }
                    s.pending[id]?.timer = timer
                    s.pending[id]?.sender = sender
                    return false
                }
                if orphan { timer.cancel() }
            }
        } onCancel: {
            cancelRequest(id, reason: "cancelled by the client")
        }
    }

    /// Removes a pending request, if still there.
    private func take(_ id: Int64) -> Pending? {
        state.withLock { s in
            guard let p = s.pending.removeValue(forKey: id) else { return nil }
            if let t = p.ourToken { s.tokens[t] = nil }
            return p
        }
    }

    private func fail(_ id: Int64, _ error: any Error) {
        guard let p = take(id) else { return }
        p.timer?.cancel()
        p.continuation.resume(throwing: error)
    }

    private func sendFailed(_ id: Int64, _ error: any Error, transport: any Transport) {
        let e = (error as? TransportError) ?? TransportError(message: "\(error)")
        var failure = MCPClientError.unavailable(e.message)
        failure.sessionExpired = e.sessionExpired
        fail(id, failure)
        if e.connectionLost { transport.fail(TransportClosed(reason: e.message)) }
    }

    private func timedOut(_ id: Int64, after ms: Int) {
        guard let p = take(id) else { return }
        p.continuation.resume(
            throwing: MCPClientError.unavailable("upstream did not answer \(p.method) within \(ms) ms"))
        abandon(p, id: id, reason: "timeout")
    }

    private func cancelRequest(_ id: Int64, reason: String) {
        let p = state.withLock { s -> Pending? in
            guard let p = s.pending.removeValue(forKey: id) else {
                s.cancelledEarly.insert(id)
                return nil
            }
            if let t = p.ourToken { s.tokens[t] = nil }
            return p
        }
        guard let p else { return }
        p.timer?.cancel()
        p.continuation.resume(throwing: CancellationError())
        abandon(p, id: id, reason: reason)
    }

    /// Tells the upstream to stop working on a request we no longer wait for (CANC-1), then drops its stream.
    private func abandon(_ p: Pending, id: Int64, reason: String) {
        guard p.cancellable else {
            p.sender?.cancel()
            return
        }
        let note: JSON = [
            "jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": ["requestId": .int(id), "reason": .string(reason)],
        ]
        let sender = p.sender
        let transport = p.transport
        Task {
            _ = try? await transport.send(note, requestID: nil)
            sender?.cancel()
        }
    }

    /// Fails every request of a connection that ended.
    private func failPending(generation: Int, reason: String) {
        let failed = state.withLock { s -> [Pending] in
            let ids = s.pending.filter { $0.value.generation == generation }.map(\.key)
            var out: [Pending] = []
            for id in ids {
                if let p = s.pending.removeValue(forKey: id) {
                    if let t = p.ourToken { s.tokens[t] = nil }
                    out.append(p)
                }
            }
            return out
        }
        for p in failed {
            p.timer?.cancel()
            p.sender?.cancel()
            p.continuation.resume(throwing: MCPClientError.unavailable(reason))
        }
    }

    // MARK: Incoming messages

    private func receive(_ message: JSON, origin: Int64?, generation: Int, transport: any Transport) {
        if let method = message["method"]?.stringValue {
            if let id = message["id"], !id.isNull {
                handleRequest(
                    method, id: id, params: message["params"], origin: origin, generation: generation,
                    transport: transport)
            } else {
                handleNotification(method, message: message, origin: origin)
            }
            return
        }
        guard let id = message["id"]?.intValue else {
            log(.warning, "upstream sent a message that is neither request, notification nor answer", [:])
            return
        }
        let p = state.withLock { s -> Pending? in
            guard let p = s.pending[id], p.generation == generation else { return nil }
            s.pending[id] = nil
            if let t = p.ourToken { s.tokens[t] = nil }
            return p
        }
        guard let p else { return }  // late, cancelled or timed out: ignored (CANC-1)
        p.timer?.cancel()
        if let error = message["error"] {
            p.continuation.resume(throwing: MCPClientError(rpcError: error))
        } else if let result = message["result"], case .object = result {
            p.continuation.resume(returning: result)
        } else {
            p.continuation.resume(
                throwing: MCPClientError.unavailable("upstream answered \(p.method) without a result object"))
        }
    }

    private func handleNotification(_ method: String, message: JSON, origin: Int64?) {
        let params = message["params"]
        switch method {
        case "notifications/progress":
            guard let token = params?["progressToken"]?.stringValue else { return }
            let target = state.withLock { s -> (JSON, @Sendable (JSON) -> Void)? in
                guard let id = s.tokens[token], let hooks = s.pending[id]?.hooks, let theirs = hooks.progressToken,
                    let notify = hooks.notify
                else { return nil }
                return (theirs, notify)
            }
            guard let (theirs, notify) = target, var p = params?.objectValue else { return }
            p["progressToken"] = theirs
            notify(["jsonrpc": "2.0", "method": "notifications/progress", "params": .object(p)])
        case "notifications/message":
            if let origin, let notify = state.withLock({ $0.pending[origin]?.hooks?.notify }) {
                notify(clean(method, params))
                return
            }
            let level: LogLevel =
                switch params?["level"]?.stringValue ?? "info" {
                case "debug": .debug
                case "info": .info
                case "notice": .notice
                case "warning": .warning
                default: .error
                }
            let data = params?["data"].map { $0.stringValue ?? $0.text } ?? ""
            log(
                level, "upstream log message",
                [
                    "mcp.logger": truncated(params?["logger"]?.stringValue ?? "", 100),
                    "mcp.data": truncated(data, 1000),
                ])
        case "notifications/cancelled":
            guard let requestID = params?["requestId"] else { return }
            let key = requestID.text
            let task = state.withLock { s -> Task<Void, Never>? in
                guard let t = s.inbound.removeValue(forKey: key) else { return nil }
                s.cancelledInbound.insert(key)
                return t
            }
            task?.cancel()
        default:
            if Self.changeNotifications.contains(method) {
                broadcast(clean(method, params))
            } else {
                log(.debug, "upstream notification ignored", ["mcp.method": truncated(method, 100)])
            }
        }
    }

    private func clean(_ method: String, _ params: JSON?) -> JSON {
        var o: JSONObject = ["jsonrpc": "2.0", "method": .string(method)]
        if let params { o["params"] = params }
        return .object(o)
    }

    /// A request from the upstream: `ping` is answered here; sampling, elicitation and roots go to the client
    /// of the call they relate to; anything else is -32601.
    private func handleRequest(
        _ method: String, id: JSON, params: JSON?, origin: Int64?, generation: Int, transport: any Transport
    ) {
        func answer(_ body: JSONObject) {
            var m = body
            m["jsonrpc"] = "2.0"
            m["id"] = id
            let frame = JSON.object(m)
            Task { [log] in
                do {
                    _ = try await transport.send(frame, requestID: nil)
                } catch {
                    log(.warning, "answering an upstream request failed", ["mcp.error": "\(error)"])
                }
            }
        }
        if method == "ping" {
            answer(["result": [:]])
            return
        }
        guard Self.relayedRequests.contains(method) else {
            answer(["error": ["code": -32601, "message": .string("Method not found: \(truncated(method, 100))")]])
            return
        }
        let (handler, inFlight) = state.withLock { s -> ((@Sendable (String, JSON?) async throws -> JSON)?, Int) in
            if let origin {
                return (s.pending[origin]?.hooks?.request, 1)
            }
            // Not on a POST's stream (stdio, legacy SSE, or an HTTP server that sends it on the GET stream, as the
            // Swift SDK does): it belongs to the only call in flight that can relay it, if there is exactly one.
            let calls = s.pending.values.filter { $0.generation == generation && $0.hooks?.request != nil }
            return (calls.count == 1 ? calls[0].hooks?.request : nil, calls.count)
        }
        guard let handler else {
            let why =
                inFlight > 1
                ? "\(inFlight) calls are in flight, so the request cannot be tied to one"
                : "no call in flight can relay it"
            log(.notice, "upstream request not relayed", ["mcp.method": method, "mcp.reason": why])
            answer(["error": ["code": -32601, "message": .string("\(method) not available: \(why)")]])
            return
        }
        let key = id.text
        // Created under the lock, so the entry exists before the task can finish and remove it.
        state.withLock { s in
            s.inbound[key] = Task { [weak self] in
                var body: JSONObject
                do {
                    body = ["result": try await handler(method, params)]
                } catch let e as MCPClientError {
                    body = ["error": e.json]
                } catch is CancellationError {
                    body = ["error": ["code": -32800, "message": "request cancelled"]]
                } catch {
                    body = ["error": ["code": -32603, "message": .string("\(error)")]]
                }
                // Not answered when the upstream cancelled it (CANC-1).
                let cancelled = self?.state.withLock { s -> Bool in
                    s.inbound[key] = nil
                    return s.cancelledInbound.remove(key) != nil
                }
                if cancelled == false { answer(body) }
            }
        }
    }

    // MARK: Events

    /// Change notifications and health, as MCP notifications, for as long as the caller iterates: the current
    /// health first (if known), then `notifications/tools/list_changed`, `…/prompts/list_changed`,
    /// `…/resources/list_changed`, `notifications/resources/updated` and `notifications/mcpg/health`
    /// (`{"status": "up"|"down", "reason"}`) as they happen. Finishes at `close()`.
    public func events() -> AsyncStream<JSON> {
        let (stream, continuation) = AsyncStream<JSON>.makeStream(bufferingPolicy: .bufferingNewest(1000))
        let (id, current, closed) = state.withLock { s -> (Int, JSON?, Bool) in
            s.nextWatcher += 1
            if case .closed = s.phase { return (s.nextWatcher, nil, true) }
            s.watchers[s.nextWatcher] = continuation
            var current: JSON?
            switch s.phase {
            case .up: current = Self.healthMessage("up", "connected")
            case .down(let reason): current = Self.healthMessage("down", reason)
            default: break
            }
            return (s.nextWatcher, current, false)
        }
        if closed {
            continuation.finish()
            return stream
        }
        if let current { continuation.yield(current) }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.watchers.removeValue(forKey: id) }
        }
        return stream
    }

    static func healthMessage(_ status: String, _ reason: String) -> JSON {
        [
            "jsonrpc": "2.0", "method": "notifications/mcpg/health",
            "params": ["status": .string(status), "reason": .string(reason)],
        ]
    }

    private func broadcast(_ message: JSON) {
        let watchers = state.withLock { Array($0.watchers.values) }
        for w in watchers { w.yield(message) }
    }

    /// Reports health to watchers when it changes.
    private func emitHealth(_ status: String, _ reason: String) {
        let changed = state.withLock { s -> Bool in
            if s.lastHealth == status { return false }
            s.lastHealth = status
            return true
        }
        if changed { broadcast(Self.healthMessage(status, reason)) }
    }

    // MARK: MCP operations

    /// Every item of a paginated list, following `nextCursor` (PAGE-1); empty when the upstream does not
    /// declare `capability`.
    public func listAll(_ method: String, key: String, capability: String) async throws -> [JSON] {
        let session = try await currentSession()
        guard session.capabilities[capability]?.objectValue != nil else { return [] }
        var items: [JSON] = []
        var cursor: String?
        var seen: Set<String> = []
        for _ in 0..<Self.maxPages {
            let page = try await request(method, params: cursor.map { ["cursor": .string($0)] })
            guard let list = page[key]?.arrayValue else {
                throw MCPClientError.unavailable("upstream answered \(method) without \(key)")
            }
            items += list
            guard let next = page["nextCursor"]?.stringValue, !next.isEmpty else { return items }
            guard seen.insert(next).inserted else {
                throw MCPClientError.unavailable("upstream repeated a cursor in \(method)")
            }
            cursor = next
        }
        throw MCPClientError.unavailable("upstream's \(method) has more than \(Self.maxPages) pages")
    }

    public func listTools() async throws -> [JSON] {
        try await listAll("tools/list", key: "tools", capability: "tools")
    }
    public func listPrompts() async throws -> [JSON] {
        try await listAll("prompts/list", key: "prompts", capability: "prompts")
    }
    public func listResources() async throws -> [JSON] {
        try await listAll("resources/list", key: "resources", capability: "resources")
    }
    public func listResourceTemplates() async throws -> [JSON] {
        try await listAll("resources/templates/list", key: "resourceTemplates", capability: "resources")
    }

    /// `completion/complete` (COMP-1); -32601 when the upstream does not declare `completions`.
    public func complete(_ params: JSON, hooks: CallHooks? = nil) async throws -> JSON {
        let session = try await currentSession()
        guard session.capabilities["completions"]?.objectValue != nil else {
            throw MCPClientError(code: -32601, "upstream offers no completions")
        }
        return try await request("completion/complete", params: params, hooks: hooks)
    }

    /// `resources/subscribe` (RES-6); the subscription is kept and renewed on every new session. -32601 when
    /// the upstream does not declare `resources.subscribe`.
    public func subscribe(uri: String) async throws {
        let session = try await currentSession()
        guard session.capabilities["resources"]?["subscribe"]?.boolValue == true else {
            throw MCPClientError(code: -32601, "upstream offers no resource subscriptions")
        }
        _ = try await request("resources/subscribe", params: ["uri": .string(uri)])
        state.withLock { s in if !s.subscriptions.contains(uri) { s.subscriptions.append(uri) } }
    }

    /// `resources/unsubscribe`; the subscription is forgotten even if the upstream is down.
    public func unsubscribe(uri: String) async throws {
        let known = state.withLock { s -> Bool in
            guard let i = s.subscriptions.firstIndex(of: uri) else { return false }
            s.subscriptions.remove(at: i)
            return true
        }
        if case .up = health {
            _ = try await request("resources/unsubscribe", params: ["uri": .string(uri)])
        } else if !known {
            throw MCPClientError.unavailable("upstream unavailable")
        }
    }

    /// Resources subscribed now.
    public var subscriptions: [String] { state.withLock { $0.subscriptions } }
}

/// Carries the reason a connection ended from the transport to the runner.
private final class EndSignal: Sendable {
    private let state = MutexBox<(TransportClosed?, CheckedContinuation<TransportClosed, Never>?)>((nil, nil))

    func fire(_ reason: TransportClosed) {
        let waiter = state.withLock { s -> CheckedContinuation<TransportClosed, Never>? in
            if s.0 != nil { return nil }
            s.0 = reason
            defer { s.1 = nil }
            return s.1
        }
        waiter?.resume(returning: reason)
    }

    func wait() async -> TransportClosed {
        await withCheckedContinuation { c in
            let ready = state.withLock { s -> TransportClosed? in
                if let r = s.0 { return r }
                s.1 = c
                return nil
            }
            if let ready { c.resume(returning: ready) }
        }
    }
}

/// Runs `body` with a deadline; on expiry it is cancelled and -32004 is thrown.
func withDeadline<T: Sendable>(
    ms: Int, what: String, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .milliseconds(ms))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw CancellationError() }
        guard let value = first else { throw MCPClientError.unavailable("\(what) took longer than \(ms) ms") }
        return value
    }
}
