#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A bounded FIFO between a sink's `write` (called from any thread) and the one sender that drains it.
///
/// `append` never waits: when the buffer holds `capacity` items the new one is dropped and counted, so a sink
/// whose receiver is down holds at most `capacity` records and never slows the calls that produce them.
/// The sender takes batches with `take(max:)` and keeps a batch it could not deliver in hand (it does not go
/// back into the buffer), so the oldest records are the ones delivered first.
public final class RecordBuffer<Element: Sendable>: Sendable {
    struct State {
        var items: [Element] = []
        var head = 0
        var dropped = 0
        var droppedUnreported = 0
        var closed = false
        var count: Int { items.count - head }
    }

    public let capacity: Int
    let state = Mutex(State())

    public init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Adds `item`; false when it was dropped (the buffer is full, or closed).
    @discardableResult
    public func append(_ item: Element) -> Bool {
        state.withLock { s in
            guard !s.closed, s.count < capacity else {
                s.dropped += 1
                s.droppedUnreported += 1
                return false
            }
            s.items.append(item)
            return true
        }
    }

    /// Up to `max` of the oldest items, removed from the buffer.
    public func take(max: Int) -> [Element] {
        state.withLock { s in
            let n = Swift.min(max, s.count)
            guard n > 0 else { return [] }
            let out = Array(s.items[s.head..<s.head + n])
            s.head += n
            // Compact once the consumed prefix dominates, so memory stays proportional to what is held.
            if s.head == s.items.count {
                s.items.removeAll(keepingCapacity: s.items.capacity <= 4096)
                s.head = 0
            } else if s.head > 1024 && s.head * 2 > s.items.count {
                s.items.removeFirst(s.head)
                s.head = 0
            }
            return out
        }
    }

    /// Items waiting.
    public var count: Int { state.withLock { $0.count } }

    /// Items dropped since the buffer was made.
    public var dropped: Int { state.withLock { $0.dropped } }

    /// Counts `n` items the sender gave up on (e.g. refused by the receiver) with the dropped ones.
    public func countDropped(_ n: Int) {
        guard n > 0 else { return }
        state.withLock { s in
            s.dropped += n
            s.droppedUnreported += n
        }
    }

    /// Drops counted since the last call (for a log line once per interval, not one per record).
    public func takeUnreportedDrops() -> Int {
        state.withLock { s in
            defer { s.droppedUnreported = 0 }
            return s.droppedUnreported
        }
    }

    /// Refuses (and counts) every later `append`; what is held can still be taken.
    public func close() {
        state.withLock { $0.closed = true }
    }
}

/// Exponential backoff with full jitter: attempt 0 waits up to `initial`, each later attempt up to twice the
/// previous bound, never more than `maximum` (milliseconds).
public struct Backoff: Sendable {
    public var initialMs: Int
    public var maximumMs: Int
    public private(set) var attempt = 0

    public init(initialMs: Int = 100, maximumMs: Int = 10_000) {
        self.initialMs = max(1, initialMs)
        self.maximumMs = max(self.initialMs, maximumMs)
    }

    /// The next delay in milliseconds (at least half the current bound, so retries never spin).
    public mutating func next() -> Int {
        let shift = min(attempt, 20)
        attempt += 1
        let bound = min(maximumMs, initialMs << shift)
        return bound / 2 + Int.random(in: 0...max(0, bound - bound / 2))
    }

    public mutating func reset() { attempt = 0 }
}

/// Monotonic milliseconds, for batch intervals and deadlines.
public func monotonicMs() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Reads a secret from a file (trailing newlines removed) or an environment variable; exactly one must be set.
/// Errors name the file or variable, never the secret.
public func readSecret(plugin: String, key: String, file: String?, env: String?) throws -> [UInt8]? {
    switch (file, env) {
    case (nil, nil):
        return nil
    case (.some, .some):
        throw SecretError("\(plugin): set only one of \(key)_file and \(key)_env")
    case (let path?, nil):
        guard let fp = fopen(path, "rb") else {
            throw SecretError("\(plugin): cannot read \(key)_file \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(fp) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&chunk, 1, chunk.count, fp)
            if n > 0 { out.append(contentsOf: chunk[0..<n]) }
            if n < chunk.count { break }
            if out.count > 1 << 20 { throw SecretError("\(plugin): \(key)_file \(path) is larger than 1 MiB") }
        }
        while let last = out.last, last == 0x0A || last == 0x0D { out.removeLast() }
        guard !out.isEmpty else { throw SecretError("\(plugin): \(key)_file \(path) is empty") }
        return out
    case (nil, let name?):
        guard let v = getenv(name) else { throw SecretError("\(plugin): environment variable \(name) is not set") }
        let bytes = Array(String(cString: v).utf8)
        guard !bytes.isEmpty else { throw SecretError("\(plugin): environment variable \(name) is empty") }
        return bytes
    }
}

/// A configuration problem with a secret; the message names where it was looked for, never its value.
public struct SecretError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}
