#if canImport(Glibc)
import Glibc
#endif

/// What a tool run by `runTool` did.
public struct ToolOutput: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

public struct ToolStartFailure: Error, CustomStringConvertible {
    public let description: String
}

/// Runs `path` with `arguments` to completion: `stdin` written to it, stdout and stderr read in full, the exit
/// status from `waitpid`. Started with posix_spawn rather than Foundation's `Process`, whose `waitUntilExit` spins
/// until Dispatch reports the exit: two such waits on the cooperative threads of a 2-core machine leave Dispatch no
/// thread to report it with (see `awaitKilled`). A process killed by a signal has status 128 + the signal.
public func runTool(_ path: String, _ arguments: [String], stdin: String? = nil) throws -> ToolOutput {
    var input: [Int32] = [0, 0], output: [Int32] = [0, 0], errors: [Int32] = [0, 0]
    for i in 0..<3 {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ToolStartFailure(description: "pipe: errno \(errno)") }
        // Close-on-exec at once, so tools other tests start meanwhile do not hold these pipes open.
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        switch i {
        case 0: input = fds
        case 1: output = fds
        default: errors = fds
        }
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, input[0], 0)
    posix_spawn_file_actions_adddup2(&actions, output[1], 1)
    posix_spawn_file_actions_adddup2(&actions, errors[1], 2)
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, path, &actions, nil, argv, environ)
    for fd in [input[0], output[1], errors[1]] { close(fd) }
    guard rc == 0 else {
        for fd in [input[1], output[0], errors[0]] { close(fd) }
        throw ToolStartFailure(description: "\(path): posix_spawn failed: errno \(rc)")
    }
    // Small inputs only (a pipe holds 64 KiB): the tools here read all of stdin before they write. A tool that
    // exits without reading gets EPIPE here, not a SIGPIPE that would end the test process.
    signal(SIGPIPE, SIG_IGN)
    if let stdin {
        let bytes = Array(stdin.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(input[1], $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            offset += n
        }
    }
    close(input[1])
    var out: [UInt8] = [], err: [UInt8] = []
    var fds = [pollfd(fd: output[0], events: Int16(POLLIN), revents: 0), pollfd(fd: errors[0], events: Int16(POLLIN), revents: 0)]
    var buffer = [UInt8](repeating: 0, count: 65536)
    while fds.contains(where: { $0.fd >= 0 }) {
        if poll(&fds, nfds_t(fds.count), -1) < 0 {
            if errno == EINTR { continue }
            break
        }
        for i in fds.indices where fds[i].fd >= 0 && fds[i].revents != 0 {
            let n = read(fds[i].fd, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                close(fds[i].fd)
                fds[i].fd = -1
            } else if i == 0 {
                out += buffer[0..<n]
            } else {
                err += buffer[0..<n]
            }
        }
    }
    for f in fds where f.fd >= 0 { close(f.fd) }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let low = status & 0x7f
    let code = low == 0 ? (status >> 8) & 0xff : 128 + low
    return ToolOutput(
        status: code, stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: err, as: UTF8.self))
}
