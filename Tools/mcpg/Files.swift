#if canImport(Glibc)
import Glibc
#endif

/// The directory part of a path ("." for a bare name).
func parentDirectory(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}

/// Creates `path` and its parents (like `mkdir -p`).
func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(FileProblem) {
    var current = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/") {
        current += "/" + part
        if mkdir(current, mode) != 0 && errno != EEXIST {
            throw FileProblem(path: current, reason: String(cString: strerror(errno)))
        }
    }
}

/// Writes `text` to a new file; fails if it exists unless `overwrite`.
func writeFile(_ path: String, _ text: String, mode: mode_t = 0o644, overwrite: Bool = false) throws(FileProblem) {
    let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (overwrite ? O_TRUNC : O_EXCL)
    let fd = open(path, flags, mode)
    guard fd >= 0 else { throw FileProblem(path: path, reason: String(cString: strerror(errno))) }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    var off = 0
    while off < bytes.count {
        let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw FileProblem(path: path, reason: String(cString: strerror(errno)))
        }
        off += n
    }
}

func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }

/// The absolute path of the running executable.
func executablePath() -> String {
    var buf = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buf, buf.count - 1)
    return n > 0 ? String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
}

struct FileProblem: Error, CustomStringConvertible {
    var path: String
    var reason: String
    var description: String { "\(path): \(reason)" }
}

/// Writes a line to stderr.
func printError(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    var off = 0
    while off < bytes.count {
        let n = bytes[off...].withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        off += n
    }
}

/// The whole of a small file (at most `limit` bytes, 1 MiB unless given); `-` reads standard input.
func readFile(_ path: String, limit: Int = 1 << 20) throws(FileProblem) -> [UInt8] {
    let fd = path == "-" ? 0 : open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw FileProblem(path: path, reason: String(cString: strerror(errno))) }
    defer { if fd != 0 { close(fd) } }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 << 10)
    while out.count <= limit {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw FileProblem(path: path, reason: String(cString: strerror(errno)))
        }
        if n == 0 { return out }
        out += chunk[0..<n]
    }
    throw FileProblem(path: path, reason: "larger than \(limit >> 20) MiB")
}
