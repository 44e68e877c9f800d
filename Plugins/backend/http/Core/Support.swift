import MCPGJSON
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A configuration or call-time failure of the HTTP tools, with a message fit for a config error or a tool result.
public struct HTTPToolsError: Error, Sendable, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A `Mutex` in a class, so it can be shared by reference and captured by closures.
final class MutexBox<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    @discardableResult
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        try mutex.withLock { try body(&$0) }
    }
}

/// The whole content of a file, or nil.
public func readFile(_ path: String, limit: Int = 64 << 20) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
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

/// The value of an environment variable, or nil.
public func environmentValue(_ name: String) -> String? {
    guard let p = getenv(name) else { return nil }
    return String(cString: p)
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

extension StringProtocol {
    /// Without leading and trailing spaces, tabs and line breaks.
    func trimmingWhitespace() -> String {
        let ws: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !ws($0) }), let last = lastIndex(where: { !ws($0) }) else { return "" }
        return String(self[first...last])
    }
}

/// Percent-encoding of URL parts (RFC 3986).
public enum PercentEncoding {
    /// Everything but the unreserved characters encoded: the value stays inside one path segment or one query
    /// value (`/`, `?`, `#`, `&`, `=` and `%` included). A segment that is only dots (`.`, `..`) has its dots
    /// encoded too, so no server normalizes it into a parent directory.
    public static func component(_ text: String) -> String {
        var out = ""
        let onlyDots = !text.isEmpty && text.utf8.allSatisfy { $0 == UInt8(ascii: ".") }
        for b in text.utf8 {
            let unreserved =
                (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39)
                || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") || b == UInt8(ascii: "~")
                || (b == UInt8(ascii: ".") && !onlyDots)
            if unreserved {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                out += "%" + hex(b >> 4) + hex(b & 0xF)
            }
        }
        return out
    }

    private static let digits = Array("0123456789ABCDEF".unicodeScalars)
    private static func hex(_ n: UInt8) -> String { String(Character(digits[Int(n)])) }

    /// `application/x-www-form-urlencoded` pairs.
    public static func form(_ pairs: [(String, String)]) -> String {
        pairs.map { component($0.0) + "=" + component($0.1) }.joined(separator: "&")
    }
}

extension JSON {
    /// The text an argument contributes to a URL, header or form: strings as they are, numbers and booleans
    /// as JSON, null as empty, arrays and objects serialized.
    public var plainText: String {
        switch self {
        case .string(let s): return s
        case .null: return ""
        default: return text
        }
    }

    /// The value at a JSON pointer (`/a/0/b`, RFC 6901) or a dotted path (`a.0.b`); "" or "/" is the whole value.
    public func select(_ path: String) -> JSON? {
        if path.isEmpty || path == "/" { return self }
        let tokens: [String]
        if path.hasPrefix("/") {
            tokens = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
                String($0).replacing("~1", with: "/").replacing("~0", with: "~")
            }
        } else {
            tokens = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        }
        var value = self
        for t in tokens {
            switch value {
            case .object(let o):
                guard let v = o[t] else { return nil }
                value = v
            case .array(let a):
                guard let i = Int(t), i >= 0, i < a.count else { return nil }
                value = a[i]
            default:
                return nil
            }
        }
        return value
    }
}
