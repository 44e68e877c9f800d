import AsyncHTTPClient
import MCPGJSON
import NIOCore
import NIOHTTP1

/// Streamable HTTP (2025-03-26 and later): every message is a POST to the endpoint; the answer to a request is
/// JSON or an SSE stream that may carry notifications and server requests first (HTTP-5, HTTP-6). After
/// initialize, `Mcp-Session-Id` and `MCP-Protocol-Version` go on every request (HTTP-12, HTTP-15), and a GET
/// stream carries unsolicited messages (405: the server offers none; it is reopened with backoff when it ends).
/// A 404 on our session ends the connection with `sessionExpired` (HTTP-13). `close()` DELETEs the session
/// (HTTP-14).
final class StreamableHTTPTransport: Transport {
    private struct State {
        var sessionID: String?
        var protocolVersion: String?
        var sink: TransportSink?
        var getStream: Task<Void, Never>?
        var closed = false
    }

    let connection: HTTPConnection
    let log: MCPClient.LogFunction
    let backoff: MCPClient.Config.Restart
    private let state = MutexBox(State())
    private let closedOnce = Once()

    var correlatesStreams: Bool { true }

    init(connection: HTTPConnection, backoff: MCPClient.Config.Restart, log: @escaping MCPClient.LogFunction) {
        self.connection = connection
        self.backoff = backoff
        self.log = log
    }

    func start(_ sink: TransportSink) async throws {
        state.withLock { $0.sink = sink }
    }

    private func request(_ method: HTTPMethod, accept: String?) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: connection.endpoint.description)
        request.method = method
        request.headers = connection.headers
        if let accept { request.headers.replaceOrAdd(name: "Accept", value: accept) }
        let (session, version) = state.withLock { ($0.sessionID, $0.protocolVersion) }
        if let session { request.headers.replaceOrAdd(name: "Mcp-Session-Id", value: session) }
        if let version { request.headers.replaceOrAdd(name: "MCP-Protocol-Version", value: version) }
        return request
    }

    func send(_ message: JSON, requestID: Int64?) async throws -> Bool {
        guard let sink = state.withLock({ $0.sink }) else {
            throw TransportError(message: "connection not started", connectionLost: true)
        }
        var request = request(.POST, accept: "application/json, text/event-stream")
        request.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        request.body = .bytes(message.serialized())
        let hadSession = state.withLock { $0.sessionID != nil }
        let response: HTTPClientResponse
        do {
            // The head of a JSON answer comes with the answer: allow the request's own deadline and a margin.
            response = try await connection.http.execute(
                request, deadline: .now() + connection.requestTimeout + connection.connectTimeout)
        } catch {
            throw connection.describe(error)
        }
        if let id = response.headers.first(name: "Mcp-Session-Id"), !id.isEmpty {
            state.withLock { s in if s.sessionID == nil { s.sessionID = id } }
        }
        let status = response.status.code
        let contentType = response.headers.first(name: "Content-Type")?.lowercased() ?? ""
        if status == 404, hadSession {
            throw TransportError(message: "upstream session expired", sessionExpired: true)
        }
        do {
            if (200..<300).contains(status), contentType.hasPrefix("text/event-stream") {
                try await HTTPConnection.readEvents(response.body) { event in
                    guard event.event == "message", !event.data.isEmpty else { return }
                    if let m = HTTPConnection.message(Array(event.data.utf8)) {
                        sink.message(m, requestID)
                    } else {
                        log(
                            .warning, "upstream sent an SSE event that is not a JSON-RPC message",
                            [
                                "mcp.data": truncated(event.data, 200)
                            ])
                    }
                }
                return true
            }
            let body = try await response.body.collect(upTo: HTTPConnection.maxBody)
            if status == 202 || body.readableBytes == 0, (200..<300).contains(status) { return true }
            if let m = HTTPConnection.message(body.readableBytesView), m["jsonrpc"] != nil,
                m["result"] != nil || m["error"] != nil || m["method"] != nil
            {
                // A JSON answer, or a JSON-RPC error sent with a 4xx status: deliver it as the answer.
                sink.message(m, requestID)
                return true
            }
            var detail = ""
            if !(200..<300).contains(status) {
                let text = String(decoding: body.readableBytesView.prefix(200), as: UTF8.self)
                detail = text.isEmpty ? "" : ": " + text
                throw TransportError(message: connection.scrub("upstream answered HTTP \(status)\(detail)"))
            }
            throw TransportError(
                message:
                    "upstream answered HTTP \(status) with \(contentType.isEmpty ? "no content type" : contentType), "
                        + "not JSON-RPC"
            )
        } catch let e as TransportError {
            throw e
        } catch is SSEParser.TooLong {
            throw TransportError(message: "upstream sent an SSE line longer than \(HTTPConnection.maxBody) bytes")
        } catch is NIOTooManyBytesError {
            throw TransportError(message: "upstream answer larger than \(HTTPConnection.maxBody) bytes")
        } catch {
            throw connection.describe(error)
        }
    }

    func initialized(protocolVersion: String) {
        let task = Task { [self] in await runGetStream() }
        let stale = state.withLock { s -> Bool in
            s.protocolVersion = protocolVersion
            if s.closed { return true }
            s.getStream = task
            return false
        }
        if stale { task.cancel() }
    }

    /// Keeps a GET stream open for unsolicited messages while the connection lives; 405 means the server has
    /// none to offer.
    private func runGetStream() async {
        var delay = Backoff(initialMs: max(backoff.initialMs, 200), maxMs: backoff.maxMs)
        while !Task.isCancelled {
            let request = request(.GET, accept: "text/event-stream")
            var retryMs: Int?
            do {
                let response = try await connection.http.execute(request, deadline: .now() + connection.connectTimeout)
                let status = response.status.code
                if status == 405 {
                    log(.debug, "upstream offers no GET stream", [:])
                    return
                }
                if status == 404, state.withLock({ $0.sessionID != nil }) {
                    fail(TransportClosed(reason: "upstream session expired", sessionExpired: true))
                    return
                }
                guard status == 200,
                    response.headers.first(name: "Content-Type")?.lowercased().hasPrefix("text/event-stream") == true
                else {
                    log(.warning, "upstream refused the GET stream", ["mcp.status": String(status)])
                    return
                }
                let sink = state.withLock { $0.sink }
                delay.reset()
                try await HTTPConnection.readEvents(response.body) { event in
                    if let r = event.retry { retryMs = r }
                    guard event.event == "message", !event.data.isEmpty else { return }
                    if let m = HTTPConnection.message(Array(event.data.utf8)) { sink?.message(m, nil) }
                }
            } catch {
                if Task.isCancelled { return }
                let e = connection.describe(error)
                if e.connectionLost {
                    fail(TransportClosed(reason: e.message))
                    return
                }
                log(.notice, "upstream GET stream failed", ["mcp.error": e.message])
            }
            if Task.isCancelled { return }
            let wait = retryMs.map { min(max($0, 100), backoff.maxMs) } ?? delay.next()
            try? await Task.sleep(for: .milliseconds(wait))
        }
    }

    func fail(_ reason: TransportClosed) {
        let (task, sink) = state.withLock { s -> (Task<Void, Never>?, TransportSink?) in
            s.closed = true
            defer { s.getStream = nil }
            return (s.getStream, s.sink)
        }
        task?.cancel()
        if closedOnce.claim() { sink?.closed(reason) }
    }

    func close() async {
        let (task, session, sink) = state.withLock { s -> (Task<Void, Never>?, String?, TransportSink?) in
            s.closed = true
            defer { s.getStream = nil }
            return (s.getStream, s.sessionID, s.sink)
        }
        task?.cancel()
        if session != nil {
            let request = request(.DELETE, accept: nil)
            if let response = try? await connection.http.execute(request, deadline: .now() + .seconds(2)) {
                _ = try? await response.body.collect(upTo: 1 << 16)
            }
        }
        if closedOnce.claim() { sink?.closed(TransportClosed(reason: "connection closed")) }
    }
}
