import MCPGJSON

/// Checks a YAML tree against a `SchemaNode`, collecting every problem, and returns the config as JSON with
/// defaults filled in (for the parts that are valid).
struct SchemaValidator {
    /// The config path shown in diagnostics.
    let file: String
    /// The absolute directory relative paths resolve against.
    let directory: String
    var diagnostics: [ConfigDiagnostic] = []

    init(file: String, directory: String) {
        self.file = file
        self.directory = directory
    }

    private mutating func report(_ location: SourceLocation, _ message: String) {
        diagnostics.append(ConfigDiagnostic(location, message))
    }

    /// Validates `node`; returns its normalised JSON, or nil where it is invalid.
    ///
    /// - Parameters:
    ///   - path: dotted path for messages (`server.http`, `identity[0]`); empty for the root.
    ///   - name: the key or noun the value belongs to, for messages (`page_size`).
    ///   - owner: where a missing required key is reported: the key that holds this mapping, or the node.
    mutating func check(_ node: YAMLNode, _ schema: SchemaNode, path: String, name: String, owner: SourceLocation)
        -> JSON?
    {
        switch schema.kind {
        case .string(let format):
            guard let text = string(node, expected: "a string") else { return nil }
            let noun: String
            switch format {
            case .path(.existingFile), .path(.privateFile): noun = "file"
            case .path(.existingDirectory): noun = "directory"
            case .path(.any): noun = "path"
            default: noun = "\(name) name"
            }
            if let problem = format.problem(with: text, noun: noun, directory: directory) {
                report(node.location, problem)
                return nil
            }
            return .string(text)

        case .integer(let minimum, let maximum):
            guard let value = integer(node) else { return nil }
            guard value >= minimum && value <= maximum else {
                report(node.location, "\(name) must be from \(minimum) to \(maximum), found \(value)")
                return nil
            }
            return .int(value)

        case .version(let version):
            guard let value = integer(node) else { return nil }
            guard value == version else {
                report(
                    node.location,
                    "unsupported config format version \(value); this mcpg reads \"\(name): \(version)\"")
                return nil
            }
            return .int(value)

        case .boolean:
            guard case .bool(let b) = node.scalar?.value else {
                typeMismatch(node, expected: "a boolean (true or false)")
                return nil
            }
            return .bool(b)

        case .enumeration(let values):
            guard let text = string(node, expected: "a string") else { return nil }
            guard values.contains(text) else {
                report(
                    node.location,
                    "invalid \(name) \(quoted(text)); expected one of: \(values.joined(separator: ", "))"
                        + Suggestion.hint(for: text, in: values))
                return nil
            }
            return .string(text)

        case .object(let fields):
            guard let pairs = mapping(node) else { return nil }
            return object(pairs, fields: fields, path: path, owner: owner)

        case .array(let itemSchema, let minItems):
            guard let items = node.items else {
                typeMismatch(node, expected: "a sequence")
                return nil
            }
            if items.count < minItems {
                report(node.location, "\(name) needs at least \(minItems) \(minItems == 1 ? "entry" : "entries")")
            }
            var out: [JSON] = []
            var valid = items.count >= minItems
            for (i, item) in items.enumerated() {
                let itemPath = "\(path)[\(i)]"
                if let value = check(item, itemSchema, path: itemPath, name: name, owner: item.location) {
                    out.append(value)
                } else {
                    valid = false
                }
            }
            return valid ? .array(out) : nil

        case .map(let keyFormat, let valueSchema, let noun):
            guard let pairs = mapping(node) else { return nil }
            var out: [JSONMember] = []
            var valid = true
            var seen: [String: SourceLocation] = [:]
            for pair in pairs {
                guard let key = key(pair) else {
                    valid = false
                    continue
                }
                if let first = seen[key] {
                    report(pair.key.location, "duplicate \(noun) \(quoted(key)) (first defined at \(first.lineColumn))")
                    valid = false
                    continue
                }
                seen[key] = pair.key.location
                if let problem = keyFormat.problem(with: key, noun: "\(noun) name", directory: directory) {
                    report(pair.key.location, problem)
                    valid = false
                }
                let child = "\(path).\(key)"
                if let value = check(pair.value, valueSchema, path: child, name: noun, owner: pair.key.location) {
                    out.append(JSONMember(key, value))
                } else {
                    valid = false
                }
            }
            return valid ? .object(JSONObject(out)) : nil

        case .pluginConfig:
            if node.isNull { return .object([:]) }
            guard node.pairs != nil else {
                typeMismatch(node, expected: "a mapping")
                return nil
            }
            let before = diagnostics.count
            let value = node.json(diagnostics: &diagnostics)
            return diagnostics.count == before ? value : nil
        }
    }

    /// Checks the pairs of an object; fills in defaults for absent optional fields.
    private mutating func object(_ pairs: [YAMLPair], fields: [SchemaField], path: String, owner: SourceLocation)
        -> JSON?
    {
        var out = JSONObject()
        var valid = true
        var seen: [String: SourceLocation] = [:]
        let names = fields.map(\.name)
        for pair in pairs {
            guard let key = key(pair) else {
                valid = false
                continue
            }
            if let first = seen[key] {
                report(pair.key.location, "duplicate key \(quoted(key)) (first defined at \(first.lineColumn))")
                valid = false
                continue
            }
            seen[key] = pair.key.location
            guard let field = fields.first(where: { $0.name == key }) else {
                report(pair.key.location, "unknown key \(quoted(key))" + Suggestion.hint(for: key, in: names))
                valid = false
                continue
            }
            if pair.value.isNull {
                if field.required {
                    report(pair.key.location, "missing value for required key \(quoted(key))")
                    valid = false
                }
                continue
            }
            let child = path.isEmpty ? key : "\(path).\(key)"
            if let value = check(pair.value, field.node, path: child, name: key, owner: pair.key.location) {
                out[key] = value
            } else {
                valid = false
            }
        }
        for field in fields where out[field.name] == nil && seen[field.name] == nil {
            if field.required {
                let place = path.isEmpty ? "" : " in \(quoted(path))"
                report(owner, "missing required key \(quoted(field.name))\(place)")
                valid = false
            }
        }
        for field in fields where out[field.name] == nil {
            if let value = Self.defaultValue(of: field) { out[field.name] = value }
        }
        return valid ? .object(out) : nil
    }

    /// A field's default; for an object field whose default is `{}`, the object with its own defaults.
    static func defaultValue(of field: SchemaField) -> JSON? {
        guard let value = field.defaultValue else { return nil }
        guard case .object(let fields) = field.node.kind else { return value }
        var out = JSONObject()
        for f in fields {
            if let v = defaultValue(of: f) { out[f.name] = v }
        }
        return .object(out)
    }

    private mutating func key(_ pair: YAMLPair) -> String? {
        guard let scalar = pair.key.scalar else {
            report(pair.key.location, "a key must be a scalar, found \(pair.key.typeDescription)")
            return nil
        }
        return scalar.text
    }

    private mutating func mapping(_ node: YAMLNode) -> [YAMLPair]? {
        guard let pairs = node.pairs else {
            typeMismatch(node, expected: "a mapping")
            return nil
        }
        return pairs
    }

    private mutating func string(_ node: YAMLNode, expected: String) -> String? {
        if case .string(let s) = node.scalar?.value { return s }
        typeMismatch(node, expected: expected)
        return nil
    }

    private mutating func integer(_ node: YAMLNode) -> Int64? {
        if case .int(let i) = node.scalar?.value { return i }
        typeMismatch(node, expected: "an integer")
        return nil
    }

    private mutating func typeMismatch(_ node: YAMLNode, expected: String) {
        var message = "expected \(expected), found \(node.typeDescription)"
        if expected == "a string", let scalar = node.scalar, case .bool = scalar.value {
            message += " (YAML reads \(scalar.text) as a boolean; write \(quoted(scalar.text)) for the text)"
        }
        report(node.location, message)
    }
}
