import Foundation

/// Where a piece of an option's value came from, so errors in a matcher point into the model file.
struct SourceMap: Sendable {
    /// (offset in the value's UTF-8 bytes, line, column of that byte), ascending by offset.
    var pieces: [(offset: Int, line: Int, column: Int)]

    func position(_ offset: Int) -> (line: Int, column: Int) {
        var best = pieces.first ?? (0, 1, 1)
        for p in pieces where p.offset <= offset { best = p }
        return (best.line, best.column + (offset - best.offset))
    }
}

/// One `key = value` of a model section.
struct ModelOption: Sendable {
    var value: String
    var map: SourceMap
    var line: Int
    var keyColumn: Int
}

/// How the policy effect combines the effects of matched rules.
public enum PolicyEffect: Sendable, Equatable {
    /// `some(where (p.eft == allow))`
    case allowOverride
    /// `!some(where (p.eft == deny))`
    case denyOverride
    /// `some(where (p.eft == allow)) && !some(where (p.eft == deny))`
    case allowAndDeny
    /// `priority(p.eft) || deny`: the first matched rule (in priority order) decides.
    case priority
    /// `subjectPriority(p.eft) || deny`: like priority, rules ordered by how specific their subject is.
    case subjectPriority
}

/// A parsed model: the request, policy and role definitions, effects and matcher sources.
public struct CasbinModel: Sendable {
    /// Request definitions by key (`r`, `r2`, …): their token names (`sub`, `obj`, …).
    public internal(set) var requests: [String: [String]] = [:]
    /// Policy definitions by key (`p`, `p2`, …).
    public internal(set) var policies: [String: [String]] = [:]
    /// Role definitions by key (`g`, `g2`, …): how many fields a link has (2, or 3 with a domain).
    public internal(set) var roles: [String: Int] = [:]
    public internal(set) var effects: [String: PolicyEffect] = [:]
    var matchers: [String: ModelOption] = [:]
    var policyLines: [String: Int] = [:]
    /// The file name used in errors.
    public let file: String

    static let sections: [String: String] = [
        "request_definition": "r", "policy_definition": "p", "role_definition": "g", "policy_effect": "e",
        "matchers": "m",
    ]

    /// Parses model text (INI-like: `[section]`, `key = value`, `#`/`;` comments, `\` continuations).
    /// - Throws: `CasbinLoadError` with the line and column of the first problem.
    public init(text: String, file: String = "model") throws(CasbinLoadError) {
        self.file = file
        var options: [String: [String: ModelOption]] = [:]
        var section = ""
        var buffer: [(text: String, line: Int, column: Int)] = []

        func fail(_ line: Int, _ column: Int, _ message: String) -> CasbinLoadError {
            CasbinLoadError(file: file, line: line, column: column, message: message)
        }
        func flush() throws(CasbinLoadError) {
            defer { buffer.removeAll() }
            guard !buffer.isEmpty else { return }
            var joined = ""
            var pieces: [(offset: Int, line: Int, column: Int)] = []
            for b in buffer {
                pieces.append((joined.utf8.count, b.line, b.column))
                joined += b.text
            }
            let first = buffer[0]
            guard let eq = joined.utf8.firstIndex(of: UInt8(ascii: "=")) else {
                throw fail(first.line, first.column, "expected `key = value`")
            }
            guard !section.isEmpty, let short = CasbinModel.sections[section] else {
                throw fail(first.line, first.column, "option outside of a known section")
            }
            let key = String(joined[..<eq]).trimmingWhitespace()
            let rawValue = String(joined[joined.utf8.index(after: eq)...])
            let lead = rawValue.utf8.prefix { $0 == 0x20 || $0 == 0x09 }.count
            let value = rawValue.trimmingWhitespace()
            let offsetShift = joined.utf8.distance(from: joined.startIndex, to: eq) + 1 + lead
            let map = SourceMap(pieces: pieces.map { ($0.offset - offsetShift, $0.line, $0.column) })
            guard !key.isEmpty else { throw fail(first.line, first.column, "missing option name before `=`") }
            options[short, default: [:]][key] = ModelOption(value: value, map: map, line: first.line,
                                                           keyColumn: first.column)
        }

        var lineNo = 0
        // Split on bytes: as a Character, "\r\n" is not "\n".
        for rawLine in text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false) {
            lineNo += 1
            var line = String(Substring(rawLine))
            if line.utf8.last == 0x0D { line = String(decoding: line.utf8.dropLast(), as: UTF8.self) }
            let lead = line.utf8.prefix { $0 == 0x20 || $0 == 0x09 }.count
            let trimmed = line.trimmingWhitespace()
            let column = lead + 1
            if trimmed.isEmpty || trimmed.hasPrefix("#") || trimmed.hasPrefix(";") {
                try flush()
                continue
            }
            if trimmed.hasPrefix("[") && trimmed.hasSuffix("]") {
                try flush()
                section = String(trimmed.dropFirst().dropLast())
                guard CasbinModel.sections[section] != nil else {
                    throw fail(lineNo, column, "unknown section [\(section)]")
                }
                continue
            }
            if trimmed.hasSuffix("\\") {
                buffer.append((String(trimmed.dropLast()).trimmingWhitespace() + " ", lineNo, column))
            } else {
                buffer.append((trimmed, lineNo, column))
                try flush()
            }
        }
        try flush()

        func keys(_ sec: String) -> [(String, ModelOption)] {
            var out: [(String, ModelOption)] = []
            var i = 1
            while let opt = options[sec]?[sec + (i == 1 ? "" : String(i))], !opt.value.isEmpty {
                out.append((sec + (i == 1 ? "" : String(i)), opt))
                i += 1
            }
            return out
        }
        func tokens(_ key: String, _ opt: ModelOption) throws(CasbinLoadError) -> [String] {
            var result: [String] = []
            var offset = 0
            for part in opt.value.split(separator: ",", omittingEmptySubsequences: false) {
                let name = String(part).trimmingWhitespace()
                let lead = part.utf8.prefix { $0 == 0x20 || $0 == 0x09 }.count
                guard name.isIdentifier else {
                    let pos = opt.map.position(offset + lead)
                    throw fail(pos.line, pos.column, "`\(key)` field must be a name, got \"\(name)\"")
                }
                guard !result.contains(name) else {
                    let pos = opt.map.position(offset + lead)
                    throw fail(pos.line, pos.column, "`\(key)` has field \"\(name)\" twice")
                }
                result.append(name)
                offset += part.utf8.count + 1
            }
            return result
        }

        for (key, opt) in keys("r") { requests[key] = try tokens(key, opt) }
        for (key, opt) in keys("p") {
            policies[key] = try tokens(key, opt)
            policyLines[key] = opt.line
        }
        for (key, opt) in keys("g") {
            if opt.value.contains("(") {
                let pos = opt.map.position(0)
                throw fail(pos.line, pos.column, "role definitions with link conditions are not supported")
            }
            let count = opt.value.utf8.filter { $0 == UInt8(ascii: "_") }.count
            guard count == 2 || count == 3 else {
                let pos = opt.map.position(0)
                throw fail(pos.line, pos.column, "role definition `\(key)` must be `_, _` or `_, _, _`")
            }
            roles[key] = count
        }
        for (key, opt) in keys("e") {
            var text = opt.value.removingComment().filter { !$0.isWhitespace }.replacingDots()
            for k in 2...9 { text = text.replacingOccurrences(of: "p\(k)_eft", with: "p_eft") }
            let effect: PolicyEffect
            switch text {
            case "some(where(p_eft==allow))": effect = .allowOverride
            case "!some(where(p_eft==deny))": effect = .denyOverride
            case "some(where(p_eft==allow))&&!some(where(p_eft==deny))": effect = .allowAndDeny
            case "priority(p_eft)||deny": effect = .priority
            case "subjectPriority(p_eft)||deny": effect = .subjectPriority
            default:
                let pos = opt.map.position(0)
                throw fail(pos.line, pos.column, "unsupported policy effect \"\(opt.value)\"")
            }
            effects[key] = effect
        }
        for (key, opt) in keys("m") {
            var o = opt
            o.value = opt.value.removingComment()
            matchers[key] = o
        }
        for (sec, name) in [("r", "request_definition"), ("p", "policy_definition"), ("e", "policy_effect"),
                            ("m", "matchers")] where options[sec]?[sec] == nil || options[sec]?[sec]?.value == "" {
            throw fail(lineNo, 1, "missing `\(sec) = …` in [\(name)]")
        }
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let u = utf8
        guard let s = u.firstIndex(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D && $0 != 0x0A }) else { return "" }
        guard let e = u.lastIndex(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D && $0 != 0x0A }) else { return "" }
        return String(self[s...e])
    }

    /// Cuts a `#` comment off (a matcher or effect cannot contain `#`).
    func removingComment() -> String {
        guard let i = firstIndex(of: "#") else { return self }
        return String(self[..<i]).trimmingWhitespace()
    }

    /// `p.eft` → `p_eft`, so both spellings of a field compare alike.
    func replacingDots() -> String {
        String(map { $0 == "." ? "_" : $0 })
    }

    var isIdentifier: Bool {
        guard let f = utf8.first, f == UInt8(ascii: "_") || (f | 0x20 >= 0x61 && f | 0x20 <= 0x7A) else { return false }
        return utf8.allSatisfy { $0 == UInt8(ascii: "_") || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) }
    }
}
