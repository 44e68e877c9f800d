#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// What became of one batch a `BatchSender` handed to its sink.
public enum DeliveryOutcome: Sendable {
    /// Delivered; the next batch follows.
    case delivered
    /// Given up on: the batch is dropped and counted with the buffer's drops (the sink logs why).
    case dropped
    /// Not delivered yet: the same batch goes again after `afterMs` milliseconds (nil: the next backoff delay,
    /// never more than the backoff's maximum).
    case retry(afterMs: Int?)
}

/// The sending side of a batching sink: one task takes batches from the sink's `RecordBuffer` — when `batchSize`
/// records wait, when the oldest has waited `intervalMs`, or at once while stopping — and hands each to the sink's
/// `deliver` until it is delivered or dropped, waiting between attempts with backoff and jitter. A batch in hand is
/// never put back, so the oldest records go first. Drops are reported through the sink's `reportDrops` at most once
/// per 10 s. `stop()` refuses new records and gives what is held `stopGraceMs` to go out; what is still held then
/// is counted as dropped.
public final class BatchSender<Element: Sendable>: Sendable {
    public let buffer: RecordBuffer<Element>
    let batchSize: Int
    let intervalMs: Int64
    let stopGraceMs: Int64
    let state = Mutex<(stopping: Bool, finished: Bool, deadline: Int64)>((false, false, 0))

    /// How often an idle sender looks for records, in milliseconds.
    static var idlePollMs: Int { 10 }

    public init(buffer: RecordBuffer<Element>, batchSize: Int, intervalMs: Int64, stopGraceMs: Int64 = 2_500) {
        self.buffer = buffer
        self.batchSize = max(1, batchSize)
        self.intervalMs = max(0, intervalMs)
        self.stopGraceMs = stopGraceMs
    }

    public var stopping: Bool { state.withLock { $0.stopping } }
    public var finished: Bool { state.withLock { $0.finished } }

    /// Refuses further records and starts the grace period for what is held.
    public func stop() {
        buffer.close()
        state.withLock {
            guard !$0.stopping else { return }
            $0.stopping = true
            $0.deadline = monotonicMs() + stopGraceMs
        }
    }

    /// `stop()`, then waits (blocking the calling thread) until `run` has returned, at most the grace period and
    /// half a second more. For a sink's `deinit`.
    public func stopAndWait() {
        stop()
        let deadline = monotonicMs() + stopGraceMs + 500
        while !finished, monotonicMs() < deadline { usleep(5_000) }
    }

    func pastDeadline() -> Bool { state.withLock { $0.stopping && monotonicMs() >= $0.deadline } }

    /// Sleeps `ms` milliseconds, or less once stopping.
    public func pause(ms: Int) async {
        let until = monotonicMs() + Int64(ms)
        while monotonicMs() < until && !stopping {
            try? await Task.sleep(for: .milliseconds(min(Self.idlePollMs, Int(until - monotonicMs()) + 1)))
        }
    }

    /// Sends until stopped and drained (or the grace period is over).
    /// - Parameters:
    ///   - backoff: delays between attempts at one batch; reset after each delivery.
    ///   - deliver: one attempt at `batch`.
    ///   - reportDrops: logs and counts the drops since the last report; true if there were any.
    ///   - finish: runs last (e.g. closes a connection).
    public func run(backoff: Backoff, deliver: ([Element]) async -> DeliveryOutcome, reportDrops: () -> Bool,
                    finish: () async -> Void = {}) async {
        var backoff = backoff
        var batch: [Element] = []
        var lastFlush = monotonicMs()
        var lastDropReport: Int64 = 0
        while true {
            if stopping && ((batch.isEmpty && buffer.count == 0) || pastDeadline()) { break }
            if monotonicMs() - lastDropReport >= 10_000, reportDrops() { lastDropReport = monotonicMs() }
            if batch.isEmpty {
                let waiting = buffer.count
                let due = waiting >= batchSize || (waiting > 0 && (monotonicMs() - lastFlush >= intervalMs || stopping))
                guard due else {
                    try? await Task.sleep(for: .milliseconds(Self.idlePollMs))
                    continue
                }
                batch = buffer.take(max: batchSize)
                lastFlush = monotonicMs()
            }
            switch await deliver(batch) {
            case .delivered:
                batch = []
                backoff.reset()
            case .dropped:
                buffer.countDropped(batch.count)
                batch = []
            case .retry(let afterMs):
                await pause(ms: min(afterMs ?? backoff.next(), backoff.maximumMs))
            }
        }
        buffer.countDropped(batch.count + buffer.take(max: Int.max).count)
        _ = reportDrops()
        await finish()
        state.withLock { $0.finished = true }
    }
}
