#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Thin POSIX wrappers for the ledger: whole writes, fsync, positional reads, atomic small-file replace.
/// Every failure becomes a `LedgerError` naming the path and `strerror`.
enum POSIXFile {
    static func errorText() -> String { String(cString: strerror(errno)) }

    static func closeDescriptor(_ fd: Int32) { _ = close(fd) }

    /// Opens (creating if needed, mode 0640) a file for appending and positional reads.
    static func openForAppend(_ path: String) throws(LedgerError) -> Int32 {
        let fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw LedgerError(.io, "\(path): cannot open: \(errorText())") }
        return fd
    }

    /// Opens a file read-only, or returns nil with the reason.
    static func openForReading(_ path: String) -> Result<Int32, LedgerError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(LedgerError(.io, "cannot open: \(errorText())")) }
        return .success(fd)
    }

    static func size(_ fd: Int32, path: String) throws(LedgerError) -> Int64 {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw LedgerError(.io, "\(path): cannot stat: \(errorText())") }
        return Int64(st.st_size)
    }

    /// Writes all of `bytes`, retrying short writes and EINTR.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(LedgerError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { buf in
                write(fd, buf.baseAddress! + done, buf.count - done)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw LedgerError(.io, "\(path): write failed: \(errorText())")
            }
            done += n
        }
    }

    static func sync(_ fd: Int32, path: String) throws(LedgerError) {
        while fsync(fd) != 0 {
            if errno == EINTR { continue }
            throw LedgerError(.io, "\(path): fsync failed: \(errorText())")
        }
    }

    /// Reads exactly `count` bytes at `offset` (fewer only at end of file).
    static func read(_ fd: Int32, count: Int, at offset: Int64, path: String) throws(LedgerError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes { buf in
                pread(fd, buf.baseAddress! + done, count - done, off_t(offset) + off_t(done))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw LedgerError(.io, "\(path): read failed: \(errorText())")
            }
            if n == 0 { break }
            done += n
        }
        if done < count { out.removeLast(count - done) }
        return out
    }

    /// Reads a whole (small) file, or returns nil if it does not exist.
    static func readSmallFile(_ path: String, limit: Int = 1 << 20) throws(LedgerError) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw LedgerError(.io, "\(path): cannot open: \(errorText())")
        }
        defer { close(fd) }
        return try read(fd, count: limit, at: 0, path: path)
    }

    /// Replaces `path` atomically: writes `path.tmp`, fsyncs it, renames it over `path`, fsyncs the directory.
    static func replaceAtomically(_ path: String, with bytes: [UInt8]) throws(LedgerError) {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw LedgerError(.io, "\(tmp): cannot create: \(errorText())") }
        do throws(LedgerError) {
            try writeAll(fd, bytes, path: tmp)
            try sync(fd, path: tmp)
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        guard rename(tmp, path) == 0 else {
            throw LedgerError(.io, "\(path): cannot rename \(tmp) into place: \(errorText())")
        }
        try syncDirectory(of: path)
    }

    /// fsyncs the directory holding `path`, so a created or renamed entry survives a crash.
    static func syncDirectory(of path: String) throws(LedgerError) {
        let dir: String
        if let slash = path.lastIndex(of: "/") {
            dir = slash == path.startIndex ? "/" : String(path[..<slash])
        } else {
            dir = "."
        }
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw LedgerError(.io, "\(dir): cannot open directory: \(errorText())") }
        defer { close(fd) }
        try sync(fd, path: dir)
    }
}

/// One line of a ledger file, without its `\n`.
struct FileLine: Sendable {
    /// The line's bytes.
    var bytes: [UInt8]
    /// Byte offset of the line's first byte in the file.
    var offset: Int64
    /// Whether a `\n` follows the line.
    var terminated: Bool
}

/// Reads a file front to back, one line at a time, in 1 MiB chunks.
struct ForwardLineReader {
    private let fd: Int32
    private let path: String
    private var buffer: [UInt8] = []
    private var bufferOffset: Int64 = 0
    private var cursor = 0
    private var fileOffset: Int64 = 0
    private var eof = false
    private static let chunk = 1 << 20

    /// The file's size when the reader was made: reading stops there, so a file that grows meanwhile (or a device
    /// that never ends, like /dev/zero) is read only as far as it was.
    private let end: Int64

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
        self.end = (try? POSIXFile.size(fd, path: path)) ?? 0
    }

    mutating func next() throws(LedgerError) -> FileLine? {
        var searchFrom = cursor
        while true {
            if let nl = buffer[searchFrom...].firstIndex(of: 0x0A) {
                let line = FileLine(
                    bytes: Array(buffer[cursor..<nl]), offset: bufferOffset + Int64(cursor), terminated: true)
                cursor = nl + 1
                return line
            }
            if eof {
                guard cursor < buffer.count else { return nil }
                let line = FileLine(
                    bytes: Array(buffer[cursor...]), offset: bufferOffset + Int64(cursor), terminated: false)
                cursor = buffer.count
                return line
            }
            buffer.removeFirst(cursor)
            bufferOffset += Int64(cursor)
            cursor = 0
            searchFrom = buffer.count
            let more =
                fileOffset >= end
                ? [] : try POSIXFile.read(fd, count: Int(min(Int64(Self.chunk), end - fileOffset)), at: fileOffset, path: path)
            fileOffset += Int64(more.count)
            if more.isEmpty { eof = true } else { buffer.append(contentsOf: more) }
        }
    }
}

/// Reads a file back to front, one line at a time, in 64 KiB chunks: what opening a long ledger needs to find
/// its tail without reading the whole file.
struct BackwardLineReader {
    private let fd: Int32
    let path: String
    /// Bytes `[bufferStart, lineEnd)` of the file not yet returned.
    private var buffer: [UInt8] = []
    private var bufferStart: Int64
    private var first = true
    private static let chunk = 64 << 10

    init(fd: Int32, path: String, size: Int64) {
        self.fd = fd
        self.path = path
        self.bufferStart = size
    }

    mutating func next() throws(LedgerError) -> FileLine? {
        var terminated = true
        if first {
            first = false
            try fill()
            guard !buffer.isEmpty else { return nil }
            if buffer.last == 0x0A {
                buffer.removeLast()
            } else {
                terminated = false
            }
        } else {
            guard bufferStart > 0 || !buffer.isEmpty else { return nil }
            // Every line but the file's last one is followed by the `\n` that the previous call stripped.
            if buffer.isEmpty { try fill() }
            guard buffer.last == 0x0A else { return nil }
            buffer.removeLast()
        }
        while true {
            if let nl = buffer.lastIndex(of: 0x0A) {
                let line = FileLine(
                    bytes: Array(buffer[(nl + 1)...]), offset: bufferStart + Int64(nl + 1), terminated: terminated)
                buffer.removeSubrange((nl + 1)...)
                return line
            }
            if bufferStart == 0 {
                let line = FileLine(bytes: buffer, offset: 0, terminated: terminated)
                buffer = []
                return line
            }
            try fill()
        }
    }

    /// Prepends the chunk before `bufferStart`.
    private mutating func fill() throws(LedgerError) {
        guard bufferStart > 0 else { return }
        let start = max(0, bufferStart - Int64(Self.chunk))
        let bytes = try POSIXFile.read(fd, count: Int(bufferStart - start), at: start, path: path)
        buffer = bytes + buffer
        bufferStart = start
    }
}
