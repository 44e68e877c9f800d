import Dispatch
import Synchronization

/// One process-wide timer for plugin call deadlines.
///
/// A `Task { try await Task.sleep(…) }` per call costs ~13 µs to start and cancel (measured, debug build); this
/// costs a lock and two dictionary operations. Deadlines are rounded up to whole milliseconds and kept in buckets
/// per millisecond; one Dispatch timer is armed for the earliest bucket. Expiry actions run on the timer's queue and
/// must not block.
final class DeadlineTimer: Sendable {
    static let shared = DeadlineTimer()

    /// What `cancel` needs to find an entry.
    struct Handle: Sendable {
        let tick: UInt64
        let id: UInt64
    }

    private struct State {
        var buckets: [UInt64: [UInt64: @Sendable () -> Void]] = [:]
        /// Ticks that have a bucket, as a min-heap.
        var heap: [UInt64] = []
        /// The tick the Dispatch timer is armed for (`.max` when idle).
        var armed: UInt64 = .max
        var nextID: UInt64 = 0
        /// Only touched under the lock (Dispatch sources are not `Sendable`).
        var source: DispatchSourceTimer?

        mutating func arm(_ tick: UInt64) {
            armed = tick
            source?.schedule(
                deadline: tick == .max ? .distantFuture : DispatchTime(uptimeNanoseconds: tick * DeadlineTimer.tickNanos),
                leeway: .microseconds(200))
        }
    }

    fileprivate static let tickNanos: UInt64 = 1_000_000
    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "mcpg.plugin-deadlines")

    private init() {
        let queue = self.queue
        state.withLock { st in
            let source = DispatchSource.makeTimerSource(queue: queue)
            source.setEventHandler { DeadlineTimer.shared.fire() }
            source.schedule(deadline: .distantFuture)
            source.activate()
            st.source = source
        }
    }

    /// Runs `action` once `after` has passed, unless cancelled first.
    func schedule(after: Duration, _ action: @escaping @Sendable () -> Void) -> Handle {
        let (s, a) = after.components
        let nanos = s >= Int64(UInt64.max / 1_000_000_000 / 2) ? UInt64.max / 2 : UInt64(max(0, s)) * 1_000_000_000 + UInt64(max(0, a) / 1_000_000_000)
        let now = DispatchTime.now().uptimeNanoseconds
        let tick = (now + nanos + Self.tickNanos - 1) / Self.tickNanos
        return state.withLock { st in
            st.nextID &+= 1
            let id = st.nextID
            if st.buckets[tick] == nil {
                st.buckets[tick] = [id: action]
                Self.push(tick, into: &st.heap)
            } else {
                st.buckets[tick]![id] = action
            }
            if tick < st.armed { st.arm(tick) }
            return Handle(tick: tick, id: id)
        }
    }

    /// Drops a pending action (no effect once it ran).
    func cancel(_ h: Handle) {
        // An emptied bucket stays until its tick comes, so its tick is in the heap once, however many calls
        // schedule into it and cancel.
        _ = state.withLock { st in st.buckets[h.tick]?.removeValue(forKey: h.id) }
    }

    /// Number of pending actions (for tests).
    var pending: Int { state.withLock { st in st.buckets.values.reduce(0) { $0 + $1.count } } }

    private func fire() {
        let nowTick = DispatchTime.now().uptimeNanoseconds / Self.tickNanos
        let due: [@Sendable () -> Void] = state.withLock { st in
            var due: [@Sendable () -> Void] = []
            while let top = st.heap.first, top <= nowTick {
                Self.pop(from: &st.heap)
                if let bucket = st.buckets.removeValue(forKey: top) { due.append(contentsOf: bucket.values) }
            }
            // Skip ticks whose buckets were emptied by cancel.
            while let top = st.heap.first, st.buckets[top]?.isEmpty ?? true {
                Self.pop(from: &st.heap)
                st.buckets[top] = nil
            }
            st.arm(st.heap.first ?? .max)
            return due
        }
        for action in due { action() }
    }

    private static func push(_ v: UInt64, into h: inout [UInt64]) {
        h.append(v)
        var i = h.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            guard h[p] > h[i] else { break }
            h.swapAt(p, i)
            i = p
        }
    }

    private static func pop(from h: inout [UInt64]) {
        h.swapAt(0, h.count - 1)
        h.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1
            let r = l + 1
            var m = i
            if l < h.count && h[l] < h[m] { m = l }
            if r < h.count && h[r] < h[m] { m = r }
            if m == i { break }
            h.swapAt(i, m)
            i = m
        }
    }
}
