import CMCPGPlugin
import MCPGJSON

/// Severity for `Host.log`, as the ABI's `mcpg_log_level`.
public enum LogLevel: Int32, Sendable {
    case trace = 0, debug, info, notice, warning, error, critical
}

/// Metric kinds for `Host.metric`.
public enum MetricKind: Int32, Sendable {
    case counter = 0, gauge, histogram
}

/// The kernel's services: logging and metrics. Valid for the life of the process, usable from any thread.
public struct Host: @unchecked Sendable {
    // Safe to share: the kernel's host table is immutable and lives as long as the process.
    let raw: UnsafePointer<mcpg_host>?

    init(raw: UnsafePointer<mcpg_host>?) { self.raw = raw }

    /// A host that drops everything (for running a plugin outside the kernel, e.g. in tests).
    public static let detached = Host(raw: nil)

    /// Logs a short constant `message`; data goes in `metadata`. Never pass secrets.
    public func log(_ level: LogLevel, _ message: String, _ metadata: [String: String] = [:]) {
        guard let raw, let fn = raw.pointee.log else { return }
        var meta: [UInt8] = []
        if !metadata.isEmpty {
            JSON.object(JSONObject(metadata.sorted { $0.key < $1.key }.map { JSONMember($0.key, .string($0.value)) }))
                .write(into: &meta)
        }
        var msg = message
        msg.withUTF8 { m in
            meta.withUnsafeBufferPointer { md in
                fn(raw.pointee.host_ctx, level.rawValue, mcpg_bytes(ptr: m.baseAddress, len: m.count),
                   mcpg_bytes(ptr: md.baseAddress, len: md.count))
            }
        }
    }

    /// Records one metric sample; the kernel prefixes `name` with the plugin's name.
    public func metric(_ kind: MetricKind, _ name: String, _ value: Double, labels: [String: String] = [:]) {
        guard let raw, let fn = raw.pointee.metric else { return }
        var lab: [UInt8] = []
        if !labels.isEmpty {
            JSON.object(JSONObject(labels.sorted { $0.key < $1.key }.map { JSONMember($0.key, .string($0.value)) }))
                .write(into: &lab)
        }
        var n = name
        n.withUTF8 { nb in
            lab.withUnsafeBufferPointer { lb in
                fn(raw.pointee.host_ctx, kind.rawValue, mcpg_bytes(ptr: nb.baseAddress, len: nb.count), value,
                   mcpg_bytes(ptr: lb.baseAddress, len: lb.count))
            }
        }
    }
}

/// The call being served: lets a plugin send notifications (e.g. `notifications/progress`) to the client
/// that made the request, until the call completes.
public struct CallContext: @unchecked Sendable {
    // Safe to share: the kernel keeps `call` alive until `complete` returns and `emit` is thread-safe.
    let call: OpaquePointer?
    let host: UnsafePointer<mcpg_host>?

    init(call: OpaquePointer?, host: UnsafePointer<mcpg_host>?) {
        self.call = call
        self.host = host
    }

    /// A context that is not connected to a client (emit always fails).
    public static let detached = CallContext(call: nil, host: nil)

    /// Sends one JSON-RPC message to the client. Returns false when the call is over or the client cannot
    /// receive messages.
    @discardableResult
    public func emit(_ message: JSON) -> Bool {
        guard let call, let host, let fn = host.pointee.emit else { return false }
        let bytes = message.serialized()
        return bytes.withUnsafeBufferPointer { b in
            fn(call, mcpg_bytes(ptr: b.baseAddress, len: b.count)) == 0
        }
    }
}
