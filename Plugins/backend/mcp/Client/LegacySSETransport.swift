import AsyncHTTPClient
import MCPGJSON
import NIOCore
import NIOHTTP1

/// The 2024-11-05 HTTP+SSE transport (HTTP-16): a GET opens an event stream whose first `endpoint` event names
/// the URL to POST messages to; every answer, notification and server request then arrives on that stream.
/// The endpoint must be on the same origin as the stream. The connection ends when the stream does.
final class LegacySSETransport: Transport {
    private struct State {
        var sink: TransportSink?
        var postURL: HTTPEndpoint?
        var stream: Task<Void, Never>?
        var waiter: CheckedContinuation<HTTPEndpoint, any Error>?
        /// Why the stream ended, once it has.
        var ended: String?
    }

    let connection: HTTPConnection
    let log: MCPClient.LogFunction
    private let state = MutexBox(State())
    private let closedOnce = Once()

    var correlatesStreams: Bool { false }

    init(connection: HTTPConnection, log: @escaping MCPClient.LogFunction) {
        self.connection = connection
        self.log = log
    }

    func start(_ sink: TransportSink) async throws {
        state.withLock { $0.sink = sink }
        var request = HTTPClientRequest(url: connection.endpoint.description)
        request.method = .GET
        request.headers = connection.headers
        request.headers.replaceOrAdd(name: "Accept", value: "text/event-stream")
        let response: HTTPClientResponse
        do {
            response = try await connection.http.execute(request, deadline: .now() + connection.connectTimeout)
        } catch {
            let e = connection.describe(error)
            throw TransportError(message: e.message, connectionLost: true)
        }
        guard response.status == .ok,
            response.headers.first(name: "Content-Type")?.lowercased().hasPrefix("text/event-stream") == true
        else {
            throw TransportError(
                message: "upstream answered the SSE GET with HTTP \(response.status.code), not an event stream",
                connectionLost: true)
        }
        let endpoint = connection.endpoint
        let task = Task { [self] in
            var reason = "upstream closed the SSE stream"
            do {
                try await HTTPConnection.readEvents(response.body) { event in
                    switch event.event {
                    case "endpoint":
                        let url = try endpoint.resolve(event.data)
                        let waiter = state.withLock { s -> CheckedContinuation<HTTPEndpoint, any Error>? in
                            s.postURL = url
                            defer { s.waiter = nil }
                            return s.waiter
                        }
                        waiter?.resume(returning: url)
                    case "message":
                        if let m = HTTPConnection.message(Array(event.data.utf8)) {
                            sink.message(m, nil)
                        } else if !event.data.isEmpty {
                            log(
                                .warning, "upstream sent an SSE event that is not a JSON-RPC message",
                                [
                                    "mcp.data": truncated(event.data, 200)
                                ])
                        }
                    default: break
                    }
                }
            } catch let e as MCPConfigError {
                reason = e.message
            } catch {
                if !Task.isCancelled { reason = connection.describe(error).message }
            }
            let waiter = state.withLock { s -> CheckedContinuation<HTTPEndpoint, any Error>? in
                s.ended = reason
                defer { s.waiter = nil }
                return s.waiter
            }
            waiter?.resume(throwing: TransportError(message: reason, connectionLost: true))
            if closedOnce.claim() { sink.closed(TransportClosed(reason: reason)) }
        }
        state.withLock { $0.stream = task }
        // The endpoint event comes first; the client's connect deadline bounds the wait.
        _ = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<HTTPEndpoint, any Error>) in
                let outcome = state.withLock { s -> Result<HTTPEndpoint, TransportError>? in
                    if let url = s.postURL { return .success(url) }
                    if let reason = s.ended { return .failure(TransportError(message: reason, connectionLost: true)) }
                    s.waiter = c
                    return nil
                }
                if let outcome { c.resume(with: outcome) }
            }
        } onCancel: {
            task.cancel()
        }
    }

    func send(_ message: JSON, requestID: Int64?) async throws -> Bool {
        guard let url = state.withLock({ $0.postURL }) else {
            throw TransportError(message: "no endpoint from the SSE stream yet", connectionLost: true)
        }
        var request = HTTPClientRequest(url: url.description)
        request.method = .POST
        request.headers = connection.headers
        request.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        request.body = .bytes(message.serialized())
        do {
            let response = try await connection.http.execute(request, deadline: .now() + connection.connectTimeout)
            let body = try await response.body.collect(upTo: 1 << 20)
            guard (200..<300).contains(response.status.code) else {
                let text = String(decoding: body.readableBytesView.prefix(200), as: UTF8.self)
                throw TransportError(
                    message: connection.scrub("upstream answered HTTP \(response.status.code): \(text)"))
            }
        } catch let e as TransportError {
            throw e
        } catch {
            throw connection.describe(error)
        }
        return false
    }

    func initialized(protocolVersion: String) {}

    func fail(_ reason: TransportClosed) {
        let (task, sink) = state.withLock { ($0.stream, $0.sink) }
        task?.cancel()
        if closedOnce.claim() { sink?.closed(reason) }
    }

    func close() async {
        fail(TransportClosed(reason: "connection closed"))
    }
}
