import MCPGJSON

/// A string with `{name}` placeholders (name: letters, digits, `_`, `-`, `.`; starting with a letter or `_`).
/// Other braces are literal text.
public struct Template: Sendable, Equatable {
    public enum Part: Sendable, Equatable {
        case literal(String)
        case placeholder(String)
    }
    public let parts: [Part]
    public let source: String

    public init(_ text: String) {
        source = text
        var parts: [Part] = []
        var literal = ""
        var i = text.startIndex
        while i < text.endIndex {
            if text[i] == "{", let close = text[i...].firstIndex(of: "}") {
                let name = text[text.index(after: i)..<close]
                if Self.isName(name) {
                    if !literal.isEmpty { parts.append(.literal(literal)) }
                    literal = ""
                    parts.append(.placeholder(String(name)))
                    i = text.index(after: close)
                    continue
                }
            }
            literal.append(text[i])
            i = text.index(after: i)
        }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        self.parts = parts
    }

    /// A template from its parts as they are (placeholder names of any characters, e.g. OpenAPI parameters).
    public init(parts: [Part]) {
        self.parts = parts
        source = parts.map {
            switch $0 {
            case .literal(let s): return s
            case .placeholder(let n): return "{\(n)}"
            }
        }.joined()
    }

    static func isName(_ s: Substring) -> Bool {
        guard let first = s.utf8.first, first == UInt8(ascii: "_") || (first | 0x20) >= 0x61 && (first | 0x20) <= 0x7A
        else { return false }
        return s.utf8.allSatisfy {
            ($0 | 0x20) >= 0x61 && ($0 | 0x20) <= 0x7A || ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: "_")
                || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".")
        }
    }

    /// The placeholder names, in order, without repeats.
    public var placeholders: [String] {
        var seen: [String] = []
        for case .placeholder(let n) in parts where !seen.contains(n) { seen.append(n) }
        return seen
    }

    /// The one placeholder the whole template is, if it is exactly one.
    public var single: String? {
        if parts.count == 1, case .placeholder(let n) = parts[0] { return n }
        return nil
    }

    /// The text with each placeholder replaced by `encode` of its argument's text (absent → empty).
    public func render(_ arguments: JSONObject, encode: (String) -> String = { $0 }) -> String {
        var out = ""
        for part in parts {
            switch part {
            case .literal(let s): out += s
            case .placeholder(let n): out += encode(arguments[n]?.plainText ?? "")
            }
        }
        return out
    }
}

extension JSON {
    /// Placeholders in every string of a JSON template (keys are not templates).
    public var templatePlaceholders: [String] {
        var out: [String] = []
        func walk(_ v: JSON) {
            switch v {
            case .string(let s): for n in Template(s).placeholders where !out.contains(n) { out.append(n) }
            case .array(let a): a.forEach(walk)
            case .object(let o): o.forEach { walk($0.value) }
            default: break
            }
        }
        walk(self)
        return out
    }

    /// A JSON template filled in: a string that is exactly one `{name}` takes the argument's JSON value (an
    /// object member whose argument is absent is left out), other strings get the arguments' text.
    public func renderTemplate(_ arguments: JSONObject) -> JSON? {
        switch self {
        case .string(let s):
            let t = Template(s)
            if let n = t.single { return arguments[n] }
            return .string(t.render(arguments))
        case .array(let a):
            return .array(a.map { $0.renderTemplate(arguments) ?? .null })
        case .object(let o):
            var out = JSONObject()
            for m in o { if let v = m.value.renderTemplate(arguments) { out[m.key] = v } }
            return .object(out)
        default:
            return self
        }
    }
}
