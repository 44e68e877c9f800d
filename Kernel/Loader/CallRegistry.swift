import Logging
import Synchronization

/// What `host_ctx` points at: one per plugin instance, retained for the life of the process (the host table that
/// carries it must stay valid that long).
final class HostContext: Sendable {
    let label: String
    let pluginName: String
    let logger: Logger
    let metrics: PluginMetrics
    /// Position in `contexts` + 1; the high bits of every call id of this instance.
    let index: UInt64

    init(label: String, pluginName: String, logger: Logger, metrics: PluginMetrics, index: UInt64) {
        self.label = label
        self.pluginName = pluginName
        self.logger = logger
        self.metrics = metrics
        self.index = index
    }

    /// Registers a new context (append-only; contexts live as long as the process).
    static func make(label: String, pluginName: String, logger: Logger, metrics: PluginMetrics) -> HostContext {
        contexts.withLock { all in
            let c = HostContext(
                label: label, pluginName: pluginName, logger: logger, metrics: metrics, index: UInt64(all.count + 1))
            all.append(c)
            return c
        }
    }

    /// The context whose call ids carry `index`, if any.
    static func find(index: UInt64) -> HostContext? {
        contexts.withLock { all in index >= 1 && index <= UInt64(all.count) ? all[Int(index - 1)] : nil }
    }
}

private let contexts = Mutex<[HostContext]>([])

/// One call in flight. The `mcpg_call *` a plugin sees is not a pointer to this box but its numeric id: a plugin that
/// completes twice, or emits after completing, then finds no box instead of freed memory.
final class CallBox: Sendable {
    enum Outcome { case lost, wonBeforeStart, wonAfterStart }

    private enum Phase {
        case idle
        case waiting(UnsafeContinuation<PluginReply, Never>)
        case resolvedEarly(PluginReply)
        case done
    }

    let id: UInt64
    let context: HostContext
    let emit: (@Sendable ([UInt8]) -> Bool)?
    private let phase = Mutex<Phase>(.idle)

    init(id: UInt64, context: HostContext, emit: (@Sendable ([UInt8]) -> Bool)?) {
        self.id = id
        self.context = context
        self.emit = emit
    }

    /// Stores the continuation; returns false (after resuming it) when the call was resolved before it started.
    func attach(_ c: UnsafeContinuation<PluginReply, Never>) -> Bool {
        let early: PluginReply? = phase.withLock { p in
            switch p {
            case .idle:
                p = .waiting(c)
                return nil
            case .resolvedEarly(let r):
                p = .done
                return r
            case .waiting, .done:
                preconditionFailure("call box attached twice")
            }
        }
        guard let early else { return true }
        c.resume(returning: early)
        return false
    }

    /// Resolves the call with `reply` unless something already did; says who won and when.
    func resolve(_ reply: PluginReply) -> Outcome {
        let (outcome, cont): (Outcome, UnsafeContinuation<PluginReply, Never>?) = phase.withLock { p in
            switch p {
            case .idle:
                p = .resolvedEarly(reply)
                return (.wonBeforeStart, nil)
            case .waiting(let c):
                p = .done
                return (.wonAfterStart, c)
            case .resolvedEarly, .done:
                return (.lost, nil)
            }
        }
        cont?.resume(returning: reply)
        return outcome
    }

    /// True until the call is resolved (completed, timed out or cancelled).
    var isLive: Bool {
        phase.withLock { p in
            switch p {
            case .idle, .waiting: return true
            case .resolvedEarly, .done: return false
            }
        }
    }
}

/// Calls in flight, by id, sharded to keep lock contention off the hot path.
enum CallRegistry {
    private final class Shard: Sendable {
        let calls = Mutex<[UInt64: CallBox]>([:])
    }

    private static let shardCount = 16
    private static let shards: [Shard] = (0..<shardCount).map { _ in Shard() }
    private static let sequence = Atomic<UInt64>(0)
    /// Low 40 bits: sequence; high 24 bits: instance index.
    static let sequenceBits: UInt64 = 40

    static func nextID(instance: UInt64) -> UInt64 {
        let seq = sequence.wrappingAdd(1, ordering: .relaxed).newValue & ((1 << sequenceBits) - 1)
        return instance << sequenceBits | seq
    }

    static func insert(_ box: CallBox) {
        shards[Int(box.id % UInt64(shardCount))].calls.withLock { $0[box.id] = box }
    }

    static func find(_ id: UInt64) -> CallBox? {
        shards[Int(id % UInt64(shardCount))].calls.withLock { $0[id] }
    }

    @discardableResult
    static func remove(_ id: UInt64) -> CallBox? {
        shards[Int(id % UInt64(shardCount))].calls.withLock { $0.removeValue(forKey: id) }
    }

    /// Number of calls in flight or awaiting a late completion (for tests and diagnostics).
    static var count: Int { shards.reduce(0) { n, s in n + s.calls.withLock { $0.count } } }
}
