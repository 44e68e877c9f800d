import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One program run: what to start and the limits it runs under.
struct RunSpec: Sendable {
    /// Absolute path of the program.
    var path: String
    var argv: [String]
    /// `NAME=value` entries: the whole environment of the program.
    var environment: [String]
    var cwd: String?
    /// Bytes written to the program's stdin, which is then closed; nil: stdin is /dev/null.
    var stdin: [UInt8]?
    var timeoutMs: Int
    /// Kept per stream; the rest is read and discarded.
    var maxOutputBytes: Int
    /// Between SIGTERM and SIGKILL after a timeout or a cancellation.
    var killGraceMs: Int = 1000
}

/// How a run ended.
struct RunOutcome: Sendable {
    enum Status: Sendable, Equatable {
        case exited(Int32)
        case signaled(Int32)
    }
    var status: Status
    var stdout: [UInt8]
    var stderr: [UInt8]
    var stdoutTruncated: Bool
    var stderrTruncated: Bool
    var timedOut: Bool
    var cancelled: Bool
}

struct SpawnError: Error, Sendable {
    var message: String
}

/// Runs a program without a shell: `posix_spawn` of the argv, in a process group of its own, with only the given
/// environment, default signal dispositions and an empty signal mask. stdout and stderr are read concurrently
/// by one thread (never blocking the program on a full buffer), each kept up to `maxOutputBytes`. At the
/// deadline, or when the call is cancelled, the group gets SIGTERM, then SIGKILL after the grace period; when
/// the program exits, whatever it left running in its group is killed too.
final class ProcessRun: Sendable {
    private let cancelled = Atomic<Bool>(false)

    func cancel() { cancelled.store(true, ordering: .relaxed) }

    func run(_ spec: RunSpec) async throws(SpawnError) -> RunOutcome {
        let started = try spawn(spec)
        let result: RunOutcome = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                startThread { [self] in
                    if let input = started.stdin { feed(input, spec.stdin ?? []) }
                    continuation.resume(returning: supervise(started, spec))
                }
            }
        } onCancel: {
            cancel()
        }
        return result
    }

    private struct Started: Sendable {
        var pid: pid_t
        var stdout: Int32
        var stderr: Int32
        var stdin: Int32?
    }

    private func spawn(_ spec: RunSpec) throws(SpawnError) -> Started {
        // Socket pairs: created close-on-exec atomically, so no concurrent spawn inherits them.
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        var pairs: [[Int32]] = []
        func closeAll() { for p in pairs { for fd in p where fd >= 0 { Glibc.close(fd) } } }
        for _ in 0..<(spec.stdin == nil ? 2 : 3) {
            var pair: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, type, 0, &pair) == 0 else {
                let e = errnoText()
                closeAll()
                throw SpawnError(message: "cannot create pipes for the program: \(e)")
            }
            pairs.append(pair)
        }
        shutdown(pairs[0][1], Int32(SHUT_RD))
        shutdown(pairs[1][1], Int32(SHUT_RD))
        if pairs.count == 3 { shutdown(pairs[2][1], Int32(SHUT_WR)) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if pairs.count == 3 {
            posix_spawn_file_actions_adddup2(&actions, pairs[2][1], 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, pairs[0][1], 1)
        posix_spawn_file_actions_adddup2(&actions, pairs[1][1], 2)
        if let closeFrom = SpawnExtensions.addCloseFrom { _ = closeFrom(&actions, 3) }
        if let cwd = spec.cwd {
            guard let addChdir = SpawnExtensions.addChdir else {
                closeAll()
                throw SpawnError(message: "cwd is not supported by this C library (glibc 2.29 or later needed)")
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
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        let argv = spec.argv.map { strdup($0) } + [nil]
        let envp = spec.environment.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, spec.path, &actions, &attr, argv, envp)
        for p in pairs { Glibc.close(p[1]) }
        guard rc == 0 else {
            for p in pairs { Glibc.close(p[0]) }
            throw SpawnError(message: "cannot start \(spec.path): \(String(cString: strerror(rc)))")
        }
        return Started(pid: pid, stdout: pairs[0][0], stderr: pairs[1][0], stdin: pairs.count == 3 ? pairs[2][0] : nil)
    }

    /// Writes the stdin bytes on a thread of their own (the program may not read them all), then closes stdin.
    private func feed(_ fd: Int32, _ bytes: [UInt8]) {
        startThread {
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeBytes {
                    Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
                }
                if n < 0 {
                    if errno == EINTR { continue }
                    break
                }
                offset += n
            }
            Glibc.close(fd)
        }
    }

    /// Reads both streams, enforces the deadline and cancellation, and reaps the program.
    private func supervise(_ s: Started, _ spec: RunSpec) -> RunOutcome {
        var fds = [pollfd(fd: s.stdout, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: s.stderr, events: Int16(POLLIN), revents: 0)]
        var kept: [[UInt8]] = [[], []]
        var truncated = [false, false]
        var buffer = [UInt8](repeating: 0, count: 65536)
        let start = monotonicMs()
        let deadline = start + spec.timeoutMs
        var timedOut = false
        var wasCancelled = false
        var killAt: Int?
        var exitStatus: Int32?
        var drainUntil = Int.max

        while true {
            let now = monotonicMs()
            if exitStatus == nil {
                if !timedOut, !wasCancelled, now >= deadline {
                    timedOut = true
                    kill(-s.pid, SIGTERM)
                    killAt = now + spec.killGraceMs
                }
                if !timedOut, !wasCancelled, cancelled.load(ordering: .relaxed) {
                    wasCancelled = true
                    kill(-s.pid, SIGTERM)
                    killAt = now + spec.killGraceMs
                }
                if let k = killAt, now >= k {
                    kill(-s.pid, SIGKILL)
                    killAt = nil
                }
                // Seen without reaping, so the group id cannot be reused before its leftovers are killed.
                var info = siginfo_t()
                if waitid(P_PID, id_t(s.pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0, info.si_signo == SIGCHLD {
                    kill(-s.pid, SIGKILL)
                    var status: Int32 = 0
                    while waitpid(s.pid, &status, 0) < 0 && errno == EINTR {}
                    exitStatus = status
                    drainUntil = now + 500
                }
            }
            let open = fds.contains { $0.fd >= 0 }
            if exitStatus != nil, !open || now >= drainUntil { break }
            var wait = 50
            if exitStatus == nil, !timedOut, !wasCancelled { wait = max(0, min(wait, deadline - now)) }
            if !open {
                _ = poll(nil, 0, Int32(max(wait, 1)))
                continue
            }
            let ready = poll(&fds, nfds_t(fds.count), Int32(wait))
            if ready <= 0 { continue }
            for i in 0..<fds.count where fds[i].fd >= 0 && fds[i].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(fds[i].fd, $0.baseAddress, $0.count) }
                if n < 0, errno == EINTR || errno == EAGAIN { continue }
                if n <= 0 {
                    Glibc.close(fds[i].fd)
                    fds[i].fd = -1
                    continue
                }
                let room = spec.maxOutputBytes - kept[i].count
                if room >= n {
                    kept[i] += buffer[0..<n]
                } else {
                    if room > 0 { kept[i] += buffer[0..<room] }
                    truncated[i] = true
                }
            }
        }
        for f in fds where f.fd >= 0 { Glibc.close(f.fd) }
        let status = exitStatus ?? 0
        let how: RunOutcome.Status = status & 0x7F == 0 ? .exited((status >> 8) & 0xFF) : .signaled(status & 0x7F)
        return RunOutcome(status: how, stdout: kept[0], stderr: kept[1], stdoutTruncated: truncated[0],
                          stderrTruncated: truncated[1], timedOut: timedOut, cancelled: wasCancelled)
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

/// Runs `body` on a new detached thread (blocking reads must not hold a cooperative-pool thread).
func startThread(_ body: @escaping @Sendable () -> Void) {
    final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
    let arg = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(
        &thread, nil,
        { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.body()
            return nil
        }, arg)
    if rc == 0 {
        pthread_detach(thread)
    } else {
        Unmanaged<Box>.fromOpaque(arg).takeRetainedValue().body()
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }

func monotonicMs() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}
