/// Lowercase (or uppercase) hex without separators.
public enum Hex {
    private static let lower: [UInt8] = Array("0123456789abcdef".utf8)
    private static let upper: [UInt8] = Array("0123456789ABCDEF".utf8)

    public static func encode(_ bytes: some Sequence<UInt8>, uppercase: Bool = false) -> String {
        String(decoding: encodeBytes(bytes, uppercase: uppercase), as: UTF8.self)
    }

    public static func encodeBytes(_ bytes: some Sequence<UInt8>, uppercase: Bool = false) -> [UInt8] {
        let digits = uppercase ? upper : lower
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return out
    }

    /// Decodes lowercase hex; nil for anything else (odd length, other characters).
    public static func decode(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0, isLowercaseHex(digits, count: digits.count) else { return nil }
        func value(_ d: UInt8) -> UInt8 { d <= 0x39 ? d - 0x30 : d - 0x61 + 10 }
        var out = [UInt8]()
        out.reserveCapacity(digits.count / 2)
        var i = 0
        while i < digits.count {
            out.append(value(digits[i]) << 4 | value(digits[i + 1]))
            i += 2
        }
        return out
    }

    /// True if `bytes` are exactly `count` lowercase hex digits.
    public static func isLowercaseHex(_ bytes: some Collection<UInt8>, count: Int) -> Bool {
        bytes.count == count && bytes.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }
}
