import CMCPGPlugin
import FoundationEssentials
import MCPGJSON
import Synchronization

/// Builds the ABI descriptor for a plugin type. A plugin's whole export is one line:
///
/// ```swift
/// @_cdecl("mcpg_plugin_v1")
/// public func entry() -> UnsafeRawPointer { PluginExport.descriptor(for: MyPlugin.self) }
/// ```
///
/// Each `.so` holds one plugin type; the descriptor is built on the first call and returned unchanged after.
public enum PluginExport {
    /// The descriptor for `type`, built once; the pointer stays valid for the life of the process.
    public static func descriptor<P: Plugin>(for type: P.Type) -> UnsafeRawPointer {
        state.withLock { s in
            if let d = s.descriptor { return UnsafeRawPointer(d) }
            s.factory = { host, configBytes in try makeHandlers(P.self, host: host, configBytes: configBytes) }
            let d = UnsafeMutablePointer<mcpg_plugin>.allocate(capacity: 1)
            d.initialize(
                to: mcpg_plugin(
                    magic: MCPG_PLUGIN_MAGIC,
                    abi_version: (MCPG_ABI_MAJOR << 16) | MCPG_ABI_MINOR,
                    struct_size: UInt32(MemoryLayout<mcpg_plugin>.size),
                    kind: P.kind.rawValue,
                    name: staticCString(P.name),
                    version: staticCString(P.version),
                    config_schema: staticCString(P.configSchema.text),
                    create: pluginCreate,
                    destroy: pluginDestroy,
                    handle: pluginHandle,
                    cancel: pluginCancel))
            s.descriptor = d
            return UnsafeRawPointer(d)
        }
    }

    /// Decodes the config, builds the plugin and returns its call handlers (the inline one for synchronous plugins).
    static func makeHandlers<P: Plugin>(_ type: P.Type, host: Host, configBytes: [UInt8]) throws
        -> (handler: Handler, now: SyncHandler?)
    {
        let config: P.Config
        do {
            config = try JSONDecoder().decode(
                P.Config.self, from: Data(configBytes.isEmpty ? Array("{}".utf8) : configBytes))
        } catch let e as DecodingError {
            throw PluginError(code: -32602, "invalid config: \(describe(e))")
        }
        let plugin = try P(config: config, host: host)
        let handler: Handler = { op, request, ctx in try await plugin.handle(op: op, request: request, context: ctx) }
        guard let sync = plugin as? any SynchronousPlugin else { return (handler, nil) }
        let now: SyncHandler = { op, request, ctx in try sync.handleNow(op: op, request: request, context: ctx) }
        return (handler, now)
    }

    /// Runs one op on a plugin instance in-process, without the kernel (for tests of a plugin).
    public static func run<P: Plugin>(_ plugin: P, op: String, request: JSON) async throws -> JSON {
        try await plugin.handle(op: op, request: request, context: .detached)
    }
}

typealias Handler = @Sendable (String, JSON, CallContext) async throws -> JSON
typealias SyncHandler = @Sendable (String, JSON, CallContext) throws -> JSON
typealias Factory = @Sendable (Host, [UInt8]) throws -> (handler: Handler, now: SyncHandler?)

struct ExportState: ~Copyable {
    var descriptor: UnsafeMutablePointer<mcpg_plugin>?
    var factory: Factory?
}

// The descriptor pointer is written once under the lock and never mutated after.
private let state = Mutex(ExportState())

private func staticCString(_ s: String) -> UnsafePointer<CChar> {
    let utf8 = Array(s.utf8CString)
    let p = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count)
    p.initialize(from: utf8, count: utf8.count)
    return UnsafePointer(p)
}

private func describe(_ e: DecodingError) -> String {
    func path(_ c: [any CodingKey]) -> String {
        c.isEmpty ? "config" : c.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
    switch e {
    case .typeMismatch(_, let c): return "\(path(c.codingPath)): \(c.debugDescription)"
    case .valueNotFound(_, let c): return "\(path(c.codingPath)): \(c.debugDescription)"
    case .keyNotFound(let k, let c): return "\(path(c.codingPath + [k])): missing required key"
    case .dataCorrupted(let c): return "\(path(c.codingPath)): \(c.debugDescription)"
    @unknown default: return "\(e)"
    }
}

/// One live plugin instance: its handler plus the calls in flight (so `cancel` can reach their Tasks).
final class Instance: Sendable {
    let handler: Handler
    /// Set for a `SynchronousPlugin`: calls are answered inline, without a Task.
    let now: SyncHandler?
    let host: HostPointer
    /// Calls that suspended (still running after `handle` returned), so `cancel` can reach their Tasks.
    let inflight = Mutex<[UInt: CallSlot]>([:])
    init(handler: @escaping Handler, now: SyncHandler?, host: HostPointer) {
        self.handler = handler
        self.now = now
        self.host = host
    }
}

/// The Task serving one call, once it is known.
final class CallSlot: Sendable {
    let task = Mutex<Task<Void, Never>?>(nil)
}

/// The kernel's host table pointer; the table is immutable and lives as long as the process.
struct HostPointer: @unchecked Sendable {
    let raw: UnsafePointer<mcpg_host>?
}

/// A call handle and its completion function, carried into the call's Task.
struct Completion: @unchecked Sendable {
    // The kernel keeps `call` valid until `complete` returns; `complete` may be called from any thread.
    let call: OpaquePointer?
    let complete: mcpg_complete_fn

    func finish(_ status: Int32, _ body: [UInt8]) {
        body.withUnsafeBufferPointer { b in
            complete(call, status, mcpg_bytes(ptr: b.baseAddress, len: b.count))
        }
    }
}

func errorBody(code: Int, message: String) -> [UInt8] {
    JSON.object(["code": .int(Int64(code)), "message": .string(message)]).serialized()
}

private func bytes(_ b: mcpg_bytes) -> UnsafeBufferPointer<UInt8> {
    UnsafeBufferPointer(start: b.ptr, count: b.len)
}

private let pluginCreate:
    @convention(c) (
        UnsafePointer<mcpg_host>?, mcpg_bytes, UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
        UnsafeMutablePointer<CChar>?
    ) -> Int32 = { host, config, instanceOut, errorOut in
        func fail(_ message: String) -> Int32 {
            if let errorOut {
                let cap = Int(MCPG_ERROR_CAPACITY)
                var u = Array(message.utf8.prefix(cap - 1))
                u.append(0)
                u.withUnsafeBufferPointer { b in
                    b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) { errorOut.update(from: $0, count: b.count) }
                }
            }
            return Int32(MCPG_STATUS_ERROR.rawValue)
        }
        guard let factory = state.withLock({ $0.factory }) else { return fail("plugin descriptor not initialized") }
        do {
            let made = try factory(Host(raw: host), Array(bytes(config)))
            let inst = Instance(handler: made.handler, now: made.now, host: HostPointer(raw: host))
            instanceOut?.pointee = Unmanaged.passRetained(inst).toOpaque()
            return Int32(MCPG_STATUS_OK.rawValue)
        } catch let e as PluginError {
            return fail(e.message)
        } catch {
            return fail("\(error)")
        }
    }

private let pluginDestroy: @convention(c) (UnsafeMutableRawPointer?) -> Void = { instance in
    guard let instance else { return }
    Unmanaged<Instance>.fromOpaque(instance).release()
}

private let pluginHandle:
    @convention(c) (UnsafeMutableRawPointer?, mcpg_bytes, mcpg_bytes, OpaquePointer?, mcpg_complete_fn?) -> Void = {
        instance, op, request, call, complete in
        guard let complete else { return }
        let done = Completion(call: call, complete: complete)
        guard let instance else {
            done.finish(Int32(MCPG_STATUS_ERROR.rawValue), errorBody(code: -32603, message: "no plugin instance"))
            return
        }
        let inst = Unmanaged<Instance>.fromOpaque(instance).takeUnretainedValue()
        let opName = String(decoding: bytes(op), as: UTF8.self)
        let payload: JSON
        do {
            payload = request.len == 0 ? .object([:]) : try JSON.parse(bytes(request))
        } catch {
            done.finish(Int32(MCPG_STATUS_ERROR.rawValue), errorBody(code: -32700, message: "\(error)"))
            return
        }
        let ctx = CallContext(call: call, host: inst.host.raw)
        if opName == "client_response" {
            // The client's answer to a request the plugin sent with `CallContext.request` (any plugin kind).
            let (status, body) = outcome { try ClientRequests.deliver(payload) }
            done.finish(status, body)
            return
        }
        if let now = inst.now {
            let (status, body) = outcome { try now(opName, payload, ctx) }
            done.finish(status, body)
            return
        }
        let key = UInt(bitPattern: call.map { Int(bitPattern: UnsafeRawPointer($0)) } ?? 0)
        let handler = inst.handler
        // The call runs in a Task that starts immediately on the kernel's thread: a plugin method that never
        // suspends (most identity, policy and transform plugins) completes before `handle` returns, with no
        // thread hop. One that suspends continues on this plugin's own executor. The slot is registered first so
        // `cancel` can find a call that is still running; a finished call removes it.
        let slot = CallSlot()
        inst.inflight.withLock { $0[key] = slot }
        let task = Task.immediate {
            let status: Int32
            let body: [UInt8]
            do {
                let result = try await handler(opName, payload, ctx)
                (status, body) = (Int32(MCPG_STATUS_OK.rawValue), result.serialized())
            } catch {
                (status, body) = failure(error)
            }
            _ = inst.inflight.withLock { $0.removeValue(forKey: key) }
            done.finish(status, body)
        }
        slot.task.withLock { $0 = task }
    }

/// The status and payload for a call's result or error.
private func outcome(_ body: () throws -> JSON) -> (Int32, [UInt8]) {
    do {
        return (Int32(MCPG_STATUS_OK.rawValue), try body().serialized())
    } catch {
        return failure(error)
    }
}

/// The error status and `{"code","message"}` payload for a thrown error.
private func failure(_ error: any Error) -> (Int32, [UInt8]) {
    let status = Int32(MCPG_STATUS_ERROR.rawValue)
    switch error {
    case let e as PluginError: return (status, errorBody(code: e.code, message: e.message))
    case is CancellationError: return (status, errorBody(code: -32800, message: "request cancelled"))
    default: return (status, errorBody(code: -32603, message: "\(error)"))
    }
}

private let pluginCancel: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?) -> Void = { instance, call in
    guard let instance else { return }
    let inst = Unmanaged<Instance>.fromOpaque(instance).takeUnretainedValue()
    let key = UInt(bitPattern: call.map { Int(bitPattern: UnsafeRawPointer($0)) } ?? 0)
    inst.inflight.withLock { $0[key] }?.task.withLock { $0 }?.cancel()
}
