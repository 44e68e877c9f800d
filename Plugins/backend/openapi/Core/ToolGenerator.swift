import HTTPTools
import MCPGJSON
import PluginKit

/// Turns an OpenAPI 3.1 document (as JSON) into HTTP tools: one per operation.
///
/// Name: the operationId with characters outside `A-Z a-z 0-9 _ - .` replaced by `_` (cut to 128), else
/// `<method>_<path>` the same way; a repeated name gets `_2`, `_3`…. Description: summary, then description.
/// inputSchema: one property per path, query and header parameter (cookie parameters are left out) with its
/// schema and description, required as the document says (path parameters always), and `body` for an
/// `application/json` (or `+json`) request body. Local `$ref`s are inlined; a reference cycle is cut to `{}`
/// after its first expansion. outputSchema: the first 2xx `application/json` response schema whose root is an
/// object.
struct ToolGenerator {
    struct Filter: Sendable {
        var include: [String] = []
        var exclude: [String] = []
        var includeTags: [String] = []
        var excludeTags: [String] = []
    }

    let document: JSON
    let baseURL: String

    static let methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]

    /// - Throws: `HTTPToolsError` when no server URL can be found.
    init(document: JSON, serverURL: String?) throws {
        self.document = document
        if let serverURL {
            baseURL = serverURL
        } else if let server = document["servers"]?[0], let url = server["url"]?.stringValue {
            var u = url
            for m in server["variables"]?.objectValue ?? [:] {
                u = u.replacing("{\(m.key)}", with: m.value["default"]?.stringValue ?? "")
            }
            guard u.hasPrefix("http://") || u.hasPrefix("https://") else {
                throw HTTPToolsError("the document's server URL \"\(url)\" is not absolute: set server_url")
            }
            baseURL = u
        } else {
            throw HTTPToolsError("the document names no server: set server_url")
        }
    }

    func tools(filter: Filter, auth: Authenticator?, timeoutMs: Int?) throws -> [HTTPTool] {
        let include = GlobSet(filter.include)
        let exclude = GlobSet(filter.exclude)
        var used = Set<String>()
        var out: [HTTPTool] = []
        for pathMember in document["paths"]?.objectValue ?? [:] {
            let path = pathMember.key
            let item = resolve(pathMember.value)
            let shared = item["parameters"]?.arrayValue ?? []
            for method in Self.methods {
                guard let op = item[method]?.objectValue.map(JSON.object) else { continue }
                let operationID = op["operationId"]?.stringValue
                let tags = op["tags"]?.arrayValue?.compactMap(\.stringValue) ?? []
                var name = Self.sanitize(operationID ?? "\(method)_\(path)")
                let candidates = [name] + (operationID.map { [$0] } ?? [])
                if !filter.include.isEmpty || !filter.includeTags.isEmpty {
                    let byName = !filter.include.isEmpty && candidates.contains { include.matches($0) }
                    let byTag = tags.contains { filter.includeTags.contains($0) }
                    guard byName || byTag else { continue }
                }
                if !filter.exclude.isEmpty, candidates.contains(where: { exclude.matches($0) }) { continue }
                if tags.contains(where: { filter.excludeTags.contains($0) }) { continue }
                if used.contains(name) {
                    var i = 2
                    while used.contains("\(name.prefix(120))_\(i)") { i += 1 }
                    name = "\(name.prefix(120))_\(i)"
                }
                used.insert(name)
                out.append(try tool(name: name, method: method, path: path, op: op, shared: shared, auth: auth, timeoutMs: timeoutMs))
            }
        }
        return out
    }

    static func sanitize(_ text: String) -> String {
        var s = String(
            String.UnicodeScalarView(
                text.unicodeScalars.map { c -> Unicode.Scalar in
                    let v = c.value
                    let ok = (v >= 0x41 && v <= 0x5A) || (v >= 0x61 && v <= 0x7A) || (v >= 0x30 && v <= 0x39)
                        || c == "_" || c == "-" || c == "."
                    return ok ? c : "_"
                }))
        while s.contains("__") { s = s.replacing("__", with: "_") }
        if s.hasPrefix("_") { s.removeFirst() }
        if s.hasSuffix("_") { s.removeLast() }
        if s.isEmpty { s = "operation" }
        return String(s.prefix(128))
    }

    func tool(name: String, method: String, path: String, op: JSON, shared: [JSON], auth: Authenticator?,
              timeoutMs: Int?) throws -> HTTPTool {
        var parameters: [(name: String, location: String, JSON)] = []
        for p in shared + (op["parameters"]?.arrayValue ?? []) {
            let p = resolve(p)
            guard let n = p["name"]?.stringValue, let location = p["in"]?.stringValue, location != "cookie" else { continue }
            parameters.removeAll { $0.name == n && $0.location == location }
            parameters.append((n, location, p))
        }
        var properties = JSONObject()
        var required: [JSON] = []
        var query: [(String, Template)] = []
        var headers: [(String, Template)] = []
        for (n, location, p) in parameters {
            var schema = p["schema"].map { inline($0) } ?? ["type": "string"]
            if let d = p["description"]?.stringValue, case .object(var o) = schema, o["description"] == nil {
                o["description"] = .string(d)
                schema = .object(o)
            }
            properties[n] = schema
            if location == "path" || p["required"]?.boolValue == true { required.append(.string(n)) }
            switch location {
            case "query": query.append((n, Template(parts: [.placeholder(n)])))
            case "header": headers.append((n, Template(parts: [.placeholder(n)])))
            default: break
            }
        }
        var body: HTTPTool.Body = .none
        if let rb = op["requestBody"].map({ resolve($0) }), let content = rb["content"]?.objectValue,
            let json = content.first(where: { Self.isJSON($0.key) })
        {
            properties["body"] = json.value["schema"].map { inline($0) } ?? [:]
            if rb["required"]?.boolValue == true { required.append("body") }
            body = .argument("body")
        }
        var input: JSONObject = ["type": "object", "properties": .object(properties)]
        if !required.isEmpty { input["required"] = .array(required) }
        var outputSchema: JSON?
        for r in (op["responses"]?.objectValue ?? [:]) where r.key.hasPrefix("2") {
            let response = resolve(r.value)
            if let json = response["content"]?.objectValue?.first(where: { Self.isJSON($0.key) }),
                let schema = json.value["schema"].map({ inline($0) }), schema["type"]?.stringValue == "object"
            {
                outputSchema = schema
                break
            }
        }
        var parts: [Template.Part] = []
        let base = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        parts.append(.literal(base))
        var rest = Substring(path)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            if open > rest.startIndex { parts.append(.literal(String(rest[..<open]))) }
            parts.append(.placeholder(String(rest[rest.index(after: open)..<close])))
            rest = rest[rest.index(after: close)...]
        }
        if !rest.isEmpty { parts.append(.literal(String(rest))) }
        let url = Template(parts: parts)
        try HTTPTool.checkURL(Template(base), tool: name)
        var description = [op["summary"]?.stringValue, op["description"]?.stringValue].compactMap { $0 }
            .filter { !$0.isEmpty }.joined(separator: "\n\n")
        if description.isEmpty { description = "\(method.uppercased()) \(path)" }
        let readOnly = method == "get" || method == "head"
        return HTTPTool(
            name: name, description: description, method: method.uppercased(), url: url, query: query,
            headers: headers, body: body, inputSchema: .object(input), outputSchema: outputSchema,
            annotations: readOnly ? ["readOnlyHint": true] : (method == "delete" ? ["destructiveHint": true] : nil),
            auth: auth, timeoutMs: timeoutMs)
    }

    static func isJSON(_ mediaType: String) -> Bool {
        let m = mediaType.lowercased().split(separator: ";").first.map(String.init) ?? ""
        return m == "application/json" || m.hasSuffix("+json") || m == "*/*"
    }

    /// Follows a `$ref` to a local component (one level; the object itself otherwise).
    func resolve(_ value: JSON, depth: Int = 0) -> JSON {
        guard depth < 16, let ref = value["$ref"]?.stringValue else { return value }
        guard ref.hasPrefix("#"), let target = document.select(String(ref.dropFirst())) else { return value }
        return resolve(target, depth: depth + 1)
    }

    /// A schema with every local `$ref` inlined; a reference already being expanded becomes `{}` (cycles), and
    /// inlining stops at depth 12.
    func inline(_ schema: JSON, expanding: [String] = [], depth: Int = 0) -> JSON {
        switch schema {
        case .object(let o):
            if let ref = o["$ref"]?.stringValue {
                guard ref.hasPrefix("#/"), !expanding.contains(ref), depth < 12,
                    let target = document.select(String(ref.dropFirst()))
                else { return [:] }
                var inlined = inline(target, expanding: expanding + [ref], depth: depth + 1)
                if case .object(var io) = inlined {
                    for m in o where m.key != "$ref" { io[m.key] = inline(m.value, expanding: expanding, depth: depth + 1) }
                    inlined = .object(io)
                }
                return inlined
            }
            var out = JSONObject()
            for m in o {
                // Literal values: enum/const/default/examples are data, not schemas.
                if ["enum", "const", "default", "example", "examples"].contains(m.key) {
                    out[m.key] = m.value
                } else {
                    out[m.key] = inline(m.value, expanding: expanding, depth: depth + 1)
                }
            }
            return .object(out)
        case .array(let a):
            return .array(a.map { inline($0, expanding: expanding, depth: depth + 1) })
        default:
            return schema
        }
    }
}
