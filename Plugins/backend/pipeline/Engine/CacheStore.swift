import MCPGJSON
import Synchronization

/// `cache` steps' entries, per slot (one slot per cache step in the config), shared by all calls.
public final class CacheStore: Sendable {
    struct Entry: Sendable {
        let value: JSON
        let scope: Scope
        let expires: ContinuousClock.Instant
    }
    struct Slot: Sendable {
        var entries: [String: Entry] = [:]
        var order: [String] = []
    }
    private let slots: Mutex<[Int: Slot]> = Mutex([:])

    public init() {}

    func get(_ slot: Int, _ key: String) -> Entry? {
        slots.withLock { s in
            guard let e = s[slot]?.entries[key] else { return nil }
            if e.expires <= .now {
                s[slot]!.entries[key] = nil
                s[slot]!.order.removeAll { $0 == key }
                return nil
            }
            return e
        }
    }

    func put(_ slot: Int, _ key: String, _ entry: Entry, max: Int) {
        slots.withLock { s in
            var sl = s[slot] ?? Slot()
            if sl.entries.updateValue(entry, forKey: key) == nil { sl.order.append(key) }
            while sl.order.count > max {
                let oldest = sl.order.removeFirst()
                sl.entries[oldest] = nil
            }
            s[slot] = sl
        }
    }

    /// Entries held in `slot` (for tests).
    public func count(_ slot: Int) -> Int { slots.withLock { $0[slot]?.entries.count ?? 0 } }
}

