import CSodium
import CYAML
import MCPGJSON
import PluginKit

#if canImport(Glibc)
import Glibc
#endif

/// One accepted key: its principal, the 32-byte digest of the key, and when it stops being accepted.
struct KeyEntry: Sendable {
    var principal: Principal
    var digest: [UInt8]
    /// Seconds since the epoch after which the key is refused; nil: never.
    var expires: Int64?
}

/// A key list problem, with where it is (`keys[2]`, `keys_file line 4`).
struct KeyListError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Builds the key list from the inline `keys`, a keys file and an environment variable.
///
/// File and variable formats: a YAML or JSON list of `{id, sha256, groups?, tenant?, expires?}` (or a mapping
/// whose `keys` member is that list), or one `id:sha256` per line (`#` starts a comment line).
enum KeyList {
    static func build(inline: [JSON], file: String?, env: String?) throws -> [KeyEntry] {
        var entries: [KeyEntry] = []
        var ids: [String: String] = [:]
        var digests: [[UInt8]: String] = [:]
        func add(_ items: [JSON], from source: String) throws {
            for (i, item) in items.enumerated() {
                let place = "\(source)[\(i)]"
                let e = try entry(item, at: place)
                let id = e.principal.id
                if let other = ids[id] { throw KeyListError(message: "duplicate key id \"\(id)\" (\(other) and \(place))") }
                if let other = digests[e.digest] {
                    throw KeyListError(message: "\(other) and \(place) have the same sha256")
                }
                ids[id] = place
                digests[e.digest] = place
                entries.append(e)
            }
        }
        try add(inline, from: "keys")
        if let file {
            guard let bytes = readFile(file) else { throw KeyListError(message: "keys_file \(file): cannot read the file") }
            try add(try parse(bytes, source: "keys_file \(file)"), from: "keys_file")
        }
        if let env {
            guard let value = getenv(env) else { throw KeyListError(message: "keys_env: $\(env) is not set") }
            try add(try parse(Array(String(cString: value).utf8), source: "keys_env $\(env)"), from: "keys_env")
        }
        return entries
    }

    static func entry(_ item: JSON, at place: String) throws -> KeyEntry {
        func bad(_ m: String) -> KeyListError { KeyListError(message: "\(place): \(m)") }
        guard let o = item.objectValue else { throw bad("must be a mapping with id and sha256") }
        for m in o where !["id", "sha256", "groups", "tenant", "expires"].contains(m.key) {
            throw bad("unknown key \"\(m.key)\"")
        }
        guard let id = o["id"]?.stringValue, !id.isEmpty else { throw bad("id must be a non-empty string") }
        guard let hex = o["sha256"]?.stringValue, let digest = decodeHex(hex) else {
            throw bad("sha256 must be 64 lowercase hex digits (\"\(id)\")")
        }
        var groups: [String] = []
        if let g = o["groups"] {
            guard let list = g.arrayValue, list.allSatisfy({ $0.stringValue != nil }) else {
                throw bad("groups must be a list of strings")
            }
            groups = list.compactMap(\.stringValue)
        }
        var tenant: String?
        if let t = o["tenant"] {
            guard let s = t.stringValue else { throw bad("tenant must be a string") }
            tenant = s
        }
        var expires: Int64?
        if let x = o["expires"] {
            guard let s = x.stringValue, let t = UTCTimestamp.parse(s) else {
                throw bad("expires must be an RFC 3339 date-time such as 2026-12-31T23:59:59Z")
            }
            expires = t
        }
        return KeyEntry(principal: Principal(id: id, groups: groups, tenant: tenant), digest: digest, expires: expires)
    }

    /// The entries of a keys file or variable, as JSON items (not yet checked).
    static func parse(_ bytes: [UInt8], source: String) throws -> [JSON] {
        let text = String(decoding: bytes, as: UTF8.self)
        let lines = text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).map { $0.trimmingSpaces }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        if !lines.isEmpty, lines.allSatisfy(isIDHashLine) {
            return lines.map { line in
                let colon = line.lastIndex(of: ":")!
                return ["id": .string(String(line[..<colon])), "sha256": .string(String(line[line.index(after: colon)...]))]
            }
        }
        if lines.isEmpty { return [] }
        let doc: JSON
        do { doc = try YAMLScalars.parse(bytes) } catch { throw KeyListError(message: "\(source): \(error)") }
        if let list = doc.arrayValue { return list }
        if let list = doc["keys"]?.arrayValue { return list }
        throw KeyListError(
            message: "\(source): expected a list of keys (YAML or JSON), a mapping with a keys list, or id:sha256 lines")
    }

    /// `id:sha256` with a 64-hex-digit hash and an id without spaces.
    static func isIDHashLine(_ line: String) -> Bool {
        guard let colon = line.lastIndex(of: ":") else { return false }
        let id = line[..<colon]
        return !id.isEmpty && !id.contains(where: { $0 == " " || $0 == "\t" })
            && decodeHex(String(line[line.index(after: colon)...])) != nil
    }

    static func readFile(_ path: String) -> [UInt8]? {
        guard let f = fopen(path, "rb") else { return nil }
        defer { fclose(f) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n > 0 { out += buf[0..<n] }
            if n < buf.count { return ferror(f) == 0 ? out : nil }
            if out.count > 64 << 20 { return nil }
        }
    }

    /// 32 bytes from exactly 64 lowercase hex digits, else nil.
    static func decodeHex(_ hex: String) -> [UInt8]? {
        let u = Array(hex.utf8)
        guard u.count == 64 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            default: return nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(32)
        for i in stride(from: 0, to: 64, by: 2) {
            guard let hi = nibble(u[i]), let lo = nibble(u[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
        }
        return out
    }
}

extension Substring {
    var trimmingSpaces: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[start...end])
    }
}

/// A YAML document (JSON is YAML) as JSON in which every scalar is a string: enough for key lists, whose values
/// are all text. Anchors, aliases and several documents are refused.
enum YAMLScalars {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func parse(_ bytes: [UInt8]) throws -> JSON {
        enum Open {
            case list([JSON])
            case map(JSONObject, key: String?)
        }
        var stack: [Open] = []
        var root: JSON?
        var failure: String?
        func put(_ v: JSON) {
            guard let top = stack.popLast() else {
                root = v
                return
            }
            switch top {
            case .list(var items):
                items.append(v)
                stack.append(.list(items))
            case .map(var o, let key):
                if let key {
                    o[key] = v
                    stack.append(.map(o, key: nil))
                } else if case .string(let k) = v {
                    stack.append(.map(o, key: k))
                } else {
                    failure = "a mapping key must be a scalar"
                    stack.append(.map(o, key: nil))
                }
            }
        }
        bytes.withUnsafeBufferPointer { buffer in
            let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
            let event = UnsafeMutablePointer<yaml_event_t>.allocate(capacity: 1)
            defer {
                parser.deallocate()
                event.deallocate()
            }
            guard yaml_parser_initialize(parser) != 0 else {
                failure = "cannot initialise the YAML parser"
                return
            }
            defer { yaml_parser_delete(parser) }
            guard let base = buffer.baseAddress else { return }
            yaml_parser_set_input_string(parser, base, buffer.count)
            var documents = 0
            while failure == nil {
                guard yaml_parser_parse(parser, event) != 0 else {
                    let p = parser.pointee
                    let what = p.problem.map { String(cString: $0) } ?? "syntax error"
                    failure = "line \(p.problem_mark.line + 1) column \(p.problem_mark.column + 1): \(what)"
                    return
                }
                defer { yaml_event_delete(event) }
                let e = event.pointee
                switch e.type {
                case YAML_STREAM_END_EVENT: return
                case YAML_DOCUMENT_START_EVENT:
                    documents += 1
                    if documents > 1 { failure = "more than one YAML document" }
                case YAML_SEQUENCE_START_EVENT: stack.append(.list([]))
                case YAML_MAPPING_START_EVENT: stack.append(.map([:], key: nil))
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    switch stack.popLast() {
                    case .list(let items)?: put(.array(items))
                    case .map(let o, _)?: put(.object(o))
                    case nil: failure = "unbalanced YAML"
                    }
                case YAML_SCALAR_EVENT:
                    let s = e.data.scalar
                    let text = s.value.map { String(decoding: UnsafeBufferPointer(start: $0, count: s.length), as: UTF8.self) } ?? ""
                    put(.string(text))
                case YAML_ALIAS_EVENT:
                    failure = "anchors and aliases are not supported"
                default: break
                }
            }
        }
        if let failure { throw Failure(description: failure) }
        return root ?? .null
    }
}
