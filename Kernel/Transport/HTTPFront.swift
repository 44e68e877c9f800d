import Logging
import MCPGFrames
import MCPGJSON
import MCPGRouter
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Settings of the Streamable HTTP front.
public struct HTTPFrontConfig: Sendable {
    public var host: String
    public var port: Int
    public var path: String
    /// Origins allowed besides loopback ones (HTTP-2).
    public var allowedOrigins: Set<String>
    public var maxBodyBytes: Int
    /// How often the GET stream sends an SSE comment to keep intermediaries from closing it.
    public var keepAlive: TimeAmount
    /// A connection that sends nothing for this long, while no answer is pending or streaming, is closed.
    public var idleTimeout: TimeAmount
    /// TLS (HTTPS), or nil for plain HTTP.
    public var tls: TLSCredentials?
    /// `server.http.public_url`: the endpoint's URL as clients reach it; nil: built from scheme, address, path.
    public var publicURL: String?
    /// RFC 9728 metadata from the identity plugins (without `resource`), or nil when none publishes any.
    public var resourceMetadata: JSONObject?

    /// True when `host` is a loopback address or `localhost`.
    public var listensOnLoopback: Bool {
        host == "localhost" || host.hasPrefix("127.") || host == "::1"
    }

    /// `https` with TLS, else `http`.
    public var scheme: String { tls == nil ? "http" : "https" }

    public init(host: String, port: Int, path: String, allowedOrigins: Set<String>, maxBodyBytes: Int,
                keepAlive: TimeAmount = .seconds(15), idleTimeout: TimeAmount = .seconds(120)) {
        self.host = host
        self.port = port
        self.path = path
        self.allowedOrigins = allowedOrigins
        self.maxBodyBytes = maxBodyBytes
        self.keepAlive = keepAlive
        self.idleTimeout = idleTimeout
    }
}

/// MCP over Streamable HTTP (HTTP-1…HTTP-15) on SwiftNIO: POST with a JSON or SSE answer, GET stream, DELETE,
/// `Mcp-Session-Id`, `MCP-Protocol-Version`, `Origin` checks, body limit. Plugin work never runs on an event
/// loop: each request is served by a Task and its answer hops back to the channel's loop.
public final class HTTPFront: Service {
    let gateway: Gateway
    let config: HTTPFrontConfig
    let group: MultiThreadedEventLoopGroup
    let logger: Logger
    let bound = Mutex<SocketAddress?>(nil)
    let onListening: (@Sendable (SocketAddress) -> Void)?
    /// Requests being served; shutdown waits for them (up to `drainTimeout`) before the ledger closes.
    let inflight = InflightCounter()
    let drainTimeout: Duration = .seconds(10)
    /// The protected resource as clients see it; set once the port is known.
    let resource = ProtectedResourceBox()

    public init(gateway: Gateway, config: HTTPFrontConfig, group: MultiThreadedEventLoopGroup, logger: Logger,
                onListening: (@Sendable (SocketAddress) -> Void)? = nil) {
        self.gateway = gateway
        self.config = config
        self.group = group
        self.logger = logger
        self.onListening = onListening
    }

    /// The address the server is bound to, once listening.
    public var localAddress: SocketAddress? { bound.withLock { $0 } }

    public func run() async throws {
        let gateway = self.gateway
        let config = self.config
        let logger = self.logger
        let inflight = self.inflight
        let resource = self.resource
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    var peer: PeerChain?
                    if let tls = config.tls {
                        let (handler, chain) = try tls.handler()
                        try channel.pipeline.syncOperations.addHandler(handler)
                        peer = chain
                    }
                    // Connections that send nothing for `idleTimeout` while no answer is pending are closed, so
                    // idle or stalled clients do not hold sockets forever.
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: config.idleTimeout))
                    // Every header the front writes is a constant, a number, a hex session id or a challenge
                    // built by `BearerChallenge` (printable ASCII only), so NIO's outbound header validation (a
                    // per-response scan) has nothing to catch.
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withErrorHandling: true, withOutboundHeaderValidation: false)
                    try channel.pipeline.syncOperations.addHandler(
                        MCPHTTPHandler(gateway: gateway, config: config, logger: logger, inflight: inflight,
                                       peer: peer, resource: resource))
                }
            }
            .bind(host: config.host, port: config.port)
            .get()
        if let addr = channel.localAddress {
            resource.set(ProtectedResource(config: config, boundPort: addr.port ?? config.port))
            bound.withLock { $0 = addr }
            logger.info("listening", metadata: ["mcpg.http.address": "\(addr)", "mcpg.http.path": "\(config.path)"])
            onListening?(addr)
        }
        let watcher = config.tls.map { tls in Task { await tls.watch() } }
        defer { watcher?.cancel() }
        try await withTaskCancellationOrGracefulShutdownHandler {
            try await channel.closeFuture.get()
        } onCancelOrGracefulShutdown: {
            channel.close(promise: nil)
        }
        // Drain: answers already being computed still reach their clients (and their audit records).
        let deadline = ContinuousClock.now + drainTimeout
        while inflight.value > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if inflight.value > 0 {
            logger.warning("shutting down with requests still in flight", metadata: ["mcpg.http.inflight": "\(inflight.value)"])
        }
    }
}

/// Counts requests in flight across all connections.
final class InflightCounter: Sendable {
    private let count = Mutex(0)
    var value: Int { count.withLock { $0 } }
    func enter() { count.withLock { $0 += 1 } }
    func leave() { count.withLock { $0 -= 1 } }
}

/// Media-type checks on header values without allocating: ASCII case-insensitive, on UTF-8 bytes.
enum MediaType {
    /// Whether `value` contains `needle` (lowercase ASCII), ignoring ASCII case.
    static func contains(_ value: String, _ needle: StaticString) -> Bool {
        var value = value
        return value.withUTF8 { hay in
            let n = UnsafeBufferPointer(start: needle.utf8Start, count: needle.utf8CodeUnitCount)
            guard n.count <= hay.count else { return false }
            if n.isEmpty { return true }
            var i = 0
            while i + n.count <= hay.count {
                var j = 0
                while j < n.count, lower(hay[i + j]) == n[j] { j += 1 }
                if j == n.count { return true }
                i += 1
            }
            return false
        }
    }

    /// Whether `value` starts with `prefix` (lowercase ASCII), ignoring ASCII case.
    static func hasPrefix(_ value: String, _ prefix: StaticString) -> Bool {
        var value = value
        return value.withUTF8 { hay in
            let n = UnsafeBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount)
            guard n.count <= hay.count else { return false }
            for j in 0..<n.count where lower(hay[j]) != n[j] { return false }
            return true
        }
    }

    @inline(__always) static func lower(_ b: UInt8) -> UInt8 { b &- 65 < 26 ? b | 0x20 : b }
}

/// Headers the front reads, lowercased once per request.
struct RequestHeaders {
    var all: [String: String] = [:]
    init(_ h: HTTPHeaders) {
        for (name, value) in h {
            let k = name.lowercased()
            if let old = all[k] { all[k] = old + ", " + value } else { all[k] = value }
        }
    }
    subscript(_ name: String) -> String? { all[name] }
}

final class MCPHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let gateway: Gateway
    let config: HTTPFrontConfig
    let logger: Logger
    let inflight: InflightCounter
    /// The TLS client certificate chain of this connection (nil: plain HTTP).
    let peer: PeerChain?
    let resource: ProtectedResourceBox

    var head: HTTPRequestHead?
    var body: ByteBuffer?
    var tooLarge = false
    /// The answer being streamed as SSE for the current request, if any.
    var stream: ResponseStream?
    /// Requests of this connection whose answers are still being computed.
    var pending = 0
    /// Whether the current request lets the connection stay open after its answer (HTTP/1.0, `Connection: close`).
    /// The pipeline handler delivers the next request only after this answer ends, so this is the current one's.
    var clientKeepAlive = true
    /// The client's address as `Caller.peer` gives it, and whether it is loopback; set by the first request.
    var remotePeer: (String, Bool)?

    init(gateway: Gateway, config: HTTPFrontConfig, logger: Logger, inflight: InflightCounter,
         peer: PeerChain? = nil, resource: ProtectedResourceBox = ProtectedResourceBox()) {
        self.gateway = gateway
        self.config = config
        self.logger = logger
        self.inflight = inflight
        self.peer = peer
        self.resource = resource
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            clientKeepAlive = h.isKeepAlive
            body = nil
            tooLarge = false
            if let len = h.headers.first(name: "content-length").flatMap(Int.init), len > config.maxBodyBytes {
                tooLarge = true
            }
        case .body(var chunk):
            guard !tooLarge else { return }
            if (body?.readableBytes ?? 0) + chunk.readableBytes > config.maxBodyBytes {
                tooLarge = true
                body = nil
                return
            }
            if body == nil { body = chunk } else { body!.writeBuffer(&chunk) }
        case .end:
            guard let h = head else { return }
            head = nil
            let b = body
            body = nil
            route(context: context, head: h, body: b)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            // Idle between requests (or stalled mid-request): close. A pending answer or an open stream keeps it.
            if pending == 0 && stream == nil { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        stream?.closed.store(true, ordering: .relaxed)
        // A sessionless request is cancelled when its client goes away (NEXT-9).
        stream?.onClose.withLock { $0 }?()
        context.fireChannelInactive()
    }

    // MARK: - Plain responses

    func respond(context: ChannelHandlerContext, status: HTTPResponseStatus, headers extra: [(String, String)] = [],
                 json: JSON? = nil, keepAlive: Bool = true) {
        var headers = HTTPHeaders()
        var buffer: ByteBuffer?
        if let json {
            let bytes = json.serialized()
            var buf = context.channel.allocator.buffer(capacity: bytes.count)
            buf.writeBytes(bytes)
            buffer = buf
            headers.add(name: "content-type", value: "application/json")
        }
        headers.add(name: "content-length", value: String(buffer?.readableBytes ?? 0))
        for (k, v) in extra { headers.add(name: k, value: v) }
        let keepAlive = keepAlive && clientKeepAlive
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if let buffer { context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil) }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive { done.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) } }
    }

    /// An HTTP error whose body is a JSON-RPC error without id (HTTP-2, HTTP-4).
    func reject(context: ChannelHandlerContext, _ status: HTTPResponseStatus, code: Int, _ message: String,
                headers: [(String, String)] = [], keepAlive: Bool = true) {
        let frame = Frame.errorResponse(id: nil, error: RPCError(code: code, message: message))
        respond(context: context, status: status, headers: headers, json: frame.json, keepAlive: keepAlive)
    }

    // MARK: - Routing

    func route(context: ChannelHandlerContext, head: HTTPRequestHead, body: ByteBuffer?) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        if path.hasPrefix(ProtectedResource.wellKnownPrefix) {
            protectedResourceMetadata(context: context, head: head, path: path)
            return
        }
        guard path == config.path else {
            reject(context: context, .notFound, code: -32600, "Not found: the MCP endpoint is \(config.path)")
            return
        }
        let headers = RequestHeaders(head.headers)
        if let origin = headers["origin"], !originAllowed(origin) {
            reject(context: context, .forbidden, code: -32600, "Origin not allowed")
            return
        }
        if tooLarge {
            reject(context: context, .payloadTooLarge, code: -32600,
                   "Request body exceeds \(config.maxBodyBytes) bytes", keepAlive: false)
            return
        }
        switch head.method {
        case .POST: post(context: context, headers: headers, body: body)
        case .GET: get(context: context, headers: headers)
        case .DELETE: delete(context: context, headers: headers)
        default:
            reject(context: context, .methodNotAllowed, code: -32600, "Method not allowed",
                   headers: [("allow", "GET, POST, DELETE")])
        }
    }

    func originAllowed(_ origin: String) -> Bool {
        if config.allowedOrigins.contains(where: { $0.lowercased() == origin.lowercased() }) { return true }
        // A gateway listening on loopback also accepts loopback origins (same-machine pages); anything else must
        // be listed (DNS rebinding, HTTP-2).
        guard config.listensOnLoopback else { return false }
        for prefix in ["http://localhost", "http://127.0.0.1", "http://[::1]", "https://localhost", "https://127.0.0.1", "https://[::1]"] {
            if origin == prefix || origin.hasPrefix(prefix + ":") { return true }
        }
        return false
    }

    func caller(context: ChannelHandlerContext, headers: RequestHeaders) -> Caller {
        // The remote address is the connection's: described once, not per request.
        let (address, loopback) = remotePeer ?? {
            let remote = context.channel.remoteAddress
            let p = (remote.map(Self.describe) ?? "unknown", remote.map(Self.isLoopback) ?? false)
            remotePeer = p
            return p
        }()
        return Caller(transport: "http", peer: address, peerIsLoopback: loopback, headers: headers.all,
                      tls: peer?.clientTLS)
    }

    static func describe(_ a: SocketAddress) -> String {
        switch a {
        case .v4: return "\(a.ipAddress ?? "?"):\(a.port ?? 0)"
        case .v6: return "[\(a.ipAddress ?? "?")]:\(a.port ?? 0)"
        default: return "unix"
        }
    }

    static func isLoopback(_ a: SocketAddress) -> Bool {
        switch a {
        case .v4: return a.ipAddress?.hasPrefix("127.") ?? false
        case .v6:
            guard let ip = a.ipAddress else { return false }
            return ip == "::1" || ip.hasPrefix("::ffff:127.")
        default: return false
        }
    }

    /// Runs `work` off the event loop and hands its result back on the loop.
    func offLoop<T: Sendable>(context: ChannelHandlerContext, _ work: @escaping @Sendable () async -> T,
                              then: @escaping (ChannelHandlerContext, T) -> Void) {
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        let thenBound = NIOLoopBound(then, eventLoop: loop)
        let inflight = self.inflight
        inflight.enter()
        pending += 1
        Task {
            let result = await work()
            inflight.leave()
            loop.execute {
                let (handler, ctx) = bound.value
                handler.pending -= 1
                thenBound.value(ctx, result)
            }
        }
    }

    // MARK: - POST

    func post(context: ChannelHandlerContext, headers: RequestHeaders, body: ByteBuffer?) {
        // Media types are compared on bytes, ASCII case folded: `String.contains` costs microseconds per request.
        guard let contentType = headers["content-type"], MediaType.hasPrefix(contentType, "application/json") else {
            reject(context: context, .unsupportedMediaType, code: -32600, "Content-Type must be application/json")
            return
        }
        let accept = headers["accept"] ?? "*/*"
        let acceptsSSE = MediaType.contains(accept, "text/event-stream") || MediaType.contains(accept, "*/*")
        guard acceptsSSE || MediaType.contains(accept, "application/json") else {
            reject(context: context, .notAcceptable, code: -32600,
                   "Accept must list application/json and text/event-stream")
            return
        }
        // Parsed straight from NIO's buffer: the body is never copied.
        let parsed = body?.withUnsafeReadableBytes { raw in
            Result { () throws(FrameError) -> Frame in try Frame.parse(raw.assumingMemoryBound(to: UInt8.self)) }
        } ?? Result { () throws(FrameError) -> Frame in try Frame.parse([]) }
        let frame: Frame
        switch parsed {
        case .success(let f): frame = f
        case .failure(let error):
            respond(context: context, status: .badRequest, json: error.frame.json)
            return
        }
        let isInitialize = frame.method == "initialize"
        let sessionID = headers["mcp-session-id"]
        // The sessionless protocol (NEXT-1, NEXT-12): a request whose `_meta` names its version, or any message
        // without a session at a sessionless version. `initialize` selects the handshake era.
        let headerVersion = headers["mcp-protocol-version"]
        if !isInitialize, frame.isModern || (sessionID == nil && headerVersion.map(modernProtocolVersions.contains) == true) {
            postModern(context: context, headers: headers, frame: frame, acceptsSSE: acceptsSSE)
            return
        }
        if !isInitialize, let v = headerVersion, !supportedProtocolVersions.contains(v) {
            reject(context: context, .badRequest, code: -32600, "Unsupported MCP-Protocol-Version: \(v)")
            return
        }
        if !isInitialize, sessionID == nil, frame.method != "ping" {
            reject(context: context, .badRequest, code: -32600, "Missing Mcp-Session-Id header: send initialize first")
            return
        }
        let caller = caller(context: context, headers: headers)
        let gateway = self.gateway
        let stream = ResponseStream()
        self.stream = stream
        let loop = context.eventLoop
        let ctxBound = NIOLoopBound(context, eventLoop: loop)
        let handlerBound = NIOLoopBound(self, eventLoop: loop)
        // Messages a plugin emits during the call switch the answer to SSE (HTTP-5, HTTP-6). In a session they
        // go through the stream's event log, so a client that loses the connection resumes with Last-Event-ID
        // (HTTP-11); the log is made on the loop when the stream starts (`stream.log`).
        let direct: @Sendable (JSON) -> Bool = { message in
            loop.execute { handlerBound.value.sendEvent(context: ctxBound.value, stream: stream, message) }
            return !stream.closed.load(ordering: .relaxed)
        }
        @Sendable func emitter(for session: Session?) -> (@Sendable (JSON) -> Bool)? {
            guard acceptsSSE else { return nil }
            guard let session else { return direct }
            // Made on the first message: a request that emits nothing costs no log.
            let made = Mutex<EventLog?>(nil)
            return { message in
                let log = made.withLock { m -> EventLog in
                    if let log = m { return log }
                    let log = session.newEventLog(requestStream: true)
                    log.attach { id, message, _ in
                        guard !stream.closed.load(ordering: .relaxed) else { return false }
                        loop.execute { handlerBound.value.sendEvent(context: ctxBound.value, stream: stream, message, id: id) }
                        return true
                    }
                    // Queued before the first event's write, so the stream knows its log when it starts.
                    loop.execute { stream.log = log }
                    m = log
                    return log
                }
                return log.append(message) != nil
            }
        }

        offLoop(context: context, { () -> HTTPOutcome in
            let identity: Identity
            switch await gateway.authenticate(caller) {
            case .failure(let f): return .unauthorized(f)
            case .success(let i): identity = i
            }
            let session: Session?
            if let sessionID {
                guard let s = gateway.sessions.lookup(sessionID, principal: identity.principal.id) else {
                    return .sessionNotFound
                }
                if let v = caller.headers["mcp-protocol-version"], v != s.protocolVersion, !isInitialize {
                    return .badVersion(v)
                }
                session = s
            } else {
                session = nil
            }
            if case .request(let id, _, _) = frame {
                let emit = emitter(for: session)
                guard let reply = await gateway.serve(id, in: session, {
                    await gateway.handle(frame, identity: identity, caller: caller, session: session, emit: emit)
                }) else { return .cancelled }
                if case .initialized(let f, let s) = reply { gateway.sessions.insert(s) ; return .answer(f, sessionID: s.id) }
                if case .frame(let f) = reply { return .answer(f, sessionID: nil) }
                return .cancelled
            }
            _ = await gateway.handle(frame, identity: identity, caller: caller, session: session, emit: nil)
            return .accepted
        }, then: { ctx, outcome in
            self.finish(context: ctx, stream: stream, outcome)
        })
    }

    /// One request of the sessionless protocol: authenticated like any other, answered on its own (JSON, or SSE
    /// once the call emits), with the HTTP status its error code calls for (NEXT-9). Closing the connection
    /// cancels it. Notifications are acknowledged and dropped: the protocol defines none from the client here.
    func postModern(context: ChannelHandlerContext, headers: RequestHeaders, frame: Frame, acceptsSSE: Bool) {
        guard case .request = frame else {
            if case .notification = frame { respond(context: context, status: .accepted) } else {
                reject(context: context, .badRequest, code: -32600, "Body must be a single JSON-RPC request or notification")
            }
            return
        }
        let caller = caller(context: context, headers: headers)
        let gateway = self.gateway
        let stream = ResponseStream()
        self.stream = stream
        let loop = context.eventLoop
        let ctxBound = NIOLoopBound(context, eventLoop: loop)
        let handlerBound = NIOLoopBound(self, eventLoop: loop)
        var emit: (@Sendable (JSON) -> Bool)?
        if acceptsSSE {
            emit = { @Sendable message in
                guard !stream.closed.load(ordering: .relaxed) else { return false }
                loop.execute { handlerBound.value.sendEvent(context: ctxBound.value, stream: stream, message) }
                return true
            }
        }
        let emitter = emit
        let all = headers.all
        offLoop(context: context, { () -> HTTPOutcome in
            let identity: Identity
            switch await gateway.authenticate(caller) {
            case .failure(let f): return .unauthorized(f)
            case .success(let i): identity = i
            }
            let task = Task { await gateway.handleModern(frame, identity: identity, caller: caller, headers: all, emit: emitter) }
            stream.onClose.withLock { $0 = { task.cancel() } }
            if stream.closed.load(ordering: .relaxed) { task.cancel() }
            switch await task.value {
            case .frame(let f): return .answer(f, sessionID: nil)
            default: return .cancelled
            }
        }, then: { ctx, outcome in
            self.finish(context: ctx, stream: stream, outcome, modern: true)
        })
    }

    enum HTTPOutcome: Sendable {
        case unauthorized(AuthenticationFailure)
        case sessionNotFound
        case badVersion(String)
        case accepted
        case cancelled
        case answer(Frame, sessionID: String?)
    }

    func finish(context: ChannelHandlerContext, stream: ResponseStream, _ outcome: HTTPOutcome, modern: Bool = false) {
        if self.stream === stream { self.stream = nil }
        switch outcome {
        case .unauthorized(let f): unauthorized(context: context, f)
        case .sessionNotFound:
            // HTTP-13: unknown, expired or someone else's session → 404, the client re-initializes.
            reject(context: context, .notFound, code: -32600, "Session not found")
        case .badVersion(let v):
            reject(context: context, .badRequest, code: -32600, "MCP-Protocol-Version \(v) does not match the session")
        case .accepted:
            respond(context: context, status: .accepted)
        case .cancelled:
            if stream.started { endStream(context: context) } else { respond(context: context, status: .accepted) }
        case .answer(let frame, let sessionID):
            if let log = stream.log {
                if stream.closed.load(ordering: .relaxed) {
                    // This connection is gone: the answer waits in the log, or goes to the stream that resumed it.
                    log.append(frame.json, final: true)
                    return
                }
                // Written here, in order, before the stream ends; kept for a client that resumes.
                log.attach(nil)
                let id = log.append(frame.json, final: true)
                if stream.started {
                    sendEvent(context: context, stream: stream, frame.json, id: id)
                    endStream(context: context)
                    return
                }
            }
            if stream.started {
                sendEvent(context: context, stream: stream, frame.json)
                endStream(context: context)
            } else {
                var extra: [(String, String)] = []
                if let sessionID { extra.append(("mcp-session-id", sessionID)) }
                var status = HTTPResponseStatus.ok
                if modern, case .errorResponse(_, let e) = frame { status = HTTPResponseStatus(statusCode: e.modernHTTPStatus) }
                respond(context: context, status: status, headers: extra, json: frame.json)
            }
        }
    }

    // MARK: - SSE

    func startStream(context: ChannelHandlerContext, stream: ResponseStream) {
        guard !stream.started else { return }
        stream.started = true
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/event-stream")
        headers.add(name: "cache-control", value: "no-cache")
        headers.add(name: "x-accel-buffering", value: "no")
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
    }

    func sendEvent(context: ChannelHandlerContext, stream: ResponseStream, _ message: JSON, id: String? = nil) {
        guard !stream.closed.load(ordering: .relaxed), !stream.ended else { return }
        if !stream.started, let log = stream.log {
            // HTTP-6: a resumable stream starts with an event that has an id and no data.
            startStream(context: context, stream: stream)
            var prime = context.channel.allocator.buffer(capacity: 32)
            prime.writeString("id: \(log.primingID)\ndata: \n\n")
            context.write(wrapOutboundOut(.body(.byteBuffer(prime))), promise: nil)
        }
        startStream(context: context, stream: stream)
        var bytes = Array((id.map { "id: \($0)\n" } ?? "").utf8) + Array("event: message\ndata: ".utf8)
        message.write(into: &bytes)
        bytes.append(contentsOf: [0x0A, 0x0A])
        var buf = context.channel.allocator.buffer(capacity: bytes.count)
        buf.writeBytes(bytes)
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buf))), promise: nil)
    }

    func endStream(context: ChannelHandlerContext) {
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !clientKeepAlive { done.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) } }
    }

    // MARK: - GET and DELETE

    func authenticated(context: ChannelHandlerContext, headers: RequestHeaders,
                       then: @escaping (ChannelHandlerContext, Session) -> Void) {
        guard let sessionID = headers["mcp-session-id"] else {
            reject(context: context, .badRequest, code: -32600, "Missing Mcp-Session-Id header")
            return
        }
        let caller = caller(context: context, headers: headers)
        let gateway = self.gateway
        offLoop(context: context, { () -> Result<Session, AuthOrSession> in
            switch await gateway.authenticate(caller) {
            case .failure(let f): return .failure(.auth(f))
            case .success(let i):
                guard let s = gateway.sessions.lookup(sessionID, principal: i.principal.id) else {
                    return .failure(.session)
                }
                return .success(s)
            }
        }, then: { ctx, r in
            switch r {
            case .success(let s): then(ctx, s)
            case .failure(.auth(let f)): self.unauthorized(context: ctx, f)
            case .failure(.session): self.reject(context: ctx, .notFound, code: -32600, "Session not found")
            }
        })
    }

    enum AuthOrSession: Error, Sendable {
        case auth(AuthenticationFailure)
        case session
    }

    /// GET opens the session's server-to-client SSE stream (HTTP-9): list changes and resource updates, with
    /// keep-alive comments between them, until the session ends or the client goes away. With several streams
    /// open, each message goes on the newest one (HTTP-10).
    func get(context: ChannelHandlerContext, headers: RequestHeaders) {
        guard MediaType.contains(headers["accept"] ?? "", "text/event-stream") else {
            reject(context: context, .notAcceptable, code: -32600, "Accept must list text/event-stream")
            return
        }
        let lastEventID = headers["last-event-id"].flatMap(EventLog.parse)
        authenticated(context: context, headers: headers) { ctx, session in
            let stream = ResponseStream()
            self.stream = stream
            let loop = ctx.eventLoop
            let bound = NIOLoopBound((self, ctx), eventLoop: loop)
            let sink: EventLog.Sink = { id, message, final in
                guard !stream.closed.load(ordering: .relaxed) else { return false }
                loop.execute {
                    let (handler, c) = bound.value
                    handler.sendEvent(context: c, stream: stream, message, id: id)
                    if final {
                        stream.ended = true
                        handler.endStream(context: c)
                    }
                }
                return true
            }
            self.startStream(context: ctx, stream: stream)
            if let (number, seq) = lastEventID, let log = session.eventLog(number) {
                // HTTP-11: replay what this stream missed, then carry it on; a request's stream ends with its
                // answer, the GET stream goes on.
                _ = log.resume(after: seq, to: sink)
                if log.isRequestStream { return }
                self.keepAlive(context: ctx, stream: stream, session: session)
                return
            }
            let log = session.newEventLog(requestStream: false)
            stream.log = log
            var prime = ctx.channel.allocator.buffer(capacity: 32)
            prime.writeString("id: \(log.primingID)\ndata: \n\n")
            ctx.writeAndFlush(self.wrapOutboundOut(.body(.byteBuffer(prime))), promise: nil)
            log.attach(sink)
            // Messages for the client are logged even while no connection carries them, so a client that comes
            // back with Last-Event-ID gets them; a newer GET stream takes over as the newest sender.
            _ = session.attachOutbound { message in log.append(message) != nil }
            self.keepAlive(context: ctx, stream: stream, session: session)
        }
    }

    func keepAlive(context: ChannelHandlerContext, stream: ResponseStream, session: Session) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: config.keepAlive) {
            let (handler, ctx) = bound.value
            guard !stream.closed.load(ordering: .relaxed) else { return }
            if session.isClosed {
                stream.ended = true
                handler.endStream(context: ctx)
                return
            }
            var buf = ctx.channel.allocator.buffer(capacity: 8)
            buf.writeString(": ping\n\n")
            ctx.writeAndFlush(handler.wrapOutboundOut(.body(.byteBuffer(buf))), promise: nil)
            handler.keepAlive(context: ctx, stream: stream, session: session)
        }
    }

    /// DELETE ends the session (HTTP-14); later requests with its id get 404.
    func delete(context: ChannelHandlerContext, headers: RequestHeaders) {
        authenticated(context: context, headers: headers) { ctx, session in
            _ = self.gateway.sessions.remove(session.id, principal: session.owner)
            self.respond(context: ctx, status: .ok)
        }
    }
}

/// State of one streamed answer; touched only on the channel's event loop.
final class ResponseStream: @unchecked Sendable {
    // Only read and written on the owning channel's event loop (every access goes through loop.execute or a
    // handler callback), except `closed`, which plugin threads read through `emit` and is atomic.
    var started = false
    var ended = false
    /// The client went away; set on the loop, read anywhere.
    let closed = Atomic<Bool>(false)
    /// Run when the client goes away (cancels a sessionless request).
    let onClose = Mutex<(@Sendable () -> Void)?>(nil)
    /// The session's log of this stream's events (resumable streams only); set on the loop.
    var log: EventLog?
}
