import MCPGJSON

/// One connection to the upstream: a started process or an HTTP session. The client makes a new one for each
/// (re)connect and never reuses a closed one.
protocol Transport: Sendable {
    /// True when every message from the upstream says which of our requests it relates to (on HTTP, messages on
    /// a POST's response stream relate to that POST's request). False on stdio and the legacy SSE transport,
    /// where everything arrives on one stream.
    var correlatesStreams: Bool { get }

    /// Opens the connection (spawns the process, opens the SSE stream). Messages from the upstream go to
    /// `sink.message`; `sink.closed` is called once when the connection ends for any reason, close() included.
    func start(_ sink: TransportSink) async throws

    /// Sends one JSON-RPC message. For a request over Streamable HTTP this returns once the POST's answer has
    /// been read to its end (every message on it delivered to the sink first), and says so by returning true;
    /// the other transports return false once the message is written.
    /// - Parameter requestID: our id when `message` is a request, so answers on its stream are tagged with it.
    /// - Throws: `TransportError`.
    func send(_ message: JSON, requestID: Int64?) async throws -> Bool

    /// Called after `initialize` succeeded: HTTP adds `MCP-Protocol-Version` from now on and opens the GET stream.
    func initialized(protocolVersion: String)

    /// Ends the connection as if the upstream had gone away, reporting `reason` through `sink.closed`.
    func fail(_ reason: TransportClosed)

    /// Shuts down gracefully: stdio closes stdin, waits, then SIGTERM, then SIGKILL (LIFE-9); HTTP sends
    /// DELETE for its session (HTTP-14).
    func close() async
}

/// Where a transport delivers what the upstream sends.
struct TransportSink: Sendable {
    /// One message, and the id of our request whose answer stream carried it (nil: not tied to a request).
    let message: @Sendable (JSON, Int64?) -> Void
    /// The connection ended; called at most once.
    let closed: @Sendable (TransportClosed) -> Void
}

/// Why a connection ended.
struct TransportClosed: Sendable, Error, CustomStringConvertible {
    var reason: String
    /// An HTTP upstream forgot our session (404): reconnect at once, without backoff (HTTP-13).
    var sessionExpired = false
    var description: String { reason }
}

/// A transport-level failure of one send.
struct TransportError: Error, Sendable, CustomStringConvertible {
    var message: String
    /// The upstream cannot be reached at all (refused, reset, DNS): the connection is considered down.
    var connectionLost = false
    /// HTTP 404 on our session (HTTP-13).
    var sessionExpired = false
    var description: String { message }
}

/// Invokes `body` once; later calls do nothing. For `sink.closed`, which several paths may race to call.
final class Once: Sendable {
    private let done = MutexBox(false)
    /// Returns true the first time.
    func claim() -> Bool {
        done.withLock { d in
            if d { return false }
            d = true
            return true
        }
    }
    var claimed: Bool { done.withLock { $0 } }
}
