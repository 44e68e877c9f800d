import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `Mutex` in a class, so it can be shared by reference and captured by closures.
final class MutexBox<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    @discardableResult
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        try mutex.withLock { try body(&$0) }
    }
}

/// Runs `body` on a new detached POSIX thread, for loops that block in `read(2)` or `waitpid(2)` and must not
/// hold a thread of Swift's cooperative pool.
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
        // No thread: run inline rather than lose the work (only on resource exhaustion).
        Unmanaged<Box>.fromOpaque(arg).takeRetainedValue().body()
    }
}

/// `text` cut to at most `limit` UTF-8 bytes (on a character boundary), with "…" when cut.
func truncated(_ text: String, _ limit: Int) -> String {
    if text.utf8.count <= limit { return text }
    var out = ""
    for ch in text {
        if out.utf8.count + String(ch).utf8.count > limit { break }
        out.append(ch)
    }
    return out + "…"
}

/// The whole content of a file, or nil.
func readFile(_ path: String, limit: Int = 1 << 20) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 16384)
    while out.count <= limit {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            return nil
        }
        if n == 0 { return out }
        out += buffer[0..<n]
    }
    return nil
}

/// Exponential backoff: `initial`, doubling up to `max`.
struct Backoff: Sendable {
    let initialMs: Int
    let maxMs: Int
    private(set) var nextMs: Int
    init(initialMs: Int, maxMs: Int) {
        self.initialMs = initialMs
        self.maxMs = maxMs
        nextMs = initialMs
    }
    /// The delay to wait now; the next one doubles.
    mutating func next() -> Int {
        let d = nextMs
        nextMs = min(maxMs, nextMs * 2)
        return d
    }
    mutating func reset() { nextMs = initialMs }
}
