import MCPGJSON
import PluginKit

/// Redacts sensitive text from tool results (op `response`); arguments (op `request`) pass unchanged.
///
/// Each rule names the tools it covers (globs; default all) and its patterns: a regex, or a builtin
/// (`credit_card`: 13–19 digits, optionally grouped by single spaces or dashes, that pass the Luhn check;
/// `email`; `bearer_token`). Matches become the pattern's replacement, by default `[REDACTED:<name>]`.
/// Covered: the strings of every content block (`text`, embedded resource text; not `type`, `mimeType`, `uri`,
/// base64 `data`/`blob`, `annotations` or `_meta`) and every string value in `structuredContent`, nested.
struct Redact: SyncTransformPlugin {
    struct Config: Decodable, Sendable {
        struct Rule: Decodable, Sendable {
            var tools: [String]?
            var patterns: [Pattern]
        }
        struct Pattern: Decodable, Sendable {
            var name: String
            var regex: String?
            var builtin: String?
            var replacement: String?
        }
        var rules: [Rule]
    }
    static let name = "redact"
    static let version = "1.0.0"
    static var configSchema: JSON {
        [
            "type": "object", "additionalProperties": false, "required": ["rules"],
            "properties": [
                "rules": [
                    "type": "array", "description": "Redaction rules, applied in order to the results of their tools.",
                    "items": [
                        "type": "object", "additionalProperties": false, "required": ["patterns"],
                        "properties": [
                            "tools": [
                                "type": "array", "minItems": 1, "items": ["type": "string"],
                                "description":
                                    "Tool name globs (`*` any run, `?` one character) the rule covers. Absent: all.",
                            ],
                            "patterns": [
                                "type": "array", "minItems": 1, "description": "What to redact.",
                                "items": [
                                    "type": "object", "additionalProperties": false, "required": ["name"],
                                    "oneOf": [["required": ["regex"]], ["required": ["builtin"]]],
                                    "properties": [
                                        "name": [
                                            "type": "string", "minLength": 1,
                                            "description": "Name of the pattern, used in the default replacement.",
                                        ],
                                        "regex": [
                                            "type": "string", "minLength": 1,
                                            "description": "A regular expression (Swift Regex syntax) to redact.",
                                        ],
                                        "builtin": [
                                            "enum": ["credit_card", "email", "bearer_token"],
                                            "description":
                                                "A built-in pattern; `credit_card` redacts only Luhn-valid numbers.",
                                        ],
                                        "replacement": [
                                            "type": "string",
                                            "description": "Literal replacement text. Default: `[REDACTED:<name>]`.",
                                        ],
                                    ],
                                ],
                            ],
                        ],
                    ],
                ]
            ],
        ]
    }

    let rules: [CompiledRule]

    init(config: Config, host: Host) throws {
        var rules: [CompiledRule] = []
        for (i, r) in config.rules.enumerated() {
            if r.tools?.isEmpty == true {
                throw PluginError(code: -32602, "redact: rules[\(i)].tools must not be empty (omit it for all tools)")
            }
            guard !r.patterns.isEmpty else {
                throw PluginError(code: -32602, "redact: rules[\(i)].patterns must not be empty")
            }
            var patterns: [CompiledPattern] = []
            for p in r.patterns {
                patterns.append(try CompiledPattern(p, where: "rules[\(i)]"))
            }
            rules.append(CompiledRule(tools: r.tools.map(GlobSet.init), patterns: patterns))
        }
        self.rules = rules
    }

    func transformResult(_ result: JSON, for call: ToolInvocation) throws -> JSON {
        let patterns = rules.flatMap { rule in
            rule.tools.map { $0.matches(call.tool) } ?? true ? rule.patterns : []
        }
        guard !patterns.isEmpty, case .object(let top) = result else { return result }
        let redact: (String) -> String = { s in patterns.reduce(s) { $1.apply($0) } }
        var out = top
        if let content = top["content"]?.arrayValue {
            out["content"] = .array(content.map { Self.redactBlock($0, redact) })
        }
        if let structured = top["structuredContent"] {
            out["structuredContent"] = Self.redactAll(structured, redact)
        }
        return .object(out)
    }

    /// Members of content blocks that hold structure or binary data, not text.
    private static let blockSkip: Set<String> = ["type", "mimeType", "uri", "data", "blob", "annotations", "_meta"]

    private static func redactBlock(_ v: JSON, _ redact: (String) -> String) -> JSON {
        switch v {
        case .string(let s): return .string(redact(s))
        case .array(let a): return .array(a.map { redactBlock($0, redact) })
        case .object(let o):
            return .object(
                JSONObject(
                    o.members.map { m in
                        blockSkip.contains(m.key) ? m : JSONMember(m.key, redactBlock(m.value, redact))
                    }))
        default: return v
        }
    }

    private static func redactAll(_ v: JSON, _ redact: (String) -> String) -> JSON {
        switch v {
        case .string(let s): return .string(redact(s))
        case .array(let a): return .array(a.map { redactAll($0, redact) })
        case .object(let o):
            return .object(JSONObject(o.members.map { JSONMember($0.key, redactAll($0.value, redact)) }))
        default: return v
        }
    }
}

struct CompiledRule: Sendable {
    /// nil: every tool.
    let tools: GlobSet?
    let patterns: [CompiledPattern]
}

/// One pattern, compiled at `init`.
struct CompiledPattern: Sendable {
    enum Matcher: Sendable {
        case regex(SendableRegex)
        case creditCard
    }
    let matcher: Matcher
    let replacement: String

    init(_ p: Redact.Config.Pattern, where location: String) throws {
        guard !p.name.isEmpty else { throw PluginError(code: -32602, "redact: \(location): pattern name is empty") }
        let label = "redact: \(location) pattern \"\(p.name)\""
        replacement = p.replacement ?? "[REDACTED:\(p.name)]"
        switch (p.regex, p.builtin) {
        case (let source?, nil):
            do {
                matcher = .regex(SendableRegex(try Regex(source)))
            } catch {
                throw PluginError(code: -32602, "\(label): invalid regex: \(error)")
            }
        case (nil, "credit_card"?):
            matcher = .creditCard
        case (nil, "email"?):
            let email = #"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"#
            matcher = .regex(SendableRegex(try Regex(email)))
        case (nil, "bearer_token"?):
            matcher = .regex(SendableRegex(try Regex(#"(?i)\bbearer[ \t]+[A-Za-z0-9\-._~+/]+=*"#)))
        case (nil, let other?):
            throw PluginError(
                code: -32602, "\(label): unknown builtin \"\(other)\" (credit_card, email or bearer_token)")
        case (nil, nil):
            throw PluginError(code: -32602, "\(label): needs a regex or a builtin")
        case (_?, _?):
            throw PluginError(code: -32602, "\(label): give either regex or builtin, not both")
        }
    }

    func apply(_ s: String) -> String {
        switch matcher {
        case .regex(let r): return s.replacing(r.regex, with: replacement)
        case .creditCard: return CreditCards.redact(s, with: replacement) ?? s
        }
    }
}

/// A compiled regex shared by concurrent calls.
struct SendableRegex: @unchecked Sendable {
    // Safe to share: a Regex is an immutable value; its one lazy cache (the lowered program) is stored with an
    // atomic compare-and-swap in _StringProcessing, and `init` fills it before the value is shared anyway.
    let regex: Regex<AnyRegexOutput>
    init(_ regex: Regex<AnyRegexOutput>) {
        _ = "".firstMatch(of: regex)
        self.regex = regex
    }
}

/// Finds card numbers without a regex: a digit run (single spaces or dashes allowed between digits, word
/// boundaries on both ends) is split into its groups, and the longest leftmost span of whole groups holding
/// 13–19 digits that passes the Luhn check is redacted, then the search continues after it.
enum CreditCards {
    /// `s` with each card number replaced, or nil when there is none.
    static func redact(_ s: String, with replacement: String) -> String? {
        let b = Array(s.utf8)
        let n = b.count
        var spans: [Range<Int>] = []
        var i = 0
        while i < n {
            guard isDigit(b[i]), i == 0 || !isWord(b[i - 1]) else {
                i += 1
                continue
            }
            // Groups of the run: digit ranges separated by one space or dash.
            var groups: [Range<Int>] = []
            var j = i
            while true {
                var k = j
                while k < n && isDigit(b[k]) { k += 1 }
                groups.append(j..<k)
                if k + 1 < n && (b[k] == UInt8(ascii: " ") || b[k] == UInt8(ascii: "-")) && isDigit(b[k + 1]) {
                    j = k + 1
                } else {
                    break
                }
            }
            let end = groups[groups.count - 1].upperBound
            i = end
            if end < n && isWord(b[end]) { continue }
            var a = 0
            while a < groups.count {
                var best = -1
                var digits = 0
                var c = a
                while c < groups.count {
                    digits += groups[c].count
                    if digits > 19 { break }
                    if digits >= 13 && luhn(b, groups[a...c]) { best = c }
                    c += 1
                }
                if best >= 0 {
                    spans.append(groups[a].lowerBound..<groups[best].upperBound)
                    a = best + 1
                } else {
                    a += 1
                }
            }
        }
        guard !spans.isEmpty else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(n)
        var last = 0
        for span in spans {
            out.append(contentsOf: b[last..<span.lowerBound])
            out.append(contentsOf: replacement.utf8)
            last = span.upperBound
        }
        out.append(contentsOf: b[last...])
        return String(decoding: out, as: UTF8.self)
    }

    private static func luhn(_ b: [UInt8], _ groups: ArraySlice<Range<Int>>) -> Bool {
        var sum = 0
        var double = false
        for g in groups.reversed() {
            for idx in g.reversed() {
                var d = Int(b[idx] - UInt8(ascii: "0"))
                if double {
                    d *= 2
                    if d > 9 { d -= 9 }
                }
                sum += d
                double.toggle()
            }
        }
        return sum % 10 == 0
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

    private static func isWord(_ c: UInt8) -> Bool {
        isDigit(c) || (c | 0x20 >= UInt8(ascii: "a") && c | 0x20 <= UInt8(ascii: "z")) || c == UInt8(ascii: "_")
    }
}

@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { PluginExport.descriptor(for: Redact.self) }
