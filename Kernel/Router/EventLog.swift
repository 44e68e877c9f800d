import MCPGJSON
import Synchronization

/// The events of one SSE stream of a session, kept so a client that lost the connection can resume with
/// `Last-Event-ID` (HTTP-11). Event ids are `<stream>-<seq>`: unique across the session's streams and naming the
/// stream, so a replay never mixes streams. Bounded: the newest `maxEvents` events and `maxBytes` bytes.
public final class EventLog: Sendable {
    /// Where events go while a connection carries the stream: the event's id, its JSON-RPC message, and whether
    /// it is the stream's last (the request's answer). Returns false when that connection is gone.
    public typealias Sink = @Sendable (_ id: String, _ message: JSON, _ final: Bool) -> Bool

    struct State {
        var seq = 0
        var events: [(seq: Int, message: JSON, bytes: Int, final: Bool)] = []
        var bytes = 0
        var sink: Sink?
        var finished = false
    }
    public let stream: Int
    /// A POST's stream ends with its request's answer; the GET stream carries unsolicited messages (HTTP-9).
    public let isRequestStream: Bool
    let state = Mutex(State())
    static let maxEvents = 256
    static let maxBytes = 1 << 20

    init(stream: Int, isRequestStream: Bool) {
        self.stream = stream
        self.isRequestStream = isRequestStream
    }

    func eventID(_ seq: Int) -> String { "\(stream)-\(seq)" }

    /// The id of the priming event a stream starts with (HTTP-6): nothing to replay before it.
    public var primingID: String { eventID(0) }

    /// Records `message` and sends it to the current connection, if any. Returns the event's id; nil when the
    /// stream already ended.
    @discardableResult
    public func append(_ message: JSON, final: Bool = false) -> String? {
        let size = message.serialized().count
        let (sink, id) = state.withLock { s -> (Sink?, String?) in
            guard !s.finished else { return (nil, nil) }
            s.seq += 1
            s.events.append((s.seq, message, size, final))
            s.bytes += size
            while s.events.count > Self.maxEvents || (s.bytes > Self.maxBytes && s.events.count > 1) {
                s.bytes -= s.events.removeFirst().bytes
            }
            if final { s.finished = true }
            return (s.sink, eventID(s.seq))
        }
        guard let id else { return nil }
        if let sink, !sink(id, message, final) { attach(nil) }
        return id
    }

    /// Sets the connection that carries the stream from now on (nil: none).
    public func attach(_ sink: Sink?) { state.withLock { $0.sink = sink } }

    /// Sends the events after `seq` to `sink` and makes it the stream's connection (unless the stream already
    /// ended). Returns false when events after `seq` were already dropped from the log (the replay has a gap).
    public func resume(after seq: Int, to sink: @escaping Sink) -> Bool {
        let (missed, complete) = state.withLock { s -> ([(seq: Int, message: JSON, bytes: Int, final: Bool)], Bool) in
            let missed = s.events.filter { $0.seq > seq }
            let complete = seq >= s.seq || (s.events.first.map { $0.seq <= seq + 1 } ?? false)
            if !s.finished { s.sink = sink }
            return (missed, complete)
        }
        for e in missed { _ = sink(eventID(e.seq), e.message, e.final) }
        return complete
    }

    public var isFinished: Bool { state.withLock { $0.finished } }

    /// Parses `<stream>-<seq>`.
    public static func parse(_ lastEventID: String) -> (stream: Int, seq: Int)? {
        let parts = lastEventID.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let s = Int(parts[0]), let q = Int(parts[1]), s >= 0, q >= 0 else { return nil }
        return (s, q)
    }
}

extension Session {
    static let maxEventLogs = 16

    /// A new stream's log; the oldest logs beyond `maxEventLogs` are dropped.
    public func newEventLog(requestStream: Bool) -> EventLog {
        logs.withLock { l in
            l.next += 1
            let log = EventLog(stream: l.next, isRequestStream: requestStream)
            l.byStream[l.next] = log
            if l.byStream.count > Self.maxEventLogs, let oldest = l.byStream.keys.min() { l.byStream[oldest] = nil }
            return log
        }
    }

    public func eventLog(_ stream: Int) -> EventLog? { logs.withLock { $0.byStream[stream] } }
}
