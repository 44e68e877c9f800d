import CMCPGPlugin
import Logging
import MCPGJSON
import Synchronization

/// One instance of a loaded plugin (one config entry that uses it): the kernel side of `create`, `handle`,
/// `complete`, `cancel` and the host table.
///
/// Instances live for the life of the process, like the plugin image (reload means a new process). The one
/// exception is `finish()` at a clean shutdown, for instances that hold undelivered data (sinks' buffers). Calls
/// may be made concurrently from any task.
public final class PluginInstance: Sendable {
    /// The plugin this is an instance of.
    public let plugin: LoadedPlugin
    /// The label logs carry as `mcpg.plugin.id` (e.g. `identity[0]:apikey`).
    public let label: String
    let context: HostContext
    let instance: InstancePointer

    private let finished = Atomic<Bool>(false)

    /// Calls the plugin's `destroy`, which lets it deliver what it still holds (a sink's buffered records) before
    /// it returns. Only at a clean shutdown, once nothing calls the instance any more; a second call does nothing.
    /// Blocks the calling thread while the plugin finishes.
    public func finish() {
        guard !finished.exchange(true, ordering: .acquiringAndReleasing) else { return }
        plugin.descriptor.pointee.destroy(instance.raw)
    }

    private init(plugin: LoadedPlugin, label: String, context: HostContext, instance: InstancePointer) {
        self.plugin = plugin
        self.label = label
        self.context = context
        self.instance = instance
    }

    /// Creates an instance with `config` (sent to the plugin as JSON; use `{}` when the config block is absent).
    /// Runs the plugin's `create` on the calling thread.
    /// - Parameters:
    ///   - label: names the instance in logs (`mcpg.plugin.id`) and errors.
    ///   - metrics: where the plugin's `metric` samples go.
    /// - Throws: `LoaderError.createFailed` with the plugin's own message, naming the file.
    public static func create(
        _ plugin: LoadedPlugin, config: JSON, label: String, logger: Logger, metrics: PluginMetrics = .shared
    ) throws(LoaderError) -> PluginInstance {
        var log = logger
        log[metadataKey: "mcpg.plugin.id"] = "\(label)"
        let context = HostContext.make(label: label, pluginName: plugin.name, logger: log, metrics: metrics)
        let table = UnsafeMutablePointer<mcpg_host>.allocate(capacity: 1)
        table.initialize(
            to: mcpg_host(
                struct_size: UInt32(MemoryLayout<mcpg_host>.size), abi_version: MCPG_ABI_MAJOR << 16 | MCPG_ABI_MINOR,
                host_ctx: Unmanaged.passRetained(context).toOpaque(), log: hostLog, metric: hostMetric, emit: hostEmit))
        let configBytes = config.serialized()
        var error = [CChar](repeating: 0, count: Int(MCPG_ERROR_CAPACITY) + 1)
        var raw: UnsafeMutableRawPointer?
        let status = configBytes.withUnsafeBufferPointer { c in
            error.withUnsafeMutableBufferPointer { e in
                plugin.descriptor.pointee.create(
                    UnsafePointer(table), mcpg_bytes(ptr: c.baseAddress, len: c.count), &raw, e.baseAddress)
            }
        }
        guard status == Int32(MCPG_STATUS_OK.rawValue) else {
            let bytes = error.prefix(Int(MCPG_ERROR_CAPACITY)).prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
            let message = bytes.isEmpty ? "no reason given" : String(decoding: bytes, as: UTF8.self)
            throw LoaderError(.createFailed, "\(plugin.path): plugin \(plugin.name) (\(label)) failed to start: \(message)")
        }
        log.debug("plugin instance created", metadata: ["mcpg.plugin.name": "\(plugin.name)"])
        return PluginInstance(plugin: plugin, label: label, context: context, instance: InstancePointer(raw: raw))
    }

    /// Runs one op; returns when the plugin completes, or at `timeout`, whichever is first. On timeout (or when the
    /// awaiting task is cancelled) the plugin's `cancel` is called and its late completion is ignored. Never blocks
    /// a thread while waiting. `handle` runs on the calling thread and must not block (ABI contract).
    ///
    /// A call the plugin never completes keeps a small record until it does (the ABI says it must, even after
    /// `cancel`), so a plugin that never answers leaks one record per call.
    /// - Parameters:
    ///   - op: the operation, e.g. "authenticate".
    ///   - request: the op's JSON payload (borrowed by the plugin for the `handle` call only).
    ///   - emit: receives messages the plugin emits for this call until it completes; return false when the client
    ///     cannot take them. Runs synchronously on the plugin's thread: queue the bytes, never block. Without it, the
    ///     plugin's `emit` returns -1.
    /// - Returns: the plugin's reply, or an error reply with `PluginReply.timeoutCode` / `.cancelledCode`.
    public func call(
        op: String, request: [UInt8], timeout: Duration, emit: (@Sendable ([UInt8]) -> Bool)? = nil
    ) async -> PluginReply {
        let box = CallBox(id: CallRegistry.nextID(instance: context.index), context: context, emit: emit)
        CallRegistry.insert(box)
        let timer = DeadlineTimer.shared.schedule(after: timeout) {
            self.expire(box, PluginReply.error(
                code: PluginReply.timeoutCode, message: "plugin \(self.label) did not answer \(op) within \(timeout)"))
        }
        // An unsafe continuation is enough: `CallBox` hands it out exactly once, under its lock.
        let reply = await withTaskCancellationHandler {
            await withUnsafeContinuation { (c: UnsafeContinuation<PluginReply, Never>) in
                if box.attach(c) {
                    invoke(op: op, request: request, id: box.id)
                } else {
                    CallRegistry.remove(box.id)
                }
            }
        } onCancel: {
            expire(box, PluginReply.error(code: PluginReply.cancelledCode, message: "request cancelled"))
        }
        DeadlineTimer.shared.cancel(timer)
        if !reply.ok { countError(reply, op: op) }
        return reply
    }

    /// Counts a failed call in `mcpg_plugin_errors_total{plugin,op}`, unless the caller cancelled it or the plugin
    /// does not have the op (-32601: an optional op it does not implement is not a failure).
    private func countError(_ reply: PluginReply, op: String) {
        let code = reply.errorCode
        guard code != PluginReply.cancelledCode, code != -32601 else { return }
        context.metrics.record(.counter, name: "mcpg_plugin_errors_total", value: 1, labels: [("plugin", label), ("op", op)])
    }

    private func invoke(op: String, request: [UInt8], id: UInt64) {
        var op = op
        op.withUTF8 { o in
            request.withUnsafeBufferPointer { r in
                plugin.descriptor.pointee.handle(
                    instance.raw, mcpg_bytes(ptr: o.baseAddress, len: o.count),
                    mcpg_bytes(ptr: r.baseAddress, len: r.count), callPointer(id), completeCall)
            }
        }
    }

    /// Resolves `box` with a kernel-made reply; when that beats a started plugin call, tells the plugin to stop.
    private func expire(_ box: CallBox, _ reply: PluginReply) {
        guard box.resolve(reply) == .wonAfterStart else { return }
        context.logger.debug("plugin call abandoned", metadata: ["mcpg.plugin.call": "\(box.id)"])
        if let cancel = plugin.descriptor.pointee.cancel {
            cancel(instance.raw, callPointer(box.id))
        }
    }
}

/// The plugin's opaque instance pointer.
struct InstancePointer: @unchecked Sendable {
    // Safe to share: the ABI requires `handle` and `cancel` to accept calls on any thread; the kernel never touches
    // the pointee.
    let raw: UnsafeMutableRawPointer?
}

private func callPointer(_ id: UInt64) -> OpaquePointer? {
    OpaquePointer(bitPattern: UInt(id))
}

private func callID(_ call: OpaquePointer?) -> UInt64 {
    UInt64(UInt(bitPattern: call.map { Int(bitPattern: UnsafeRawPointer($0)) } ?? 0))
}

private func view(_ b: mcpg_bytes) -> UnsafeBufferPointer<UInt8> {
    UnsafeBufferPointer(start: b.len == 0 ? nil : b.ptr, count: b.ptr == nil ? 0 : b.len)
}

/// `mcpg_complete_fn`: copies the response, resolves the call, or logs a stray completion.
private let completeCall: @convention(c) (OpaquePointer?, Int32, mcpg_bytes) -> Void = { call, status, response in
    let id = callID(call)
    guard let box = CallRegistry.remove(id) else {
        let logger = HostContext.find(index: id >> CallRegistry.sequenceBits)?.logger ?? Logger(label: "mcpg.loader")
        logger.error("plugin completed a call that is not in flight (completed twice?)", metadata: ["mcpg.plugin.call": "\(id)"])
        return
    }
    let reply = PluginReply(ok: status == Int32(MCPG_STATUS_OK.rawValue), body: Array(view(response)))
    if box.resolve(reply) == .lost {
        box.context.logger.debug("late plugin completion ignored", metadata: ["mcpg.plugin.call": "\(id)"])
    }
}

/// `mcpg_host.emit`.
private let hostEmit: @convention(c) (OpaquePointer?, mcpg_bytes) -> Int32 = { call, message in
    guard let box = CallRegistry.find(callID(call)), box.isLive, let emit = box.emit else { return -1 }
    return emit(Array(view(message))) ? 0 : -1
}

/// `mcpg_host.log`.
private let hostLog: @convention(c) (UnsafeMutableRawPointer?, Int32, mcpg_bytes, mcpg_bytes) -> Void = {
    ctx, level, message, metadata in
    guard let ctx else { return }
    let context = Unmanaged<HostContext>.fromOpaque(ctx).takeUnretainedValue()
    let lvl: Logger.Level
    switch level {
    case ..<1: lvl = .trace
    case 1: lvl = .debug
    case 2: lvl = .info
    case 3: lvl = .notice
    case 4: lvl = .warning
    case 5: lvl = .error
    default: lvl = .critical
    }
    guard context.logger.logLevel <= lvl else { return }
    var meta: Logger.Metadata = [:]
    let metaBytes = view(metadata)
    if !metaBytes.isEmpty {
        if let object = (try? JSON.parse(metaBytes))?.objectValue {
            for m in object { meta[m.key] = "\(m.value.stringValue ?? m.value.text)" }
        } else {
            meta["mcpg.plugin.bad_metadata"] = "true"
        }
    }
    context.logger.log(level: lvl, "\(String(decoding: view(message), as: UTF8.self))", metadata: meta)
}

/// `mcpg_host.metric`: name prefixed with the plugin's name.
private let hostMetric: @convention(c) (UnsafeMutableRawPointer?, Int32, mcpg_bytes, Double, mcpg_bytes) -> Void = {
    ctx, kind, name, value, labels in
    guard let ctx, let k = PluginMetrics.Kind(rawValue: kind) else { return }
    let context = Unmanaged<HostContext>.fromOpaque(ctx).takeUnretainedValue()
    var pairs: [(String, String)] = []
    let labelBytes = view(labels)
    if !labelBytes.isEmpty, let object = (try? JSON.parse(labelBytes))?.objectValue {
        for m in object { pairs.append((m.key, m.value.stringValue ?? m.value.text)) }
    }
    let metric = "\(context.pluginName)_\(String(decoding: view(name), as: UTF8.self))"
    context.metrics.record(k, name: metric, value: value, labels: pairs)
}
