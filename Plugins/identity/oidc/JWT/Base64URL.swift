/// Strict base64url (RFC 4648 §5) as JWS compact serialization uses it (RFC 7515 §2): the URL-safe
/// alphabet, no padding, no whitespace, and unused trailing bits zero, so every byte string has exactly one
/// accepted encoding.
public enum Base64URL {
    /// The decoded bytes, or nil when `text` is not canonical unpadded base64url.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        decode(Array(text.utf8))
    }

    /// The decoded bytes, or nil when `bytes` are not canonical unpadded base64url.
    public static func decode(_ bytes: some Collection<UInt8>) -> [UInt8]? {
        let count = bytes.count
        // One leftover character carries only 6 bits: never a whole byte.
        guard count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(count * 3 / 4)
        var acc: UInt32 = 0
        var bits = 0
        for c in bytes {
            guard let v = value(c) else { return nil }
            acc = (acc << 6) | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
                acc &= (1 << UInt32(bits)) - 1
            }
        }
        // Leftover bits must be zero: otherwise two strings would decode to the same bytes.
        guard acc == 0 else { return nil }
        return out
    }

    /// The unpadded base64url text of `bytes`.
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var acc: UInt32 = 0
        var bits = 0
        for b in bytes {
            acc = (acc << 8) | UInt32(b)
            bits += 8
            while bits >= 6 {
                bits -= 6
                out.append(alphabet[Int((acc >> UInt32(bits)) & 63)])
            }
            acc &= (1 << UInt32(bits)) - 1
        }
        if bits > 0 { out.append(alphabet[Int((acc << UInt32(6 - bits)) & 63)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// True when every byte is in the base64url alphabet (an empty string is).
    static func isAlphabet(_ bytes: some Collection<UInt8>) -> Bool {
        bytes.allSatisfy { value($0) != nil }
    }

    private static func value(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return c - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return c - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0") + 52
        case UInt8(ascii: "-"): return 62
        case UInt8(ascii: "_"): return 63
        default: return nil
        }
    }
}
