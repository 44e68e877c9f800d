#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Small POSIX file helpers with errors that name the file.
enum FileIO {
    /// The whole file, read once through one descriptor.
    static func read(_ path: String, missing: LoaderError.Code = .notFound) throws(LoaderError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            throw LoaderError(e == ENOENT ? missing : .ioError, "\(path): cannot open: \(errorText(e))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw LoaderError(.ioError, "\(path): cannot stat: \(errorText(errno))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw LoaderError(.ioError, "\(path): not a regular file") }
        var out = [UInt8](repeating: 0, count: Int(st.st_size))
        var filled = 0
        while true {
            if filled == out.count { out.append(contentsOf: repeatElement(0, count: 65536)) }
            let n = out.withUnsafeMutableBytes { b in Glibc.read(fd, b.baseAddress! + filled, b.count - filled) }
            if n < 0 {
                if errno == EINTR { continue }
                throw LoaderError(.ioError, "\(path): read failed: \(errorText(errno))")
            }
            if n == 0 { break }
            filled += n
        }
        out.removeSubrange(filled...)
        return out
    }

    /// The file as UTF-8 text.
    static func readText(_ path: String, missing: LoaderError.Code = .notFound) throws(LoaderError) -> String {
        String(decoding: try read(path, missing: missing), as: UTF8.self)
    }

    /// Writes `bytes` to a temporary file beside `path`, fsyncs it and renames it over `path`, so a reader sees the
    /// old file or the new one, never half of one. `mode` applies from creation (0600 for secret keys).
    static func write(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644, exclusive: Bool = false)
        throws(LoaderError)
    {
        if exclusive && access(path, F_OK) == 0 {
            throw LoaderError(.ioError, "\(path): already exists (refusing to overwrite)")
        }
        let tmp = "\(path).tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw LoaderError(.ioError, "\(path): cannot create: \(errorText(errno))") }
        var ok = true
        var off = 0
        while ok && off < bytes.count {
            let n = bytes.withUnsafeBytes { b in Glibc.write(fd, b.baseAddress! + off, b.count - off) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { ok = false } else { off += n }
        }
        let err = errno
        if ok && fsync(fd) != 0 { ok = false }
        close(fd)
        guard ok, rename(tmp, path) == 0 else {
            let e = ok ? errno : err
            unlink(tmp)
            throw LoaderError(.ioError, "\(path): cannot write: \(errorText(e))")
        }
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Names in a directory (no `.`/`..`), sorted.
    static func list(_ dir: String) throws(LoaderError) -> [String] {
        guard let d = opendir(dir) else { throw LoaderError(.notFound, "\(dir): cannot open directory: \(errorText(errno))") }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }
}

/// `strerror` text for an errno value.
func errorText(_ code: Int32) -> String {
    String(cString: strerror(code))
}

/// `Array.withUnsafeBytes` that keeps the typed error (the standard one rethrows `any Error`).
func withRawBytes<R>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(LoaderError) -> R) throws(LoaderError) -> R {
    let r: Result<R, LoaderError> = bytes.withUnsafeBytes { b in
        do throws(LoaderError) { return .success(try body(b)) } catch { return .failure(error) }
    }
    return try r.get()
}
