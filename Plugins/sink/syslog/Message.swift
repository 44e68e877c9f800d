import MCPGJSON

/// Builds RFC 5424 messages from ledger records:
/// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [mcpg@32473 seq=".." …] MSG`, MSG being the record as
/// compact JSON (MSG-ANY: no BOM).
///
/// - PRI: facility × 8 + severity; severity from the record: `recovery` → crit (2), a denied call or failed
///   authentication → warning (4), outcome `error` → err (3), `tool_error` / `cancelled` → notice (5), else info (6).
/// - TIMESTAMP: the record's `ts` (RFC 3339, UTC); HOSTNAME, APP-NAME, PROCID and MSGID keep to PRINTUSASCII and
///   their RFC lengths (`-` when empty). MSGID is the event's `type` (`tools/call`), or the record kind.
/// - STRUCTURED-DATA: `seq`, `kind`, and when present `id`, `type`, `tool`, `decision`, `status`; values escape
///   `"`, `\` and `]` with a backslash and are cut to 256 bytes on a UTF-8 boundary.
/// - With `maxBytes` (UDP), a longer message keeps its header and structured data, gains the parameter
///   `truncated="<full MSG length in bytes>"`, and its MSG is cut on a UTF-8 boundary to fit.
struct SyslogFormat: Sendable {
    let facility: Int
    let hostname: String
    let appName: String
    let procID: String
    let sdID: String
    let maxBytes: Int?

    static let facilities: [String: Int] = [
        "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7, "uucp": 8,
        "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "console": 14, "solaris-cron": 15,
        "local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22,
        "local7": 23,
    ]

    /// The record kind: the first member that is not one of the envelope's `seq`, `ts`, `prev`, `hash`.
    static func kind(of record: JSONObject) -> String {
        for m in record where !["seq", "ts", "prev", "hash"].contains(m.key) { return m.key }
        return "record"
    }

    static func severity(of record: JSONObject) -> Int {
        if record["recovery"] != nil { return 2 }
        guard let ev = record["event"]?.objectValue else { return 6 }
        if ev["type"]?.stringValue == "authentication" { return 4 }
        if let d = ev["decision"]?.objectValue, Self.denied(d) { return 4 }
        switch ev["outcome"]?["status"]?.stringValue {
        case "error": return 3
        case "tool_error", "cancelled": return 5
        default: return 6
        }
    }

    static func denied(_ d: JSONObject) -> Bool {
        if let e = d["effect"]?.stringValue { return e != "allow" }
        if let a = d["allow"]?.boolValue { return !a }
        return false
    }

    static func decisionWord(_ d: JSONObject) -> String? {
        if let e = d["effect"]?.stringValue { return e }
        if let a = d["allow"]?.boolValue { return a ? "allow" : "deny" }
        return nil
    }

    /// The structured-data parameters of `record`, in a fixed order.
    static func parameters(of record: JSONObject) -> [(String, String)] {
        var out: [(String, String)] = []
        if let seq = record["seq"]?.intValue { out.append(("seq", String(seq))) }
        out.append(("kind", kind(of: record)))
        if let ev = record["event"]?.objectValue {
            if let v = ev["id"]?.stringValue { out.append(("id", v)) }
            if let v = ev["type"]?.stringValue { out.append(("type", v)) }
            if let v = ev["tool"]?.stringValue { out.append(("tool", v)) }
            if let d = ev["decision"]?.objectValue, let v = decisionWord(d) { out.append(("decision", v)) }
            if let v = ev["outcome"]?["status"]?.stringValue { out.append(("status", v)) }
        }
        return out
    }

    func message(for record: JSON) -> [UInt8] {
        let obj = record.objectValue ?? JSONObject()
        var header: [UInt8] = []
        header.reserveCapacity(256)
        header.append(contentsOf: "<\(facility * 8 + Self.severity(of: obj))>1 ".utf8)
        var ts = obj["ts"]?.stringValue ?? ""
        if !Self.isTimestamp(ts) { ts = UTCTimestamp.now() }
        header.append(contentsOf: ts.utf8)
        header.append(0x20)
        header.append(contentsOf: hostname.utf8)
        header.append(0x20)
        header.append(contentsOf: appName.utf8)
        header.append(0x20)
        header.append(contentsOf: procID.utf8)
        header.append(0x20)
        let kind = Self.kind(of: obj)
        let msgID = kind == "event" ? obj["event"]?["type"]?.stringValue ?? kind : kind
        header.append(contentsOf: Self.printable(msgID, max: 32).utf8)
        header.append(0x20)

        let params = Self.parameters(of: obj)
        let msg = record.serialized()
        var sd = structuredData(params)
        guard let maxBytes, header.count + sd.count + 1 + msg.count > maxBytes else {
            return header + sd + [0x20] + msg
        }
        sd = structuredData(params + [("truncated", String(msg.count))])
        let room = maxBytes - header.count - sd.count - 1
        var out = header + sd
        if room > 0 {
            out.append(0x20)
            out.append(contentsOf: msg[0..<Self.utf8Boundary(msg, atMost: room)])
        }
        if out.count > maxBytes { out = Array(out[0..<Self.utf8Boundary(out, atMost: maxBytes)]) }
        return out
    }

    func structuredData(_ params: [(String, String)]) -> [UInt8] {
        var sd: [UInt8] = [UInt8(ascii: "[")]
        sd.append(contentsOf: sdID.utf8)
        for (name, value) in params {
            sd.append(0x20)
            sd.append(contentsOf: name.utf8)
            sd.append(contentsOf: "=\"".utf8)
            var v = Array(value.utf8)
            if v.count > 256 { v = Array(v[0..<Self.utf8Boundary(v, atMost: 256)]) }
            for b in v {
                if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") || b == UInt8(ascii: "]") {
                    sd.append(UInt8(ascii: "\\"))
                }
                sd.append(b)
            }
            sd.append(UInt8(ascii: "\""))
        }
        sd.append(UInt8(ascii: "]"))
        return sd
    }

    /// The largest `n <= atMost` such that `bytes[0..<n]` does not end inside a UTF-8 sequence.
    static func utf8Boundary(_ bytes: [UInt8], atMost: Int) -> Int {
        var n = min(atMost, bytes.count)
        guard n < bytes.count else { return n }
        // bytes[n] starts the cut-off part: back up while it is a continuation byte.
        while n > 0 && bytes[n] & 0xC0 == 0x80 { n -= 1 }
        return n
    }

    /// `s` as PRINTUSASCII (33…126; other characters become `_`), cut to `max`; `-` (NILVALUE) when empty.
    static func printable(_ s: String, max: Int) -> String {
        let b = s.utf8.prefix(max).map { $0 >= 33 && $0 <= 126 ? $0 : UInt8(ascii: "_") }
        return b.isEmpty ? "-" : String(decoding: b, as: UTF8.self)
    }

    /// RFC 5424 TIMESTAMP as the ledger writes it: `YYYY-MM-DDTHH:MM:SS[.1-6 digits]Z`.
    static func isTimestamp(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard b.count >= 20, b.count <= 27, b.last == UInt8(ascii: "Z"), b[10] == UInt8(ascii: "T"),
            UTCTimestamp.parse(s) != nil
        else { return false }
        return b.count == 20 || (b[19] == UInt8(ascii: ".") && b.count > 21)
    }
}
