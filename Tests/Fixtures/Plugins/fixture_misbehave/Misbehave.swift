import CMCPGPlugin
import Dispatch
import Synchronization

// A raw-ABI backend (no PluginKit) whose ops exercise the kernel's call bridge:
//   echo        completes synchronously with the request bytes
//   twice       completes twice (the second must be ignored and logged)
//   never       never completes (the kernel must time out and call cancel)
//   late        completes from another thread after 50 ms (or after N ms when the request is the number N)
//   emit        emits the request through the host, completes with {"rc": <emit's return>}
//   emit_after  completes, then emits (must get -1); the result shows in `stats`
//   log         logs "fixture log line" with metadata {"fixture":"yes"} and counts metric "calls" {"op":"log"}
//   stats       {"cancels": <cancel calls so far>, "emit_after": <last emit_after rc>}, per instance

private struct Stats {
    var cancels = 0
    var emitAfter: Int32 = 99
}

/// One instance: the host table it was created with, and its counters.
private final class Instance: Sendable {
    // The host table is immutable and valid for the life of the process.
    nonisolated(unsafe) let host: UnsafePointer<mcpg_host>?
    let stats = Mutex(Stats())
    init(host: UnsafePointer<mcpg_host>?) { self.host = host }
}

private func cString(_ s: StaticString) -> UnsafePointer<CChar> {
    UnsafeRawPointer(s.utf8Start).assumingMemoryBound(to: CChar.self)
}

private func withBytes<R>(_ text: String, _ body: (mcpg_bytes) -> R) -> R {
    var t = text
    return t.withUTF8 { body(mcpg_bytes(ptr: $0.baseAddress, len: $0.count)) }
}

/// A call handle carried to another thread for a late completion.
private struct Pending: @unchecked Sendable {
    // The kernel keeps `call` valid until `complete` runs, and `complete` may be called from any thread.
    let call: OpaquePointer?
    let complete: mcpg_complete_fn
}

private let create:
    @convention(c) (
        UnsafePointer<mcpg_host>?, mcpg_bytes, UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
        UnsafeMutablePointer<CChar>?
    ) -> Int32 = { host, _, instance, _ in
        instance?.pointee = Unmanaged.passRetained(Instance(host: host)).toOpaque()
        return Int32(MCPG_STATUS_OK.rawValue)
    }

private let handle:
    @convention(c) (UnsafeMutableRawPointer?, mcpg_bytes, mcpg_bytes, OpaquePointer?, mcpg_complete_fn?) -> Void = {
        instance, op, request, call, complete in
        guard let complete, let instance else { return }
        let me = Unmanaged<Instance>.fromOpaque(instance).takeUnretainedValue()
        let host = me.host
        let ok = Int32(MCPG_STATUS_OK.rawValue)
        // "echo" first, compared as bytes: it is the path the per-call cost is measured on.
        if op.len == 4, let p = op.ptr, p[0] == 0x65, p[1] == 0x63, p[2] == 0x68, p[3] == 0x6F {
            complete(call, ok, request)
            return
        }
        switch String(decoding: UnsafeBufferPointer(start: op.ptr, count: op.len), as: UTF8.self) {
        case "twice":
            withBytes("{\"n\":1}") { complete(call, ok, $0) }
            withBytes("{\"n\":2}") { complete(call, ok, $0) }
        case "never":
            break
        case "late":
            let pending = Pending(call: call, complete: complete)
            let ms = Int(String(decoding: UnsafeBufferPointer(start: request.ptr, count: request.len), as: UTF8.self)) ?? 50
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(ms)) {
                withBytes("{\"late\":true}") { pending.complete(pending.call, ok, $0) }
            }
        case "emit":
            let rc = host?.pointee.emit?(call, request) ?? -2
            withBytes("{\"rc\":\(rc)}") { complete(call, ok, $0) }
        case "emit_after":
            withBytes("{}") { complete(call, ok, $0) }
            let rc = host?.pointee.emit?(call, request) ?? -2
            me.stats.withLock { $0.emitAfter = rc }
        case "log":
            if let host, let log = host.pointee.log, let metric = host.pointee.metric {
                withBytes("fixture log line") { m in
                    withBytes("{\"fixture\":\"yes\"}") { md in log(host.pointee.host_ctx, Int32(MCPG_LOG_WARNING.rawValue), m, md) }
                }
                withBytes("calls") { n in
                    withBytes("{\"op\":\"log\"}") { l in
                        metric(host.pointee.host_ctx, Int32(MCPG_METRIC_COUNTER.rawValue), n, 1, l)
                    }
                }
            }
            withBytes("{}") { complete(call, ok, $0) }
        case "stats":
            let s = me.stats.withLock { $0 }
            withBytes("{\"cancels\":\(s.cancels),\"emit_after\":\(s.emitAfter)}") { complete(call, ok, $0) }
        default:
            withBytes("{\"code\":-32601,\"message\":\"no such op\"}") {
                complete(call, Int32(MCPG_STATUS_ERROR.rawValue), $0)
            }
        }
    }

// Written once at first use (Swift globals initialize lazily and thread-safely) and never changed after.
nonisolated(unsafe) private let descriptor: UnsafeMutablePointer<mcpg_plugin> = {
    let d = UnsafeMutablePointer<mcpg_plugin>.allocate(capacity: 1)
    d.initialize(
        to: mcpg_plugin(
            magic: MCPG_PLUGIN_MAGIC, abi_version: MCPG_ABI_MAJOR << 16 | MCPG_ABI_MINOR,
            struct_size: UInt32(MemoryLayout<mcpg_plugin>.size), kind: MCPG_KIND_BACKEND.rawValue,
            name: cString("fixture_misbehave"), version: cString("0.1.0"),
            config_schema: cString("{\"type\":\"object\"}"),
            create: create,
            destroy: { instance in if let instance { Unmanaged<Instance>.fromOpaque(instance).release() } },
            handle: handle,
            cancel: { instance, _ in
                guard let instance else { return }
                Unmanaged<Instance>.fromOpaque(instance).takeUnretainedValue().stats.withLock { $0.cancels += 1 }
            }))
    return d
}()

/// The entry point.
@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { UnsafeRawPointer(descriptor) }
