import MCPGJSON

/// One node of the declarative config schema: what a value must look like, and how to document it.
///
/// The same tree drives validation (`SchemaValidator`), `ConfigSchema.jsonSchema` and
/// `ConfigSchema.markdownReference()`.
public struct SchemaNode: Sendable {
    /// The shape a value must have.
    public indirect enum Kind: Sendable {
        /// A string in the given format.
        case string(StringFormat)
        /// An integer in `minimum...maximum`.
        case integer(minimum: Int64, maximum: Int64)
        /// Exactly this integer (a format version).
        case version(Int64)
        /// One of these strings.
        case enumeration([String])
        /// `true` or `false`.
        case boolean
        /// A mapping with these keys and no others.
        case object([SchemaField])
        /// A sequence of `items`, at least `minItems` long.
        case array(SchemaNode, minItems: Int)
        /// A mapping from free keys (in `keyFormat`) to values; `noun` names one entry in messages ("backend").
        case map(keyFormat: StringFormat, value: SchemaNode, noun: String)
        /// A plugin's `config` block: any mapping, validated later against the schema the plugin publishes.
        case pluginConfig
    }

    /// The value's shape.
    public var kind: Kind
    /// What the value means; for objects used under `$defs`, the definition's description.
    public var description: String
    /// If set, JSON Schema emits this node once under `$defs/<name>` and refers to it with `$ref`.
    public var definitionName: String?

    /// Creates a node.
    public init(_ kind: Kind, _ description: String = "", definitionName: String? = nil) {
        self.kind = kind
        self.description = description
        self.definitionName = definitionName
    }

    /// The fields, if this is an object.
    public var fields: [SchemaField]? {
        if case .object(let f) = kind { return f }
        return nil
    }

    /// The node at a dotted path of object field names below this one (`"server.http.listen"`).
    public func node(at path: String) -> SchemaNode? {
        var node = self
        for name in path.split(separator: ".") {
            guard let field = node.fields?.first(where: { $0.name == name }) else { return nil }
            node = field.node
        }
        return node
    }

    /// The field at a dotted path below this node.
    public func field(at path: String) -> SchemaField? {
        let parts = path.split(separator: ".")
        guard let last = parts.last,
            let parent = parts.count == 1 ? self : node(at: parts.dropLast().joined(separator: "."))
        else { return nil }
        return parent.fields?.first { $0.name == last }
    }
}

/// One key of an object in the config schema.
public struct SchemaField: Sendable {
    /// The key as written in YAML.
    public var name: String
    /// The value's schema.
    public var node: SchemaNode
    /// Whether the key must be present (with a non-null value).
    public var required: Bool
    /// The value used when the key is absent or null. For an object, `{}` means "absent is the same as an
    /// empty mapping", so the object's own defaults apply; no default means the object is simply absent.
    public var defaultValue: JSON?

    /// Creates a field.
    public init(_ name: String, _ node: SchemaNode, required: Bool = false, default defaultValue: JSON? = nil) {
        self.name = name
        self.node = node
        self.required = required
        self.defaultValue = defaultValue
    }

    /// The field's description (its node's).
    public var description: String { node.description }
}

/// The formats a config string can have. Each one checks the value, documents itself, and says what
/// JSON Schema `pattern` (if any) expresses it.
public enum StringFormat: Sendable, Equatable {
    /// Any string.
    case text
    /// A plugin or backend name: `[a-z0-9_-]+`.
    case name
    /// `host:port`; an IPv6 host in brackets (`[::1]:8080`); port 0 picks a free port.
    case listenAddress
    /// An absolute URL path: starts with `/`, no query, fragment or whitespace.
    case urlPath
    /// A web origin: `http(s)://host[:port]`, no path.
    case origin
    /// An absolute `http(s)://host[:port][/path]` URL without query or fragment.
    case httpURL
    /// A file system path, resolved against the config file's directory.
    case path(PathRequirement)
    /// A minisign public key (`RW…`) or the path of a `.pub` file holding one.
    case trustedKey
    /// Ledger durability: `sync`, or `batch(<ms>ms)` with 1 to 1000 ms.
    case durability

    /// What a path must point to when the config is loaded.
    public enum PathRequirement: Sendable, Equatable {
        /// Nothing; the parent directory is created when needed.
        case any
        /// An existing regular file.
        case existingFile
        /// An existing regular file that holds a secret: other users may not read, write or run it (the group may).
        case privateFile
        /// An existing directory.
        case existingDirectory
    }
}
