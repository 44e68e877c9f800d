import MCPGJSON

/// A YAML node with the position it starts at, as parsed from the config file.
///
/// Scalars keep both their source text and the value YAML 1.1 resolves them to, so a key can be named as
/// written and a value checked by type. Mappings keep every pair in file order, duplicates included: the
/// schema validator reports duplicates with both positions.
public struct YAMLNode: Sendable, Equatable {
    /// What the node holds.
    public enum Content: Sendable, Equatable {
        case scalar(YAMLScalar)
        case sequence([YAMLNode])
        case mapping([YAMLPair])
    }

    /// The node's content.
    public var content: Content
    /// Where the node starts: a scalar's first character (or its opening quote), a flow collection's bracket,
    /// a block collection's first entry.
    public var location: SourceLocation

    /// Creates a node.
    public init(_ content: Content, at location: SourceLocation) {
        self.content = content
        self.location = location
    }

    /// The scalar, if this node is one.
    public var scalar: YAMLScalar? {
        if case .scalar(let s) = content { return s }
        return nil
    }

    /// The pairs, if this node is a mapping.
    public var pairs: [YAMLPair]? {
        if case .mapping(let p) = content { return p }
        return nil
    }

    /// The items, if this node is a sequence.
    public var items: [YAMLNode]? {
        if case .sequence(let i) = content { return i }
        return nil
    }

    /// True for a null scalar (`~`, `null`, or nothing at all).
    public var isNull: Bool { scalar?.value == .null }

    /// The first pair whose key is the scalar `key`, if this node is a mapping.
    public func pair(forKey key: String) -> YAMLPair? {
        pairs?.first { $0.key.scalar?.text == key }
    }

    /// The value of the first pair whose key is `key`, if this node is a mapping.
    public subscript(key: String) -> YAMLNode? { pair(forKey: key)?.value }

    /// The node a JSON pointer (RFC 6901: `/a/0/b`, `~1` for `/`, `~0` for `~`) names below this one, if any.
    public func node(atPointer pointer: String) -> YAMLNode? {
        guard pointer.hasPrefix("/") else { return pointer.isEmpty ? self : nil }
        var node = self
        for raw in pointer.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            var token = ""
            var tilde = false
            for c in raw {
                if tilde {
                    token.append(c == "1" ? "/" : c == "0" ? "~" : c)
                    tilde = false
                } else if c == "~" {
                    tilde = true
                } else {
                    token.append(c)
                }
            }
            if let items = node.items {
                guard let i = Int(token), i >= 0, i < items.count else { return nil }
                node = items[i]
            } else if let next = node[token] {
                node = next
            } else {
                return nil
            }
        }
        return node
    }

    /// How messages name the node's type: "a mapping", "a sequence", "a string", "an integer", "a number",
    /// "a boolean" or "null".
    public var typeDescription: String {
        switch content {
        case .mapping: return "a mapping"
        case .sequence: return "a sequence"
        case .scalar(let s):
            switch s.value {
            case .null: return "null"
            case .bool: return "a boolean"
            case .int: return "an integer"
            case .float: return "a number"
            case .string: return "a string"
            }
        }
    }
}

/// One key and its value in a YAML mapping.
public struct YAMLPair: Sendable, Equatable {
    /// The key node (for config files, a scalar).
    public var key: YAMLNode
    /// The value node.
    public var value: YAMLNode

    /// Creates a pair.
    public init(key: YAMLNode, value: YAMLNode) {
        self.key = key
        self.value = value
    }
}

/// A YAML scalar: its text as written (without quotes or escapes) and the value it resolves to.
public struct YAMLScalar: Sendable, Equatable {
    /// The value of a scalar under YAML 1.1 rules; quoted scalars are always strings.
    public enum Value: Sendable, Equatable {
        case null
        case bool(Bool)
        case int(Int64)
        case float(Double)
        case string(String)
    }

    /// The scalar's text after unquoting and unescaping.
    public var text: String
    /// The resolved value.
    public var value: Value

    /// Creates a scalar.
    public init(text: String, value: Value) {
        self.text = text
        self.value = value
    }
}

extension YAMLNode {
    /// Converts this node to JSON, appending a diagnostic for every part JSON cannot hold: a duplicate key, a
    /// key that is not a scalar, an infinite or NaN number. Problem parts are left out of the result.
    ///
    /// - Parameters:
    ///   - context: prefix for messages, e.g. `plugin "apikey" config: `.
    ///   - diagnostics: receives the problems.
    public func json(context: String = "", diagnostics: inout [ConfigDiagnostic]) -> JSON {
        switch content {
        case .scalar(let s):
            switch s.value {
            case .null: return .null
            case .bool(let b): return .bool(b)
            case .int(let i): return .int(i)
            case .string(let t): return .string(t)
            case .float(let d):
                if d.isFinite { return .double(d) }
                diagnostics.append(ConfigDiagnostic(location, "\(context)\(s.text) cannot be represented in JSON"))
                return .null
            }
        case .sequence(let items):
            return .array(items.map { $0.json(context: context, diagnostics: &diagnostics) })
        case .mapping(let pairs):
            var members: [JSONMember] = []
            var seen: [String: SourceLocation] = [:]
            for pair in pairs {
                guard let key = pair.key.scalar?.text else {
                    diagnostics.append(
                        ConfigDiagnostic(
                            pair.key.location, "\(context)a key must be a scalar, found \(pair.key.typeDescription)"))
                    continue
                }
                if let first = seen[key] {
                    diagnostics.append(
                        ConfigDiagnostic(
                            pair.key.location,
                            "\(context)duplicate key \(quoted(key)) (first defined at \(first.lineColumn))"))
                    continue
                }
                seen[key] = pair.key.location
                members.append(JSONMember(key, pair.value.json(context: context, diagnostics: &diagnostics)))
            }
            return .object(JSONObject(members))
        }
    }
}

/// A string as it appears in messages: in double quotes, with quotes, backslashes and control characters
/// escaped so one diagnostic stays one line.
func quoted(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7f {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}
