#if canImport(Glibc)
import Glibc
#endif

/// Checks that `bytes` are a 64-bit little-endian ELF shared object for this machine, before anything maps them.
func checkELF(_ bytes: UnsafeRawBufferPointer, path: String) throws(LoaderError) {
    guard bytes.count >= 64, bytes[0] == 0x7F, bytes[1] == 0x45, bytes[2] == 0x4C, bytes[3] == 0x46 else {
        throw LoaderError(.notELF, "\(path): not an ELF file (a plugin must be a shared library)")
    }
    guard bytes[4] == 2, bytes[5] == 1 else {
        throw LoaderError(.notELF, "\(path): not a 64-bit little-endian ELF file")
    }
    let type = UInt16(bytes[16]) | UInt16(bytes[17]) << 8
    guard type == 3 else { throw LoaderError(.notELF, "\(path): ELF file is not a shared library (e_type \(type))") }
    let machine = UInt16(bytes[18]) | UInt16(bytes[19]) << 8
    #if arch(x86_64)
    let expected: UInt16 = 62
    #elseif arch(arm64)
    let expected: UInt16 = 183
    #else
    let expected = machine
    #endif
    guard machine == expected else {
        throw LoaderError(.notELF, "\(path): built for another CPU architecture (ELF e_machine \(machine), need \(expected))")
    }
}

// Linux constants Swift's Glibc module does not expose (they need _GNU_SOURCE): <linux/memfd.h>, <linux/fcntl.h>.
private let mfdCloexec: UInt32 = 0x0001
private let mfdAllowSealing: UInt32 = 0x0002
private let mfdExec: UInt32 = 0x0010
private let fAddSeals: Int32 = 1024 + 9
private let fSealSeal: Int32 = 0x0001
private let fSealShrink: Int32 = 0x0002
private let fSealGrow: Int32 = 0x0004
private let fSealWrite: Int32 = 0x0008

private typealias MemfdCreate = @convention(c) (UnsafePointer<CChar>?, UInt32) -> Int32

/// glibc's `memfd_create`, found at run time: Swift's Glibc module does not declare it and `syscall` is variadic.
private let memfdCreate: MemfdCreate? = {
    guard let me = dlopen(nil, RTLD_NOW), let sym = dlsym(me, "memfd_create") else { return nil }
    return unsafeBitCast(sym, to: MemfdCreate.self)
}()

/// A `dlopen` handle. Never closed: unloading a Swift image crashes the process (RTLD_NODELETE keeps it anyway).
struct ImageHandle: @unchecked Sendable {
    // Safe to share: dlopen handles are process-global and thread-safe to use with dlsym; we never dlclose.
    let raw: UnsafeMutableRawPointer
}

/// Maps exactly `bytes` as a shared object: memfd → write → seal → dlopen("/proc/self/fd/N").
///
/// The memfd stays open for the life of the process. glibc recognises already-loaded objects by path name, so a
/// closed and reused descriptor number would make a later `dlopen("/proc/self/fd/N")` return the earlier image.
func mapImage(_ bytes: UnsafeRawBufferPointer, name: String, path: String) throws(LoaderError) -> ImageHandle {
    guard let memfdCreate else {
        throw LoaderError(.memfdFailed, "\(path): this system's C library has no memfd_create (needs Linux 3.17+, glibc 2.27+)")
    }
    // Linux 6.3+ wants executable memfds asked for explicitly (MFD_EXEC); older kernels reject the flag (EINVAL).
    var fd = memfdCreate("mcpg-plugin:\(name)", mfdCloexec | mfdAllowSealing | mfdExec)
    if fd < 0 && errno == EINVAL { fd = memfdCreate("mcpg-plugin:\(name)", mfdCloexec | mfdAllowSealing) }
    guard fd >= 0 else {
        let e = errno
        let hint = e == EACCES || e == EPERM ? " (this host forbids executable memfds, e.g. sysctl vm.memfd_noexec=2)" : ""
        throw LoaderError(.memfdFailed, "\(path): memfd_create failed: \(errorText(e))\(hint)")
    }
    var off = 0
    while off < bytes.count {
        let n = write(fd, bytes.baseAddress! + off, bytes.count - off)
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else {
            let e = errno
            close(fd)
            throw LoaderError(.memfdFailed, "\(path): writing the in-memory copy failed: \(errorText(e))")
        }
        off += n
    }
    // F_SEAL_WRITE fails with EBUSY while any page of the file still has a transient extra reference (the
    // kernel waits ~200 ms for pins, but pages just written can sit in another CPU's LRU batch under load).
    // Nothing maps the file yet, so the references go away: retry for up to about a second.
    var sealed = fcntl(fd, fAddSeals, fSealShrink | fSealGrow | fSealWrite | fSealSeal) == 0
    var attempt = 0
    while !sealed && errno == EBUSY && attempt < 20 {
        attempt += 1
        usleep(UInt32(10_000 * min(attempt, 5)))
        sealed = fcntl(fd, fAddSeals, fSealShrink | fSealGrow | fSealWrite | fSealSeal) == 0
    }
    guard sealed else {
        let e = errno
        close(fd)
        throw LoaderError(.memfdFailed, "\(path): sealing the in-memory copy failed: \(errorText(e))")
    }
    _ = dlerror()
    guard let handle = dlopen("/proc/self/fd/\(fd)", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE) else {
        let detail = dlerror().map { String(cString: $0) } ?? "unknown error"
        close(fd)
        var hint = ""
        if detail.contains("map segment") || detail.contains("not permitted") || detail.contains("denied") {
            hint = " (this host seems to forbid executable mappings of memfd files: seccomp, SELinux or noexec policy)"
        }
        throw LoaderError(.dlopenFailed, "\(path): dlopen of the verified bytes failed: \(detail)\(hint)")
    }
    return ImageHandle(raw: handle)
}

/// The address of `symbol` in `image`, or nil.
func lookup(_ symbol: String, in image: ImageHandle) -> UnsafeMutableRawPointer? {
    _ = dlerror()
    return dlsym(image.raw, symbol)
}
