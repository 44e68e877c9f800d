import MCPGJSON

/// A path into the evaluation context: `args.city`, `steps.w.result.items[0].name`, `item`, `error.message`.
///
/// The first segment is a root (`args`, `vars`, `steps`, `item`, `index`, `error`); then `.name` members and `[n]`
/// array indexes (`[-1]` is the last element). A member name is letters, digits, `_` and `-`.
public struct Path: Sendable, Equatable {
    public enum Segment: Sendable, Equatable {
        case member(String)
        case index(Int)
    }
    public let root: String
    public let segments: [Segment]

    public static let roots: Set<String> = ["args", "vars", "steps", "item", "index", "error"]

    /// Parses `source` (already trimmed). Throws a message saying what is wrong.
    public init(parsing source: String) throws(ExpressionError) {
        var segments: [Segment] = []
        let chars = Array(source)
        var i = 0
        func name() -> String {
            var s = ""
            while i < chars.count, chars[i].isLetter || chars[i].isNumber || chars[i] == "_" || chars[i] == "-" {
                s.append(chars[i])
                i += 1
            }
            return s
        }
        let root = name()
        guard !root.isEmpty else {
            throw ExpressionError("\"\(source)\" is not a path (args.x, vars.x, steps.id.result, item, index, error)")
        }
        guard Self.roots.contains(root) else {
            throw ExpressionError("\"\(source)\": unknown root \"\(root)\" (args, vars, steps, item, index, error)")
        }
        while i < chars.count {
            if chars[i] == "." {
                i += 1
                let n = name()
                guard !n.isEmpty else { throw ExpressionError("\"\(source)\": empty member name") }
                segments.append(.member(n))
            } else if chars[i] == "[" {
                i += 1
                var digits = ""
                if i < chars.count, chars[i] == "-" {
                    digits.append("-")
                    i += 1
                }
                while i < chars.count, chars[i].isASCII, chars[i].isNumber {
                    digits.append(chars[i])
                    i += 1
                }
                guard i < chars.count, chars[i] == "]", let n = Int(digits) else {
                    throw ExpressionError("\"\(source)\": an index is [digits]")
                }
                i += 1
                segments.append(.index(n))
            } else {
                throw ExpressionError("\"\(source)\": unexpected \"\(chars[i])\"")
            }
        }
        self.root = root
        self.segments = segments
    }

    /// The step id a `steps.<id>…` path reads, or the variable a `vars.<name>…` path reads.
    public var firstMember: String? {
        if case .member(let m)? = segments.first { return m }
        return nil
    }

    /// The value at this path in `context`, or nil when any segment is missing.
    public func resolve(in context: JSONObject) -> JSON? {
        guard var value = context[root] else { return nil }
        for s in segments {
            guard let next = Self.step(value, s) else { return nil }
            value = next
        }
        return value
    }

    static func step(_ value: JSON, _ segment: Segment) -> JSON? {
        switch (segment, value) {
        case (.member(let m), .object(let o)): return o[m]
        case (.index(let n), .array(let a)):
            let i = n < 0 ? a.count + n : n
            return a.indices.contains(i) ? a[i] : nil
        // `.0` on an array and `["0"]`-like members are not supported: one spelling per thing.
        default: return nil
        }
    }
}

/// A syntax error in a template or path.
public struct ExpressionError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A string with `{{ path }}` placeholders.
///
/// Rendering replaces each placeholder with the value at its path: strings as they are, other values as compact
/// JSON, a missing value as nothing. A template that is exactly one placeholder evaluates to the value itself
/// (a number stays a number, an object an object, a missing value `null`). There is no code: only paths.
public struct Template: Sendable, Equatable {
    public enum Part: Sendable, Equatable {
        case literal(String)
        case path(Path)
    }
    public let parts: [Part]

    public init(parsing source: String) throws(ExpressionError) {
        var parts: [Part] = []
        var rest = source[...]
        while let open = rest.firstRange(of: "{{") {
            guard let close = rest[open.upperBound...].firstRange(of: "}}") else {
                throw ExpressionError("unclosed \"{{\" in \"\(source)\"")
            }
            if open.lowerBound > rest.startIndex { parts.append(.literal(String(rest[..<open.lowerBound]))) }
            let inner = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: " ")
            parts.append(.path(try Path(parsing: inner)))
            rest = rest[close.upperBound...]
        }
        if !rest.isEmpty { parts.append(.literal(String(rest))) }
        self.parts = parts
    }

    public var paths: [Path] {
        parts.compactMap { if case .path(let p) = $0 { return p } else { return nil } }
    }

    /// The template's value: the value itself for a lone placeholder, else the rendered string.
    public func evaluate(_ context: JSONObject) -> JSON {
        if parts.count == 1, case .path(let p) = parts[0] { return p.resolve(in: context) ?? .null }
        return .string(render(context))
    }

    /// The template rendered as a string.
    public func render(_ context: JSONObject) -> String {
        var out = ""
        for part in parts {
            switch part {
            case .literal(let s): out += s
            case .path(let p):
                switch p.resolve(in: context) {
                case nil, .null?: break
                case .string(let s)?: out += s
                case let v?: out += v.text
                }
            }
        }
        return out
    }
}

extension Substring {
    func trimmingCharacters(in set: Character) -> String {
        var s = self
        while s.first == set { s.removeFirst() }
        while s.last == set { s.removeLast() }
        return String(s)
    }
}

/// A JSON value whose strings are templates: evaluated member by member (object keys are literal).
public indirect enum ValueTemplate: Sendable, Equatable {
    case constant(JSON)
    case template(Template)
    case array([ValueTemplate])
    case object([(String, ValueTemplate)])

    public static func == (a: ValueTemplate, b: ValueTemplate) -> Bool {
        switch (a, b) {
        case (.constant(let x), .constant(let y)): return x == y
        case (.template(let x), .template(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// Compiles `json`; `pointer` names where it is, for errors.
    public init(_ json: JSON, at pointer: String) throws(ConfigError) {
        switch json {
        case .string(let s):
            do {
                let t = try Template(parsing: s)
                self = t.paths.isEmpty ? .constant(json) : .template(t)
            } catch { throw ConfigError(pointer, error.message) }
        case .array(let a):
            var items: [ValueTemplate] = []
            for (i, v) in a.enumerated() { items.append(try ValueTemplate(v, at: pointer + "/\(i)")) }
            self = .array(items)
        case .object(let o):
            var members: [(String, ValueTemplate)] = []
            for m in o { members.append((m.key, try ValueTemplate(m.value, at: pointer + "/" + escapePointer(m.key)))) }
            self = .object(members)
        default:
            self = .constant(json)
        }
    }

    public var paths: [Path] {
        switch self {
        case .constant: return []
        case .template(let t): return t.paths
        case .array(let a): return a.flatMap(\.paths)
        case .object(let o): return o.flatMap(\.1.paths)
        }
    }

    public func evaluate(_ context: JSONObject) -> JSON {
        switch self {
        case .constant(let v): return v
        case .template(let t): return t.evaluate(context)
        case .array(let a): return .array(a.map { $0.evaluate(context) })
        case .object(let o): return .object(JSONObject(o.map { JSONMember($0.0, $0.1.evaluate(context)) }))
        }
    }
}

/// A JSON pointer reference token for `key` (RFC 6901: `~` → `~0`, `/` → `~1`).
public func escapePointer(_ key: String) -> String {
    var out = ""
    for c in key {
        switch c {
        case "~": out += "~0"
        case "/": out += "~1"
        default: out.append(c)
        }
    }
    return out
}
