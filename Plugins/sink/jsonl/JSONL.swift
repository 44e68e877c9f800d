#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import MCPGJSON
import PluginKit
import Synchronization

/// Writes each audit event as one JSON line to a file (appending; created with mode 0600) or to stdout.
///
/// Each line goes out in one `write(2)` under a lock, so lines from concurrent calls never interleave, and
/// with `O_APPEND` several instances (or processes) can share one file. Write errors fail the call.
struct JSONL: SinkPlugin {
    struct Config: Decodable, Sendable {
        var path: String
    }
    static let name = "jsonl"
    static let version = "1.0.0"
    static var configSchema: JSON {
        [
            "type": "object", "additionalProperties": false, "required": ["path"],
            "properties": [
                "path": [
                    "type": "string", "minLength": 1, "format": "path",
                    "description": .string(
                        "File to append events to (created with mode 0600 if missing; relative to the config file), "
                            + "or \"-\" for stdout."),
                ]
            ],
        ]
    }

    let output: Output

    init(config: Config, host: Host) throws {
        output = try Output(path: config.path)
    }

    func write(_ event: JSON) async throws {
        var line: [UInt8] = []
        event.write(into: &line)
        line.append(UInt8(ascii: "\n"))
        try output.write(line)
    }
}

/// An open file descriptor and the lock that serializes writes to it; closes the file when released.
final class Output: Sendable {
    let fd: Int32
    let path: String
    let ownsFD: Bool
    let lock = Mutex(())

    init(path: String) throws {
        guard !path.isEmpty else { throw PluginError(code: -32602, "jsonl: path must not be empty") }
        self.path = path
        if path == "-" {
            fd = STDOUT_FILENO
            ownsFD = false
            return
        }
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw PluginError("jsonl: cannot open \(path): \(Output.errorText(errno))") }
        self.fd = fd
        ownsFD = true
    }

    deinit {
        if ownsFD { close(fd) }
    }

    /// Writes `bytes` with one `write(2)` (repeated only if the kernel takes fewer bytes or is interrupted).
    func write(_ bytes: [UInt8]) throws {
        try lock.withLock { _ in
            try bytes.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let n = systemWrite(fd, buffer.baseAddress! + offset, buffer.count - offset)
                    if n < 0 {
                        let e = errno
                        if e == EINTR { continue }
                        let target = path == "-" ? "stdout" : path
                        throw PluginError("jsonl: write to \(target) failed: \(Output.errorText(e))")
                    }
                    offset += n
                }
            }
        }
    }

    static func errorText(_ code: Int32) -> String {
        guard let s = strerror(code) else { return "errno \(code)" }
        return String(cString: s)
    }
}

/// `write(2)`, named apart from `Output.write`.
private func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }

@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { PluginExport.descriptor(for: JSONL.self) }
