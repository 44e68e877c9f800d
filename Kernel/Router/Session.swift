import CSodium
#if canImport(Glibc)
import Glibc
#endif
import MCPGFrames
import MCPGJSON
import Synchronization

/// Protocol versions the front speaks, newest first (LIFE-3).
public let supportedProtocolVersions = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"]

/// One client session: created by `initialize`, bound to the principal that created it (SEC-3), ended by
/// DELETE, by idle expiry, or by the end of the stdio stream.
public final class Session: Sendable {
    public let id: String
    /// The principal id that initialized the session; requests from anyone else do not see it.
    public let owner: String
    public let protocolVersion: String
    public let clientInfo: JSON
    public let clientCapabilities: JSON

    struct State {
        var initialized = false
        var lastSeen: ContinuousClock.Instant
        /// Requests in flight: their task once it exists (nil while it is being started), and whether a cancel
        /// arrived before it did.
        var inflight: [RequestID: (task: Task<Void, Never>?, cancelled: Bool)] = [:]
        var closed = false
        /// `logging/setLevel` (LOG-1): the least severe level relayed; nil: everything.
        var logLevel: Int?
        /// URIs this session subscribed to (RES-6).
        var subscriptions: Set<String> = []
    }
    let state: Mutex<State>

    /// Where messages not tied to a request go: the GET streams (HTTP-9) or stdout (stdio), newest first.
    struct Outbound {
        var next: UInt64 = 0
        var senders: [(token: UInt64, send: @Sendable (JSON) -> Bool)] = []
    }
    let outbound = Mutex(Outbound())

    /// Requests the gateway sent the client on a plugin's behalf (GW-5, GW-6), by the id the client saw: who
    /// waits for the answer and under which id.
    struct ClientRequest: Sendable {
        var caller: any PluginCaller
        var label: String
        var pluginID: JSON
    }
    let clientRequests = Mutex<(next: UInt64, waiting: [String: ClientRequest])>((0, [:]))

    /// The SSE streams' event logs, for resumption (HTTP-11).
    let logs = Mutex<(next: Int, byStream: [Int: EventLog])>((0, [:]))

    /// Never expires for idleness (the stdio session lives as long as its stream).
    public let pinned: Bool
    /// A sessionless-protocol request's session (NEXT-3): no back channel for requests to the client.
    public let modern: Bool
    /// For a sessionless request: where backends' requests to the client wait to be sent as input requests
    /// (NEXT-6).
    public let inputBridge: InputBridge?

    public init(id: String, owner: String, protocolVersion: String, clientInfo: JSON, clientCapabilities: JSON,
         pinned: Bool = false, modern: Bool = false) {
        self.pinned = pinned
        self.modern = modern
        inputBridge = modern ? InputBridge() : nil
        self.id = id
        self.owner = owner
        self.protocolVersion = protocolVersion
        self.clientInfo = clientInfo
        self.clientCapabilities = clientCapabilities
        state = Mutex(State(lastSeen: .now))
    }

    public var isInitialized: Bool { state.withLock { $0.initialized } }
    func markInitialized() { state.withLock { $0.initialized = true } }
    func touch() { state.withLock { $0.lastSeen = .now } }

    /// Reserves request `id` before its task starts. Returns false when the id is already in flight (BASE-2: ids
    /// are not reused within a session).
    func reserve(_ id: RequestID) -> Bool {
        state.withLock { s in
            if s.inflight[id] != nil { return false }
            s.inflight[id] = (nil, false)
            return true
        }
    }

    /// Records the task serving a reserved request, so `notifications/cancelled` can reach it; cancels it at once
    /// if the cancel came first.
    func attach(_ id: RequestID, _ task: Task<Void, Never>) {
        let cancelNow = state.withLock { s -> Bool in
            guard let entry = s.inflight[id] else { return false }
            s.inflight[id] = (task, entry.cancelled)
            return entry.cancelled
        }
        if cancelNow { task.cancel() }
    }

    func untrack(_ id: RequestID) { _ = state.withLock { $0.inflight.removeValue(forKey: id) } }

    /// Cancels the request with this id if it is in flight (CANC-1); unknown ids are ignored.
    @discardableResult
    public func cancel(_ id: RequestID) -> Bool {
        let task = state.withLock { s -> Task<Void, Never>?? in
            guard let entry = s.inflight[id] else { return nil }
            if entry.task == nil { s.inflight[id] = (nil, true) }
            return .some(entry.task)
        }
        guard let task else { return false }
        task?.cancel()
        return true
    }

    /// Ends the session: cancels everything in flight.
    public func close() {
        let tasks = state.withLock { s -> [Task<Void, Never>] in
            s.closed = true
            return s.inflight.values.compactMap(\.task)
        }
        for t in tasks { t.cancel() }
    }

    public var isClosed: Bool { state.withLock { $0.closed } }

    // MARK: - Messages outside requests

    /// Adds a channel for unsolicited messages; returns the token to remove it with.
    public func attachOutbound(_ send: @escaping @Sendable (JSON) -> Bool) -> UInt64 {
        outbound.withLock { o in
            o.next += 1
            o.senders.insert((o.next, send), at: 0)
            // Older channels are only fallbacks; a few are enough.
            if o.senders.count > 8 { o.senders.removeLast() }
            return o.next
        }
    }

    public func detachOutbound(_ token: UInt64) {
        outbound.withLock { o in o.senders.removeAll { $0.token == token } }
    }

    /// Sends `message` on exactly one channel (HTTP-10), the newest that accepts it; channels that refuse are
    /// dropped. Returns false when none took it (no GET stream open: the message is not kept).
    @discardableResult
    public func notify(_ message: JSON) -> Bool {
        let senders = outbound.withLock { $0.senders }
        for s in senders {
            if s.send(message) { return true }
            detachOutbound(s.token)
        }
        return false
    }

    /// True when a message at RFC 5424 `level` passes the session's `logging/setLevel` (LOG-1).
    func wantsLog(_ level: String) -> Bool {
        guard let min = state.withLock({ $0.logLevel }) else { return true }
        return (LogLevels.rank(level) ?? Int.max) >= min
    }

    func setLogLevel(_ rank: Int) { state.withLock { $0.logLevel = rank } }

    func subscribe(_ uri: String) { _ = state.withLock { $0.subscriptions.insert(uri) } }
    func unsubscribe(_ uri: String) { _ = state.withLock { $0.subscriptions.remove(uri) } }
    func isSubscribed(_ uri: String) -> Bool { state.withLock { $0.subscriptions.contains(uri) } }

    /// Registers a request to the client and returns the id to send it under.
    func expectAnswer(_ r: ClientRequest) -> String {
        clientRequests.withLock { t in
            t.next += 1
            let id = "mcpg-\(t.next)"
            t.waiting[id] = r
            return id
        }
    }

    /// The request an answer from the client belongs to, removed; nil for unknown ids (ignored, CANC-1).
    func takeAnswer(_ id: RequestID) -> ClientRequest? {
        guard case .string(let s) = id else { return nil }
        return clientRequests.withLock { $0.waiting.removeValue(forKey: s) }
    }
}

/// RFC 5424 severities as MCP names them (LOG-1), least severe first.
enum LogLevels {
    static let names = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]
    static func rank(_ name: String) -> Int? { names.firstIndex(of: name) }
}

/// The live sessions of the HTTP front. Short critical sections only; never awaits under the lock.
public final class SessionTable: Sendable {
    let sessions = Mutex<[String: Session]>([:])
    let idleTimeout: Duration
    /// Most sessions open at once; `initialize` beyond it is refused until idle ones expire or are deleted.
    public let limit: Int
    /// Seals session state into session ids, so a session this process does not hold (a restart, another
    /// replica with the same key) is rebuilt from its id.
    public let sealer: SessionSealer
    /// Longest a session id is honoured, from its `initialize`, in seconds.
    public let maxAgeSeconds: Int64
    /// Ids this process ended (DELETE, idle expiry), with their issue time: never rebuilt, so their clients get
    /// 404 and re-initialize (HTTP-13). Kept until the id would be too old anyway.
    let ended = Mutex<[String: Int64]>([:])
    static let endedLimit = 100_000

    public init(idleTimeout: Duration, limit: Int = 10_000, sealer: SessionSealer = .ephemeral(),
                maxAgeSeconds: Int64 = 86_400) {
        self.idleTimeout = idleTimeout
        self.limit = limit
        self.sealer = sealer
        self.maxAgeSeconds = maxAgeSeconds
    }

    /// A new session's id: its state, sealed.
    func newID(owner: String, protocolVersion: String, clientCapabilities: JSON, clientInfo: JSON) -> String {
        // Only the client's name and version ride in the id: the rest of clientInfo is free-form and unbounded.
        var info: JSONObject = [:]
        for k in ["name", "version"] { if let v = clientInfo[k]?.stringValue { info[k] = .string(v) } }
        return sealer.seal(SealedSession(owner: owner, protocolVersion: protocolVersion,
                                         clientCapabilities: clientCapabilities, clientInfo: .object(info),
                                         issuedAt: Self.unixNow()))
    }

    static func unixNow() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec)
    }

    /// Remembers that `id` ended here.
    func markEnded(_ id: String) {
        guard let issued = sealer.open(id)?.issuedAt else { return }
        let now = Self.unixNow()
        ended.withLock { e in
            if e.count >= Self.endedLimit { e = e.filter { now - $0.value < maxAgeSeconds } }
            if e.count < Self.endedLimit { e[id] = issued }
        }
    }

    /// True when no more sessions may be opened.
    public var isFull: Bool { count >= limit }

    public func insert(_ s: Session) { sessions.withLock { $0[s.id] = s } }

    /// The session with this id if it belongs to `principal`; touches it. A session this process does not hold
    /// is rebuilt from its id when the id is ours, not too old and not ended here (the session survives a
    /// restart, or moves to another replica with the same key).
    public func lookup(_ id: String, principal: String) -> Session? {
        if let s = sessions.withLock({ $0[id] }) {
            guard s.owner == principal, !s.isClosed else { return nil }
            s.touch()
            return s
        }
        guard let sealed = sealer.open(id), sealed.owner == principal,
            Self.unixNow() - sealed.issuedAt < maxAgeSeconds, ended.withLock({ $0[id] == nil })
        else { return nil }
        let rebuilt = Session(id: id, owner: sealed.owner, protocolVersion: sealed.protocolVersion,
                              clientInfo: sealed.clientInfo, clientCapabilities: sealed.clientCapabilities)
        rebuilt.markInitialized()
        // Two requests may rebuild it at once: the first one stored wins.
        return sessions.withLock { t in
            if let other = t[id] { return other }
            t[id] = rebuilt
            return rebuilt
        }
    }

    /// Ends a session (DELETE). Returns false when no such session belongs to `principal`.
    public func remove(_ id: String, principal: String) -> Bool {
        let s = sessions.withLock { t -> Session? in
            guard let s = t[id], s.owner == principal else { return nil }
            return t.removeValue(forKey: id)
        }
        if let s {
            markEnded(s.id)
            s.close()
        }
        return s != nil
    }

    /// Ends sessions idle longer than the timeout; returns how many.
    @discardableResult
    public func sweep(now: ContinuousClock.Instant = .now) -> Int {
        let expired = sessions.withLock { t -> [Session] in
            let old = t.values.filter { s in
                !s.pinned && s.state.withLock { now - $0.lastSeen > idleTimeout && $0.inflight.isEmpty }
            }
            for s in old { t.removeValue(forKey: s.id) }
            return old
        }
        for s in expired {
            markEnded(s.id)
            s.close()
        }
        return expired.count
    }

    public var count: Int { sessions.withLock { $0.count } }

    /// Sends a notification to every open session (list changes).
    public func broadcast(_ message: JSON) {
        for s in sessions.withLock({ Array($0.values) }) where s.isInitialized { s.notify(message) }
    }

    /// Sends `notifications/resources/updated` for `uri` to the sessions subscribed to it (RES-6).
    public func broadcastResourceUpdate(_ uri: String) {
        resourceUpdated(uri, notification: [
            "jsonrpc": "2.0", "method": "notifications/resources/updated", "params": ["uri": .string(uri)],
        ])
    }

    /// Sends a backend's `notifications/resources/updated` to the sessions subscribed to `uri` (RES-6).
    func resourceUpdated(_ uri: String, notification: JSON) {
        for s in sessions.withLock({ Array($0.values) }) where s.isSubscribed(uri) { s.notify(notification) }
    }

    /// Removes a session without the principal check (the stdio front, at end of stream).
    public func drop(_ id: String) { _ = sessions.withLock { $0.removeValue(forKey: id) } }

    /// Ends every session (shutdown).
    public func closeAll() {
        let all = sessions.withLock { t -> [Session] in
            defer { t.removeAll() }
            return Array(t.values)
        }
        for s in all { s.close() }
    }
}

/// Random identifiers from the system CSPRNG (getrandom on Linux).
enum RandomID {
    /// `bytes` random bytes from the kernel's CSPRNG, as lowercase hex. The bytes come from `RandomPool`, which
    /// reads them 4 KiB per system call: session, task and trace ids cost no system call each.
    static func hex(bytes: Int) -> String {
        String(unsafeUninitializedCapacity: bytes * 2) { out in
            pool.withLock { $0.take(bytes) { i, b in
                out[2 * i] = hexDigit(b >> 4)
                out[2 * i + 1] = hexDigit(b & 0xF)
            } }
            return bytes * 2
        }
    }

    @inline(__always) static func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? 48 + v : 87 + v }

    private static let pool = Mutex(RandomPool())

    /// A session id: 128 bits, visible ASCII (HTTP-12).
    static func session() -> String { hex(bytes: 16) }
    /// A short correlation id shared by the client's answer, the log and the audit record: unique within the
    /// process and unpredictable across processes, without a system call per request. It is a counter, offset by
    /// a random per-process seed, through the SplitMix64 finalizer (a bijection, so distinct counters never
    /// collide). It identifies a call; it is not a secret.
    static func correlation() -> String {
        var z = correlationSeed &+ correlationCounter.wrappingAdd(1, ordering: .relaxed).oldValue &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return String(unsafeUninitializedCapacity: 16) { out in
            for i in 0..<16 { out[15 - i] = hexDigit(UInt8(truncatingIfNeeded: z >> (UInt64(i) * 4)) & 0xF) }
            return 16
        }
    }

    private static let correlationSeed: UInt64 = {
        var g = SystemRandomNumberGenerator()
        return g.next()
    }()
    private static let correlationCounter = Atomic<UInt64>(0)
}

/// Random bytes from the kernel CSPRNG, fetched 4 KiB at a time and handed out once each. What it hands out is the
/// kernel CSPRNG's output, unchanged; only the number of system calls differs.
struct RandomPool {
    private var buffer = [UInt8](repeating: 0, count: 4096)
    private var next = 4096
    private static let sodiumReady: Bool = sodium_init() >= 0

    /// Calls `body` with each of `count` fresh random bytes and its index.
    mutating func take(_ count: Int, _ body: (Int, UInt8) -> Void) {
        for i in 0..<count {
            if next == buffer.count { refill() }
            body(i, buffer[next])
            buffer[next] = 0
            next += 1
        }
    }

    private mutating func refill() {
        // libsodium's randombytes_buf reads getrandom(2) (or /dev/urandom where that is missing) and aborts
        // rather than hand out predictable bytes.
        _ = Self.sodiumReady
        buffer.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, $0.count) }
        next = 0
    }
}
