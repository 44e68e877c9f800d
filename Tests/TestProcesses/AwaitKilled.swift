#if canImport(Glibc)
import Glibc
#endif

/// Waits, at most 5 s, until the process `pid` (just sent SIGKILL) is gone or a zombie. Not Foundation's
/// `waitUntilExit`: that spins its thread until Dispatch reports the exit, and two such waits on the cooperative
/// threads of a 2-core machine left Dispatch no thread to report it with (a CI run hung for 15 minutes).
public func awaitKilled(_ pid: Int32) {
    for _ in 0..<1000 {
        guard let file = fopen("/proc/\(pid)/stat", "r") else { return }
        var buffer = [CChar](repeating: 0, count: 512)
        let line = fgets(&buffer, Int32(buffer.count), file).map { _ in String(cString: buffer) }
        fclose(file)
        // The state follows the command name, which is in parentheses and may itself hold spaces or ")".
        guard let line, let close = line.lastIndex(of: ")"), line.index(close, offsetBy: 2) < line.endIndex else {
            return
        }
        if line[line.index(close, offsetBy: 2)] == "Z" { return }
        usleep(5000)
    }
}
