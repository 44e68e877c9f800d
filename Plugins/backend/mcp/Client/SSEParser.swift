/// One Server-Sent Event.
struct SSEEvent: Sendable, Equatable {
    var event: String = "message"
    var data: String = ""
    var id: String?
    /// The `retry` field: the reconnection delay the server asks for, in milliseconds.
    var retry: Int?
}

/// Parses a `text/event-stream` incrementally (the WHATWG rules): lines end with LF, CRLF or CR; `data` lines
/// accumulate joined by LF; a blank line dispatches; comments (`:`) and unknown fields are ignored; an event
/// with no data is not dispatched (but its `retry` is reported).
struct SSEParser: Sendable {
    private var line: [UInt8] = []
    private var current = SSEEvent()
    private var hasData = false
    private var lastWasCR = false
    /// Refuses lines longer than this (a runaway stream must not exhaust memory).
    let maxLine: Int

    init(maxLine: Int = 64 << 20) { self.maxLine = maxLine }

    struct TooLong: Error {}

    /// Feeds bytes; returns the events completed by them.
    mutating func feed(_ bytes: some Sequence<UInt8>) throws -> [SSEEvent] {
        var events: [SSEEvent] = []
        for b in bytes {
            if b == 0x0A, lastWasCR {
                lastWasCR = false
                continue
            }
            lastWasCR = b == 0x0D
            if b == 0x0A || b == 0x0D {
                if let e = endLine() { events.append(e) }
            } else {
                line.append(b)
                if line.count > maxLine { throw TooLong() }
            }
        }
        return events
    }

    private mutating func endLine() -> SSEEvent? {
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty {
            defer {
                current = SSEEvent()
                hasData = false
            }
            guard hasData else {
                if current.retry != nil { return SSEEvent(event: "", data: "", id: nil, retry: current.retry) }
                return nil
            }
            return current
        }
        if line.first == UInt8(ascii: ":") { return nil }
        var field: ArraySlice<UInt8> = line[...]
        var value: ArraySlice<UInt8> = []
        if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
            field = line[..<colon]
            value = line[(colon + 1)...]
            if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        }
        let v = String(decoding: value, as: UTF8.self)
        switch String(decoding: field, as: UTF8.self) {
        case "event": current.event = v.isEmpty ? "message" : v
        case "data":
            current.data = hasData ? current.data + "\n" + v : v
            hasData = true
        case "id": if !v.utf8.contains(0) { current.id = v }
        case "retry": if let ms = Int(v), ms >= 0 { current.retry = ms }
        default: break
        }
        return nil
    }
}
