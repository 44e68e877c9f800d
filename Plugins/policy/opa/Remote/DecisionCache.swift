import MCPGJSON
import Synchronization

/// A serialized input, the cache key. The dictionary hashes the bytes and compares them in full on a hash
/// match, so two inputs never share an answer by collision.
struct CacheKey: Hashable, Sendable {
    let bytes: [UInt8]
}

/// Answers from the server by input, each valid for a fixed time, at most `capacity` of them.
///
/// When full, the entry inserted longest ago is evicted (a ring of keys in insertion order), so a flood of
/// distinct inputs cannot grow memory. Only `.value` and `.undefined` answers are stored: a failure must be
/// retried on the next call, not replayed. All operations on many keys take the lock once.
final class DecisionCache: Sendable {
    private struct Entry {
        var result: CachedResult
        var expires: ContinuousClock.Instant
        var slot: Int
    }

    private struct Storage {
        var entries: [CacheKey: Entry] = [:]
        /// Keys in insertion order; `ring[next]` is the oldest once the ring is full.
        var ring: [CacheKey?] = []
        var next = 0
    }

    let ttl: Duration
    let capacity: Int
    private let storage = Mutex(Storage())

    init(ttl: Duration, capacity: Int) {
        self.ttl = ttl
        self.capacity = max(1, capacity)
    }

    var isEnabled: Bool { ttl > .zero }

    var count: Int { storage.withLock { $0.entries.count } }

    /// The cached answer for each key, or nil where there is none or it has expired.
    func lookup(_ keys: [CacheKey], now: ContinuousClock.Instant = .now) -> [CachedResult?] {
        guard isEnabled else { return Array(repeating: nil, count: keys.count) }
        return storage.withLock { s in
            keys.map { key -> CachedResult? in
                guard let e = s.entries[key] else { return nil }
                if e.expires > now { return e.result }
                s.entries[key] = nil
                s.ring[e.slot] = nil
                return nil
            }
        }
    }

    /// Stores answers that arrived together; they expire `ttl` from `now`.
    func store(_ items: [(CacheKey, CachedResult)], now: ContinuousClock.Instant = .now) {
        guard isEnabled, !items.isEmpty else { return }
        let expires = now + ttl
        storage.withLock { s in
            for (key, result) in items {
                if var e = s.entries[key] {
                    e.result = result
                    e.expires = expires
                    s.entries[key] = e
                    continue
                }
                let slot = s.next
                s.next = (s.next + 1) % capacity
                if slot < s.ring.count {
                    if let old = s.ring[slot] { s.entries[old] = nil }
                    s.ring[slot] = key
                } else {
                    s.ring.append(key)
                }
                s.entries[key] = Entry(result: result, expires: expires, slot: slot)
            }
        }
    }

    func removeAll() {
        storage.withLock { $0 = Storage() }
    }
}

/// A cacheable answer: the document's value, or `undefined`.
enum CachedResult: Sendable, Equatable {
    case value(JSON)
    case undefined
}
