import MCPGJSON

extension ConfigSchema {
    /// The config reference in Markdown, as `mcpg config reference` prints it and `docs/config.md` holds.
    public static func markdownReference() -> String {
        var out = """
            # mcpg configuration reference

            <!-- Generated from the schema in Kernel/Config/ConfigSchema.swift by `mcpg config reference`.
                 Do not edit by hand: a test fails when this file and the schema differ. -->

            mcpg reads one YAML file: `mcpg serve --config FILE`. `mcpg config validate FILE` checks it and prints
            every problem as `FILE:LINE:COL: error: MESSAGE`; `mcpg config schema` prints its JSON Schema
            (draft 2020-12) for editors.

            Rules that hold for every key:

            - Unknown keys are errors (with a suggestion when a known key is close), so a typo never goes unnoticed.
              Duplicate keys are errors too.
            - A key with an empty value (`key:` or `key: ~`) counts as absent: its default applies.
            - Relative paths resolve against the directory of the config file, not the working directory.
              `~` is not expanded.
            - Values are YAML 1.1: unquoted `yes`, `no`, `on`, `off`, `true` and `false` are booleans, `1:30` is
              a number; quote a string that could read as something else. Quoted values are always strings.
              Anchors, aliases and more than one document per file are refused.
            - Each plugin's `config` block is checked against the JSON Schema the plugin publishes, when the
              plugin is loaded; its errors carry line and column too.

            ## Example

            ```yaml

            """
        out += example
        out += "```\n\n## Keys\n"
        render(fields: root.fields ?? [], prefix: "", into: &out)
        out += "\n## Plugin references\n\n"
        out += pluginRef.description + " Every entry of `identity`, `policy`, `transforms`, `sinks` and every "
        out += "value of `backends` has this shape:\n"
        render(fields: pluginRef.fields ?? [], prefix: "", into: &out)
        out += "\n## Backend entries\n\n"
        out += backendRef.description + " Besides `plugin` and `config`, a value of `backends` takes:\n"
        let own = Set((pluginRef.fields ?? []).map(\.name))
        render(fields: (backendRef.fields ?? []).filter { !own.contains($0.name) }, prefix: "", into: &out)
        return out
    }

    private static func render(fields: [SchemaField], prefix: String, into out: inout String) {
        for field in fields {
            let path = prefix + field.name
            out += "\n### `\(path)`\n\n"
            var facts = [typeLabel(field.node)]
            if field.required {
                facts.append("required")
            } else if let value = field.defaultValue {
                if case .object = field.node.kind {
                    facts.append("optional; when absent, its keys take their defaults")
                } else {
                    facts.append("default `\(yaml(value))`")
                }
            } else {
                facts.append("optional")
            }
            out += "*" + facts.joined(separator: "; ") + "*\n\n"
            out += field.description + "\n"
            if case .object(let children) = field.node.kind, field.node.definitionName == nil {
                render(fields: children, prefix: path + ".", into: &out)
            }
        }
    }

    /// A short type description, e.g. "integer, 1 to 10000".
    static func typeLabel(_ node: SchemaNode) -> String {
        if node.definitionName == "pluginRef" { return "plugin reference" }
        if node.definitionName == "backendRef" { return "backend entry" }
        switch node.kind {
        case .string(let format):
            switch format {
            case .text: return "string"
            case .name: return "name (`[a-z0-9_-]+`)"
            case .listenAddress: return "address `HOST:PORT`"
            case .urlPath: return "URL path"
            case .origin: return "origin `scheme://host[:port]`"
            case .httpURL: return "URL `http(s)://host[:port]/path`"
            case .path(.any): return "path"
            case .path(.existingFile): return "path of an existing file"
            case .path(.privateFile): return "path of an existing file other users cannot read"
            case .path(.existingDirectory): return "path of an existing directory"
            case .trustedKey: return "minisign public key, or path of a `.pub` file"
            case .durability: return "`sync` or `batch(<ms>ms)`"
            }
        case .integer(let minimum, let maximum): return "integer, \(minimum) to \(maximum)"
        case .version(let version): return "integer, `\(version)`"
        case .enumeration(let values): return "one of " + values.map { "`\($0)`" }.joined(separator: ", ")
        case .boolean: return "boolean"
        case .object: return "mapping"
        case .array(let items, let minItems):
            return "list of \(pluralLabel(items))" + (minItems > 0 ? ", at least \(minItems)" : "")
        case .map(_, let value, let noun): return "mapping of \(noun) name to \(typeLabel(value))"
        case .pluginConfig: return "mapping, as the plugin defines"
        }
    }

    /// The label of a list's items, in the plural.
    static func pluralLabel(_ node: SchemaNode) -> String {
        if node.definitionName == "pluginRef" { return "plugin references" }
        switch node.kind {
        case .string(.origin): return "origins (`scheme://host[:port]`)"
        case .string(.trustedKey): return "minisign public keys or `.pub` file paths"
        case .string(.text): return "strings"
        default: return "values (\(typeLabel(node)))"
        }
    }

    /// A JSON default written the way it would be in the YAML file.
    private static func yaml(_ value: JSON) -> String {
        switch value {
        case .string(let s): return s
        case .array(let items): return "[" + items.map(yaml).joined(separator: ", ") + "]"
        case .object(let o) where o.isEmpty: return "{}"
        default: return value.text
        }
    }
}
