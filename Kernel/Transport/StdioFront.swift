import Logging
import MCPGFrames
import MCPGJSON
import MCPGRouter
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// MCP over stdio (STDIO-1…STDIO-3): one client, newline-delimited JSON-RPC on stdin/stdout, logs on stderr.
/// The caller is local by construction; credentials come from the environment (`MCPG_API_KEY` is presented to
/// identity plugins as an `x-api-key` header, STDIO-4). Ends when stdin closes, after in-flight requests answer.
public final class StdioFront: Service {
    let gateway: Gateway
    let logger: Logger
    let maxMessageBytes: Int
    let input: Int32
    let output: Int32
    let writeLock = Mutex(())

    public init(gateway: Gateway, logger: Logger, maxMessageBytes: Int, input: Int32 = 0, output: Int32 = 1) {
        self.gateway = gateway
        self.logger = logger
        self.maxMessageBytes = maxMessageBytes
        self.input = input
        self.output = output
    }

    /// Writes one message as one line; the lock keeps lines from interleaving (STDIO-1).
    func send(_ message: JSON) {
        var bytes = message.serialized()
        bytes.append(0x0A)
        writeLock.withLock { _ in
            var off = 0
            while off < bytes.count {
                let n = bytes[off...].withUnsafeBytes { write(output, $0.baseAddress, $0.count) }
                if n < 0 {
                    if errno == EINTR { continue }
                    return
                }
                off += n
            }
        }
    }

    public func run() async throws {
        var headers: [String: String] = [:]
        if let key = getenv("MCPG_API_KEY") { headers["x-api-key"] = String(cString: key) }
        let caller = Caller(transport: "stdio", peer: "stdio", peerIsLoopback: true, headers: headers)
        let identity: Result<Identity, AuthenticationFailure> = await gateway.authenticate(caller)
        if case .failure(let f) = identity {
            logger.warning("stdio client not authenticated", metadata: ["mcpg.error.id": "\(f.correlationID)"])
        }
        let lines = LineReader(fd: input, maxLine: maxMessageBytes)
        let session = Mutex<Session?>(nil)
        // Tracks this stream's sessionless requests, so `notifications/cancelled` can reach them.
        let modernRequests = Session(id: "stdio", owner: "", protocolVersion: modernProtocolVersions[0],
                                     clientInfo: .null, clientCapabilities: [:], pinned: true, modern: true)
        await withTaskGroup(of: Void.self) { group in
            for await line in lines.stream {
                switch line {
                case .tooLong:
                    send(Frame.errorResponse(id: nil, error: .invalidRequest("Message exceeds \(maxMessageBytes) bytes")).json)
                    continue
                case .line(let bytes):
                    if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
                    let frame: Frame
                    do throws(FrameError) { frame = try Frame.parse(bytes) } catch {
                        send(error.frame.json)
                        continue
                    }
                    guard case .success(let who) = identity else {
                        if case .request(let id, _, _) = frame, case .failure(let f) = identity {
                            send(Frame.errorResponse(id: id, error: RPCError.unauthenticated.withCorrelation(f.correlationID)).json)
                        }
                        continue
                    }
                    let current = session.withLock { $0 }
                    if frame.isModern {
                        // The sessionless protocol (NEXT-1): each request stands alone; `notifications/cancelled`
                        // still cancels on stdio (NEXT-9).
                        guard case .request(let id, _, _) = frame else { continue }
                        group.addTask {
                            let reply = await self.gateway.serve(id, in: modernRequests) {
                                await self.gateway.handleModern(frame, identity: who, caller: caller, headers: nil,
                                                                emit: { m in self.send(m); return true })
                            }
                            if case .frame(let f)? = reply { self.send(f.json) }
                        }
                        continue
                    }
                    if case .notification("notifications/cancelled", let params) = frame, current == nil {
                        if let rid = params?["requestId"].flatMap(RequestID.init) { modernRequests.cancel(rid) }
                        continue
                    }
                    if case .request(let id, let method, _) = frame {
                        if method == "initialize" {
                            // Initialize runs inline so later lines see the session it creates.
                            let reply = await gateway.handle(frame, identity: who, caller: caller, session: current)
                            if case .initialized(let f, let s) = reply {
                                session.withLock { $0 = s }
                                send(f.json)
                                // List changes and resource updates go to stdout too.
                                _ = s.attachOutbound { m in self.send(m); return true }
                                gateway.sessions.insert(s)
                            } else if case .frame(let f) = reply {
                                send(f.json)
                            }
                            continue
                        }
                        group.addTask {
                            let reply = await self.gateway.serve(id, in: current) {
                                await self.gateway.handle(frame, identity: who, caller: caller, session: current,
                                                          emit: { m in self.send(m); return true })
                            }
                            if case .frame(let f)? = reply { self.send(f.json) }
                        }
                    } else {
                        _ = await gateway.handle(frame, identity: who, caller: caller, session: current)
                    }
                }
            }
            await group.waitForAll()
        }
        modernRequests.close()
        if let s = session.withLock({ $0 }) {
            gateway.sessions.drop(s.id)
            s.close()
        }
        logger.info("stdio client closed the stream")
    }
}

/// Reads newline-delimited lines from a file descriptor on a dedicated thread, so a blocking read never
/// occupies the cooperative pool.
final class LineReader: Sendable {
    enum Line: Sendable {
        case line([UInt8])
        case tooLong
    }
    let stream: AsyncStream<Line>

    init(fd: Int32, maxLine: Int) {
        let (stream, cont) = AsyncStream<Line>.makeStream(bufferingPolicy: .unbounded)
        self.stream = stream
        let thread = ReaderThread(fd: fd, maxLine: maxLine, cont: cont)
        thread.start()
    }
}

final class ReaderThread: Sendable {
    let fd: Int32
    let maxLine: Int
    let cont: AsyncStream<LineReader.Line>.Continuation

    init(fd: Int32, maxLine: Int, cont: AsyncStream<LineReader.Line>.Continuation) {
        self.fd = fd
        self.maxLine = maxLine
        self.cont = cont
    }

    func start() {
        let box = Unmanaged.passRetained(self)
        var tid = pthread_t()
        pthread_create(&tid, nil, { arg in
            let me = Unmanaged<ReaderThread>.fromOpaque(arg!).takeRetainedValue()
            me.loop()
            return nil
        }, box.toOpaque())
        pthread_detach(tid)
    }

    func loop() {
        var buf = [UInt8](repeating: 0, count: 65536)
        var line: [UInt8] = []
        var discarding = false
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            var start = 0
            for i in 0..<n where buf[i] == 0x0A {
                if !discarding { line.append(contentsOf: buf[start..<i]) }
                if discarding || line.count > maxLine { cont.yield(.tooLong) } else { cont.yield(.line(line)) }
                line.removeAll(keepingCapacity: true)
                discarding = false
                start = i + 1
            }
            if !discarding {
                line.append(contentsOf: buf[start..<n])
                if line.count > maxLine {
                    discarding = true
                    line.removeAll()
                }
            }
        }
        if !line.isEmpty && !discarding { cont.yield(.line(line)) }
        cont.finish()
    }
}
