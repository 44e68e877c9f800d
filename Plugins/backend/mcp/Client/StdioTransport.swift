import Dispatch
import MCPGJSON

#if canImport(Glibc)
import Glibc
#endif

/// An upstream run as a child process speaking newline-delimited JSON-RPC on stdin/stdout (STDIO-1).
///
/// The process is started with `posix_spawnp` (argv, never a shell) in a process group of its own, with only
/// the allowed environment, default signal dispositions and an empty signal mask. Its stdin, stdout and stderr
/// are socket pairs, so a write after the process died fails with EPIPE instead of raising SIGPIPE in the
/// gateway. Two threads read stdout (messages) and stderr (log lines: truncated, rate-limited); writes go
/// through one serial queue, so no caller blocks on a full buffer. When stdout ends, the reader reaps the process
/// and reports the exit status through `sink.closed`.
final class StdioTransport: Transport {
    struct Settings: Sendable {
        var command: [String]
        var environment: [String]
        var cwd: String?
        /// Longest line accepted from stdout; a longer one kills the process.
        var maxLine = 64 << 20
    }

    private struct State {
        var pid: pid_t = 0
        var stdin: Int32 = -1
        var exited = false
        var sink: TransportSink?
    }

    let settings: Settings
    let log: MCPClient.LogFunction
    private let state = MutexBox(State())
    private let closedOnce = Once()
    private let writes = DispatchQueue(label: "mcpg.mcp.stdio.write")

    var correlatesStreams: Bool { false }

    init(settings: Settings, log: @escaping MCPClient.LogFunction) {
        self.settings = settings
        self.log = log
    }

    deinit {
        let s = state.withLock { $0 }
        if s.stdin >= 0 { Glibc.close(s.stdin) }
        if s.pid > 0, !s.exited { kill(-s.pid, SIGKILL) }
    }

    func start(_ sink: TransportSink) async throws {
        // Socket pairs rather than pipes: created close-on-exec atomically (no other spawn can inherit them),
        // and a write to a dead process fails with EPIPE (MSG_NOSIGNAL) instead of raising SIGPIPE.
        var stdinPair: [Int32] = [-1, -1]
        var stdoutPair: [Int32] = [-1, -1]
        var stderrPair: [Int32] = [-1, -1]
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        guard socketpair(AF_UNIX, type, 0, &stdinPair) == 0 else {
            throw TransportError(message: "cannot create the upstream's stdin: \(errnoText())")
        }
        guard socketpair(AF_UNIX, type, 0, &stdoutPair) == 0 else {
            let e = errnoText()
            stdinPair.forEach { Glibc.close($0) }
            throw TransportError(message: "cannot create the upstream's stdout: \(e)")
        }
        guard socketpair(AF_UNIX, type, 0, &stderrPair) == 0 else {
            let e = errnoText()
            (stdinPair + stdoutPair).forEach { Glibc.close($0) }
            throw TransportError(message: "cannot create the upstream's stderr: \(e)")
        }
        // Each pair carries one direction only.
        shutdown(stdinPair[1], Int32(SHUT_WR))
        shutdown(stdoutPair[1], Int32(SHUT_RD))
        shutdown(stderrPair[1], Int32(SHUT_RD))

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdinPair[1], 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutPair[1], 1)
        posix_spawn_file_actions_adddup2(&actions, stderrPair[1], 2)
        // Descriptors the gateway opened without O_CLOEXEC must not leak into the upstream.
        if let closeFrom = SpawnExtensions.addCloseFrom { _ = closeFrom(&actions, 3) }
        if let cwd = settings.cwd {
            guard let addChdir = SpawnExtensions.addChdir else {
                throw TransportError(message: "cwd is not supported by this C library (glibc 2.29 or later needed)")
            }
            _ = addChdir(&actions, cwd)
        }

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setpgroup(&attr, 0)
        posix_spawnattr_setflags(
            &attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        let argv = settings.command.map { strdup($0) } + [nil]
        let envp = settings.environment.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, settings.command[0], &actions, &attr, argv, envp)
        Glibc.close(stdinPair[1])
        Glibc.close(stdoutPair[1])
        Glibc.close(stderrPair[1])
        guard rc == 0 else {
            Glibc.close(stdinPair[0])
            Glibc.close(stdoutPair[0])
            Glibc.close(stderrPair[0])
            let why = String(cString: strerror(rc))
            throw TransportError(message: "cannot start \(settings.command[0]): \(why)", connectionLost: true)
        }
        state.withLock {
            $0.pid = pid
            $0.stdin = stdinPair[0]
            $0.sink = sink
        }
        log(.info, "upstream process started", ["mcp.pid": String(pid), "mcp.command": settings.command[0]])
        let out = stdoutPair[0]
        let err = stderrPair[0]
        startThread { [self] in readMessages(out, sink) }
        startThread { [self] in readLog(err) }
    }

    func send(_ message: JSON, requestID: Int64?) async throws -> Bool {
        var line = message.serialized()
        line.append(0x0A)
        let bytes = line
        let fd = state.withLock { $0.stdin }
        guard fd >= 0 else { throw TransportError(message: "upstream stdin is closed", connectionLost: true) }
        let failure: String? = await withCheckedContinuation { continuation in
            writes.async {
                var offset = 0
                while offset < bytes.count {
                    let n = bytes.withUnsafeBytes {
                        Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
                    }
                    if n < 0 {
                        if errno == EINTR { continue }
                        continuation.resume(returning: "cannot write to the upstream: \(errnoText())")
                        return
                    }
                    offset += n
                }
                continuation.resume(returning: nil)
            }
        }
        if let failure { throw TransportError(message: failure, connectionLost: true) }
        return false
    }

    func initialized(protocolVersion: String) {}

    func fail(_ reason: TransportClosed) {
        let (pid, exited, sink) = state.withLock { ($0.pid, $0.exited, $0.sink) }
        if pid > 0, !exited { kill(-pid, SIGKILL) }
        if closedOnce.claim() { sink?.closed(reason) }
    }

    func close() async {
        let (pid, fd) = state.withLock { s -> (pid_t, Int32) in
            let fd = s.stdin
            s.stdin = -1
            return (s.pid, fd)
        }
        // Close stdin once queued writes are done, then give the process time to exit on its own (LIFE-9).
        if fd >= 0 { writes.async { _ = Glibc.close(fd) } }
        guard pid > 0 else { return }
        if await waitExit(ms: 2000) { return }
        kill(-pid, SIGTERM)
        if await waitExit(ms: 2000) { return }
        log(.warning, "upstream ignored SIGTERM; killing it", ["mcp.pid": String(pid)])
        kill(-pid, SIGKILL)
        _ = await waitExit(ms: 2000)
    }

    /// Waits up to `ms` for the reader to reap the process.
    private func waitExit(ms: Int) async -> Bool {
        var waited = 0
        while waited < ms {
            if state.withLock({ $0.exited }) { return true }
            try? await Task.sleep(for: .milliseconds(10))
            waited += 10
        }
        return state.withLock { $0.exited }
    }

    /// Reads stdout until EOF, one JSON message per line; then reaps the process and reports how it ended.
    private func readMessages(_ fd: Int32, _ sink: TransportSink) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        var line: [UInt8] = []
        var problem: String?
        loop: while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                break
            }
            if n == 0 { break }
            var start = 0
            for i in 0..<n where buffer[i] == 0x0A {
                line += buffer[start..<i]
                deliver(line, sink)
                line.removeAll(keepingCapacity: true)
                start = i + 1
            }
            line += buffer[start..<n]
            if line.count > settings.maxLine {
                problem = "upstream wrote a line longer than \(settings.maxLine) bytes"
                break loop
            }
        }
        Glibc.close(fd)
        let pid = state.withLock { $0.pid }
        if problem != nil { kill(-pid, SIGKILL) }
        var status: Int32 = 0
        var rc: pid_t
        repeat { rc = waitpid(pid, &status, 0) } while rc < 0 && errno == EINTR
        state.withLock { $0.exited = true }
        let how: String
        if rc < 0 {
            how = "upstream exited"
        } else if status & 0x7F == 0 {
            how = "upstream exited with status \((status >> 8) & 0xFF)"
        } else {
            how = "upstream killed by signal \(status & 0x7F)"
        }
        log(.notice, "upstream process ended", ["mcp.pid": String(pid), "mcp.exit": how])
        if closedOnce.claim() { sink.closed(TransportClosed(reason: problem ?? how)) }
    }

    private func deliver(_ raw: [UInt8], _ sink: TransportSink) {
        var bytes = raw[...]
        while let last = bytes.last, last == 0x0D || last == 0x20 || last == 0x09 { bytes.removeLast() }
        while let first = bytes.first, first == 0x20 || first == 0x09 { bytes.removeFirst() }
        if bytes.isEmpty { return }
        do {
            let message = try JSON.parse(bytes)
            guard case .object = message else {
                log(.warning, "upstream wrote a JSON value that is not a message", ["mcp.type": message.typeName])
                return
            }
            sink.message(message, nil)
        } catch {
            log(
                .warning, "upstream wrote a line that is not JSON",
                [
                    "mcp.line": truncated(String(decoding: bytes, as: UTF8.self), 200), "mcp.error": "\(error)",
                ])
        }
    }

    /// Forwards stderr lines to the log: at most `burst` lines per 10 s window, each cut to 1000 bytes
    /// (stderr may carry anything, STDIO-3).
    private func readLog(_ fd: Int32) {
        let burst = 50
        var windowStart = monotonicMs()
        var sent = 0
        var dropped = 0
        var buffer = [UInt8](repeating: 0, count: 8192)
        var line: [UInt8] = []
        func emit(_ bytes: [UInt8]) {
            let now = monotonicMs()
            if now - windowStart >= 10_000 {
                if dropped > 0 { log(.warning, "upstream stderr lines dropped", ["mcp.dropped": String(dropped)]) }
                windowStart = now
                sent = 0
                dropped = 0
            }
            guard sent < burst else {
                dropped += 1
                return
            }
            sent += 1
            log(.notice, "upstream stderr", ["mcp.stderr": truncated(String(decoding: bytes, as: UTF8.self), 1000)])
        }
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 { break }
            for b in buffer[0..<n] {
                if b == 0x0A {
                    if !line.isEmpty { emit(line) }
                    line.removeAll(keepingCapacity: true)
                } else if line.count < 4096 {
                    line.append(b)
                }
            }
        }
        if !line.isEmpty { emit(line) }
        if dropped > 0 { log(.warning, "upstream stderr lines dropped", ["mcp.dropped": String(dropped)]) }
        Glibc.close(fd)
    }
}

/// glibc's posix_spawn extensions, which the Swift Glibc module does not import (no _GNU_SOURCE); looked up once.
enum SpawnExtensions {
    typealias AddChdir =
        @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    static let addChdir: AddChdir? = dlsym(nil, "posix_spawn_file_actions_addchdir_np").map {
        unsafeBitCast($0, to: AddChdir.self)
    }
    static let addCloseFrom: AddCloseFrom? = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np").map {
        unsafeBitCast($0, to: AddCloseFrom.self)
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }

func monotonicMs() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}
