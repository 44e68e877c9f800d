import CSodium
import MCPGFrames
import MCPGJSON

/// One tool the gateway exposes, with the backend that serves it.
public struct CatalogTool: Sendable {
    /// The name clients see (`<prefix>__<name>` for a prefixed backend, always `^[a-zA-Z0-9_-]{1,64}$`).
    public var name: String
    public var backend: String
    /// The name the backend knows the tool by (what `call_tool` is given).
    public var upstreamName: String
    /// The MCP `Tool` object as the backend described it, relayed untouched except for `name` (TOOL-2).
    public var tool: JSON
}

/// One prompt, resource or resource template the gateway exposes, with the backend that serves it.
public struct CatalogEntry: Sendable {
    /// The prompt's exposed name, the resource's URI or the template's URI template.
    public var key: String
    public var backend: String
    /// The prompt's name at the backend (URIs and templates are never rewritten, so equal to `key`).
    public var upstreamKey: String
    /// The MCP object as the backend described it, relayed untouched except for a prompt's `name`.
    public var item: JSON
}

/// What one backend serves, as its `list_*` ops answered.
public struct BackendListing: Sendable {
    public var name: String
    /// Exposed tool and prompt names are `<prefix>__<name>` when set.
    public var prefix: String?
    public var tools: [JSON]
    public var prompts: [JSON]
    public var resources: [JSON]
    public var templates: [JSON]

    public init(name: String, prefix: String? = nil, tools: [JSON], prompts: [JSON] = [], resources: [JSON] = [],
                templates: [JSON] = []) {
        self.name = name
        self.prefix = prefix
        self.tools = tools
        self.prompts = prompts
        self.resources = resources
        self.templates = templates
    }
}

/// Which tool, prompt and resource belongs to which backend. Immutable; a refresh builds a new one with a new
/// generation.
public struct Catalog: Sendable {
    public let tools: [CatalogTool]
    public let prompts: [CatalogEntry]
    public let resources: [CatalogEntry]
    public let templates: [CatalogEntry]
    let index: [String: Int]
    let promptIndex: [String: Int]
    let resourceIndex: [String: Int]
    let templateMatchers: [URITemplate]
    public let generation: UInt32
    /// What was left out and why: entries without a key or input schema, and names or URIs that an earlier
    /// backend (in config order) already serves. Boot refuses a catalog with problems; a refresh logs them.
    public let problems: [CatalogProblem]

    /// An empty catalog.
    public init() { self.init(listings: []) }

    /// Builds the catalog from each backend's listings, in backend order. Never fails: an entry that cannot be
    /// served, or whose exposed name or URI an earlier backend already serves, is left out and named in
    /// `problems` (a collision is never a silent overwrite).
    public init(listings: [BackendListing], generation: UInt32 = 1) {
        var problems: [CatalogProblem] = []
        var tools: [CatalogTool] = []
        var index: [String: Int] = [:]
        var prompts: [CatalogEntry] = []
        var promptIndex: [String: Int] = [:]
        var resources: [CatalogEntry] = []
        var resourceIndex: [String: Int] = [:]
        var templates: [CatalogEntry] = []
        var templateIndex: [String: Int] = [:]
        func add(_ items: [JSON], key field: String, noun: String, backend: String, prefix: String?,
                 into list: inout [CatalogEntry], index: inout [String: Int]) {
            for item in items {
                guard let upstream = item[field]?.stringValue, !upstream.isEmpty else {
                    problems.append(CatalogProblem(backend, "backend \(backend) listed a \(noun) without a \(field)"))
                    continue
                }
                var exposed = upstream
                var relayed = item
                if let prefix, field == "name" {
                    exposed = prefix + "__" + upstream
                    relayed = item.setting("name", to: .string(exposed))
                }
                if let other = index[exposed] {
                    problems.append(CatalogProblem(
                        backend, "\(noun) \(exposed) is served by both backend \(list[other].backend) and backend \(backend)"))
                    continue
                }
                index[exposed] = list.count
                list.append(CatalogEntry(key: exposed, backend: backend, upstreamKey: upstream, item: relayed))
            }
        }
        for b in listings {
            for t in b.tools {
                guard let upstream = t["name"]?.stringValue, !upstream.isEmpty else {
                    problems.append(CatalogProblem(b.name, "backend \(b.name) listed a tool without a name"))
                    continue
                }
                guard case .object = t["inputSchema"] ?? .null else {
                    problems.append(CatalogProblem(b.name, "backend \(b.name): tool \(upstream) has no inputSchema object (TOOL-3)"))
                    continue
                }
                let name = ToolName.exposed(upstream, prefix: b.prefix)
                if let other = index[name] {
                    problems.append(CatalogProblem(
                        b.name, "tool \(name) is served by both backend \(tools[other].backend) and backend \(b.name)"))
                    continue
                }
                index[name] = tools.count
                tools.append(CatalogTool(name: name, backend: b.name, upstreamName: upstream,
                                         tool: name == upstream ? t : t.setting("name", to: .string(name))))
            }
            add(b.prompts, key: "name", noun: "prompt", backend: b.name, prefix: b.prefix, into: &prompts,
                index: &promptIndex)
            add(b.resources, key: "uri", noun: "resource", backend: b.name, prefix: nil, into: &resources,
                index: &resourceIndex)
            add(b.templates, key: "uriTemplate", noun: "resource template", backend: b.name, prefix: nil,
                into: &templates, index: &templateIndex)
        }
        self.tools = tools
        self.index = index
        self.prompts = prompts
        self.promptIndex = promptIndex
        self.resources = resources
        self.resourceIndex = resourceIndex
        self.templates = templates
        templateMatchers = templates.map { URITemplate($0.key) }
        self.generation = generation
        self.problems = problems
    }

    public func tool(named name: String) -> CatalogTool? { index[name].map { tools[$0] } }
    public func prompt(named name: String) -> CatalogEntry? { promptIndex[name].map { prompts[$0] } }

    /// The resource `uri` names: a listed resource, else the first template (in catalog order) that matches it.
    /// For a template match, `key` is the template, so policies see which family of resources is read.
    public func resource(uri: String) -> (entry: CatalogEntry, type: String)? {
        if let i = resourceIndex[uri] { return (resources[i], "resource") }
        for (i, m) in templateMatchers.enumerated() where m.matches(uri) { return (templates[i], "resource_template") }
        return nil
    }
}

/// An entry left out of the catalog: the backend that listed it and why.
public struct CatalogProblem: Sendable, CustomStringConvertible {
    public var backend: String
    public var message: String
    public init(_ backend: String, _ message: String) {
        self.backend = backend
        self.message = message
    }
    public var description: String { message }
}

/// Exposed tool names: what LLM clients accept as a function name, `^[a-zA-Z0-9_-]{1,64}$`, for every backend.
public enum ToolName {
    public static let maxLength = 64

    /// `<prefix>__<name>` (or `name`), with every character outside `[a-zA-Z0-9_-]` replaced by `_`; a name
    /// longer than 64 keeps its first 55 characters and gets `_` and 8 hex digits of its SHA-256, so distinct long
    /// names stay distinct.
    public static func exposed(_ name: String, prefix: String?) -> String {
        let raw = prefix.map { $0 + "__" + name } ?? name
        var out = Array(raw.utf8).map { c -> UInt8 in
            switch c {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
                return c
            default: return UInt8(ascii: "_")
            }
        }
        if out.count > maxLength {
            var digest = [UInt8](repeating: 0, count: 32)
            let bytes = Array(raw.utf8)
            _ = crypto_hash_sha256(&digest, bytes, UInt64(bytes.count))
            let hex = Array("0123456789abcdef".utf8)
            out = Array(out.prefix(maxLength - 9)) + [UInt8(ascii: "_")]
                + digest.prefix(4).flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 0xF)]] }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Matches URIs against an RFC 6570 URI template: `{x}` is one or more characters other than `/`, `?` and `#`;
/// `{+x}` and `{#x}` take any characters; `{/x}`, `{.x}`, `{;x}`, `{?x}` and `{&x}` take their prefix character
/// followed by anything up to the next literal.
struct URITemplate: Sendable {
    enum Part: Sendable {
        case literal([UInt8])
        /// `prefix`: the operator character the expansion starts with, if any; `anything`: may contain `/?#`.
        case variable(prefix: UInt8?, anything: Bool)
    }
    let parts: [Part]

    init(_ template: String) {
        var parts: [Part] = []
        var literal: [UInt8] = []
        var bytes = Array(template.utf8)[...]
        while let c = bytes.first {
            bytes = bytes.dropFirst()
            guard c == UInt8(ascii: "{"), let close = bytes.firstIndex(of: UInt8(ascii: "}")) else {
                literal.append(c)
                continue
            }
            if !literal.isEmpty { parts.append(.literal(literal)); literal = [] }
            let op = bytes.first
            switch op {
            case UInt8(ascii: "+"), UInt8(ascii: "#"):
                parts.append(.variable(prefix: op == UInt8(ascii: "#") ? op : nil, anything: true))
            case UInt8(ascii: "/"), UInt8(ascii: "."), UInt8(ascii: ";"), UInt8(ascii: "?"), UInt8(ascii: "&"):
                parts.append(.variable(prefix: op, anything: true))
            default:
                parts.append(.variable(prefix: nil, anything: false))
            }
            bytes = bytes[bytes.index(after: close)...]
        }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        self.parts = parts
    }

    func matches(_ uri: String) -> Bool {
        let u = Array(uri.utf8)
        return match(u, 0, 0)
    }

    private func match(_ u: [UInt8], _ at: Int, _ part: Int) -> Bool {
        guard part < parts.count else { return at == u.count }
        switch parts[part] {
        case .literal(let l):
            guard u.count - at >= l.count, u[at..<at + l.count].elementsEqual(l) else { return false }
            return match(u, at + l.count, part + 1)
        case .variable(let prefix, let anything):
            var start = at
            if let prefix {
                guard start < u.count, u[start] == prefix else { return false }
                start += 1
            }
            var end = start
            while end < u.count {
                let c = u[end]
                if !anything && (c == UInt8(ascii: "/") || c == UInt8(ascii: "?") || c == UInt8(ascii: "#")) { break }
                end += 1
                if match(u, end, part + 1) { return true }
            }
            return false
        }
    }
}

public struct CatalogError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Gateway-owned pagination cursors (GW-4, PAGE-1/2): an offset and the catalog generation, authenticated with
/// a per-process HMAC key so a client cannot forge, edit or carry one over from another gateway process.
struct CursorCodec: Sendable {
    let key: [UInt8]

    init() {
        _ = sodium_init()
        var k = [UInt8](repeating: 0, count: Int(crypto_auth_hmacsha256_KEYBYTES))
        randombytes_buf(&k, k.count)
        key = k
    }

    private func mac(_ body: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(crypto_auth_hmacsha256_BYTES))
        crypto_auth_hmacsha256(&out, body, UInt64(body.count), key)
        return Array(out.prefix(12))
    }

    func encode(offset: Int, generation: UInt32) -> String {
        var body: [UInt8] = []
        for v in [UInt32(offset), generation] {
            body.append(contentsOf: [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)])
        }
        return Hex.encode(body + mac(body))
    }

    /// The offset encoded in `cursor`, or nil when the cursor is not one of ours or is for another catalog.
    func decode(_ cursor: String, generation: UInt32) -> Int? {
        guard let raw = Hex.decode(cursor), raw.count == 20 else { return nil }
        let body = Array(raw.prefix(8))
        let tag = Array(raw.suffix(12))
        guard sodium_memcmp(tag, mac(body), 12) == 0 else { return nil }
        func u32(_ i: Int) -> UInt32 {
            UInt32(body[i]) << 24 | UInt32(body[i + 1]) << 16 | UInt32(body[i + 2]) << 8 | UInt32(body[i + 3])
        }
        guard u32(4) == generation else { return nil }
        return Int(u32(0))
    }
}

