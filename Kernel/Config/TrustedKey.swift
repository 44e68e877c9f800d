/// Reads `plugins.trusted_keys` entries: a minisign public key written inline (`RW…`, the second line of a
/// `.pub` file), or the path of such a `.pub` file.
enum TrustedKey {
    /// The key text for an entry, or why it is not usable. A file path is resolved against `directory`.
    static func resolve(_ entry: String, directory: String) -> Result<String, StringFormat.Reason> {
        if entry.hasPrefix("RW") {
            guard isPublicKey(entry) else {
                let expected = "expected 56 base64 characters holding an Ed25519 key"
                return .failure(StringFormat.Reason("invalid minisign public key \(quoted(entry)): \(expected)"))
            }
            return .success(entry)
        }
        guard !entry.isEmpty else { return .failure(StringFormat.Reason("the trusted key is empty")) }
        let path = FileSystem.absolute(entry, base: directory)
        let looked = entry.hasPrefix("/") ? "" : " (looked for \(path))"
        switch FileSystem.kind(of: path) {
        case .missing:
            return .failure(StringFormat.Reason("trusted key file \(quoted(entry)) does not exist\(looked)"))
        case .directory, .other:
            return .failure(StringFormat.Reason("trusted key file \(quoted(entry)) is not a regular file"))
        case .file:
            break
        }
        let bytes: [UInt8]
        switch FileSystem.contents(of: path, limit: 64 << 10) {
        case .success(let b): bytes = b
        case .failure(let error):
            return .failure(StringFormat.Reason("cannot read trusted key file \(quoted(entry)): \(error.reason)"))
        }
        let text = String(decoding: bytes, as: UTF8.self)
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = trim(line)
            if trimmed.isEmpty || trimmed.hasPrefix("untrusted comment:") { continue }
            if isPublicKey(trimmed) { return .success(trimmed) }
            break
        }
        return .failure(StringFormat.Reason("trusted key file \(quoted(entry)) holds no minisign public key"))
    }

    /// 56 base64 characters decoding to `"Ed"`, an 8-byte key id and a 32-byte Ed25519 key.
    static func isPublicKey(_ s: String) -> Bool {
        guard s.utf8.count == 56, let bytes = base64Decode(s), bytes.count == 42 else { return false }
        return bytes[0] == UInt8(ascii: "E") && bytes[1] == UInt8(ascii: "d")
    }

    /// Standard base64 with `=` padding; nil on any other character.
    static func base64Decode(_ s: String) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        var padding = 0
        for c in s.utf8 {
            let v: UInt8
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): v = c - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = c - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - UInt8(ascii: "0") + 52
            case UInt8(ascii: "+"): v = 62
            case UInt8(ascii: "/"): v = 63
            case UInt8(ascii: "="):
                padding += 1
                continue
            default: return nil
            }
            guard padding == 0 else { return nil }
            buffer = (buffer << 6 | UInt32(v)) & 0xFFFF
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
        }
        return padding <= 2 ? out : nil
    }

    /// The line without surrounding spaces, tabs and carriage returns.
    static func trim(_ line: Substring) -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        return String(line.drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
