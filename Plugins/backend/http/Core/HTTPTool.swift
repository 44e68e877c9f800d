import MCPGJSON

/// One tool that is one HTTP request: where it goes, how arguments fill it in, and how the answer becomes
/// a `CallToolResult`.
public struct HTTPTool: Sendable {
    /// How the request body is made.
    public enum Body: Sendable, Equatable {
        /// No body.
        case none
        /// A JSON template (see `JSON.renderTemplate`).
        case template(JSON)
        /// The arguments not used by the URL, query or headers, as a JSON object.
        case remainingArguments
        /// One argument's value as the whole body (OpenAPI `requestBody`).
        case argument(String)
    }

    public var name: String
    public var title: String?
    public var description: String?
    public var method: String
    /// The absolute URL with `{placeholders}` (percent-encoded as one component each).
    public var url: Template
    /// Query parameters: name → template; a template that is one placeholder is left out when its argument is
    /// absent, and an array argument repeats the parameter.
    public var query: [(String, Template)]
    /// Request headers: name → template, left out like query parameters.
    public var headers: [(String, Template)]
    public var body: Body
    /// `json` or `form`.
    public var bodyEncoding: String
    public var inputSchema: JSON
    public var outputSchema: JSON?
    /// A JSON pointer (`/a/0`) or dotted path (`a.0`) into a JSON answer: the part that is the result.
    public var select: String?
    public var annotations: JSON?
    /// This tool's authentication; nil: the caller's default.
    public var auth: Authenticator?
    public var timeoutMs: Int?

    public init(
        name: String, title: String? = nil, description: String? = nil, method: String, url: Template,
        query: [(String, Template)] = [], headers: [(String, Template)] = [], body: Body = .none,
        bodyEncoding: String = "json", inputSchema: JSON, outputSchema: JSON? = nil, select: String? = nil,
        annotations: JSON? = nil, auth: Authenticator? = nil, timeoutMs: Int? = nil
    ) {
        self.name = name
        self.title = title
        self.description = description
        self.method = method
        self.url = url
        self.query = query
        self.headers = headers
        self.body = body
        self.bodyEncoding = bodyEncoding
        self.inputSchema = inputSchema
        self.outputSchema = outputSchema
        self.select = select
        self.annotations = annotations
        self.auth = auth
        self.timeoutMs = timeoutMs
    }

    /// The MCP `Tool` object (TOOL-2).
    public var json: JSON {
        var o: JSONObject = ["name": .string(name)]
        if let title { o["title"] = .string(title) }
        if let description { o["description"] = .string(description) }
        o["inputSchema"] = inputSchema
        if let outputSchema { o["outputSchema"] = outputSchema }
        if let annotations { o["annotations"] = annotations }
        return .object(o)
    }

    /// Checks a tool name against TOOL-4: 1–128 characters from `A-Z a-z 0-9 _ - .`.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 128
            && name.utf8.allSatisfy {
                ($0 | 0x20) >= 0x61 && ($0 | 0x20) <= 0x7A || ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: "_")
                    || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".")
            }
    }

    /// Checks that placeholders only appear after the URL's authority (an argument never picks the host).
    /// - Throws: `HTTPToolsError`.
    public static func checkURL(_ url: Template, tool: String) throws {
        let source = url.source
        guard let sep = source.firstRange(of: "://") else {
            throw HTTPToolsError("tool \(tool): url \"\(source)\" is not an absolute http(s) URL (set base_url for relative URLs)")
        }
        let scheme = source[..<sep.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else {
            throw HTTPToolsError("tool \(tool): url \"\(source)\" is not an http(s) URL")
        }
        let rest = source[sep.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.isEmpty else { throw HTTPToolsError("tool \(tool): url \"\(source)\" has no host") }
        guard !authority.contains("{"), !authority.contains("@") else {
            throw HTTPToolsError("tool \(tool): url \"\(source)\": the host must be fixed (no placeholder, no credentials)")
        }
        guard !source.contains("#") else { throw HTTPToolsError("tool \(tool): url \"\(source)\" must not have a fragment") }
    }

    /// Builds the request from validated arguments.
    public func request(_ arguments: JSONObject) throws -> OutgoingRequest {
        var used = Set(url.placeholders)
        var target = url.render(arguments, encode: PercentEncoding.component)
        var pairs: [(String, String)] = []
        for (name, t) in query {
            used.formUnion(t.placeholders)
            if let n = t.single {
                switch arguments[n] {
                case nil, .null?: continue
                case .array(let items)?: for item in items { pairs.append((name, item.plainText)) }
                case let v?: pairs.append((name, v.plainText))
                }
            } else {
                pairs.append((name, t.render(arguments)))
            }
        }
        if !pairs.isEmpty { target += (target.contains("?") ? "&" : "?") + PercentEncoding.form(pairs) }
        var headerList: [(String, String)] = []
        for (name, t) in headers {
            used.formUnion(t.placeholders)
            if let n = t.single, arguments[n] == nil || arguments[n] == .null { continue }
            let value = t.render(arguments)
            guard !value.utf8.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) else {
                throw HTTPToolsError("header \(name): the argument contains control characters")
            }
            headerList.append((name, value))
        }
        var bodyValue: JSON?
        switch body {
        case .none: bodyValue = nil
        case .template(let t): bodyValue = t.renderTemplate(arguments) ?? .null
        case .remainingArguments:
            var o = JSONObject()
            for m in arguments where !used.contains(m.key) { o[m.key] = m.value }
            bodyValue = .object(o)
        case .argument(let n): bodyValue = arguments[n]
        }
        var bytes: [UInt8]?
        if let bodyValue {
            if bodyEncoding == "form" {
                guard case .object(let o) = bodyValue else {
                    throw HTTPToolsError("a form body must be an object")
                }
                bytes = Array(PercentEncoding.form(o.map { ($0.key, $0.value.plainText) }).utf8)
                headerList.append(("Content-Type", "application/x-www-form-urlencoded"))
            } else {
                bytes = bodyValue.serialized()
                headerList.append(("Content-Type", "application/json"))
            }
        }
        if !headerList.contains(where: { $0.0.lowercased() == "accept" }) {
            headerList.append(("Accept", "application/json, text/plain;q=0.9, */*;q=0.5"))
        }
        return OutgoingRequest(method: method, url: target, headers: headerList, body: bytes)
    }
}

/// A `CallToolResult` with one text block.
public func toolResult(text: String, isError: Bool = false, structured: JSON? = nil) -> JSON {
    var o: JSONObject = ["content": [["type": "text", "text": .string(text)]]]
    if let structured { o["structuredContent"] = structured }
    if isError { o["isError"] = true }
    return .object(o)
}

/// Arguments that do not conform to the tool's inputSchema (a JSON-RPC -32602 error, not a tool result).
public struct InvalidArguments: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension HTTPCaller {
    /// Runs one tool: validates the arguments (throws `InvalidArguments`), sends the request and maps the
    /// answer. Every other failure is a result with `isError: true`.
    public func call(_ tool: HTTPTool, arguments: JSONObject, meta: JSONObject? = nil) async throws -> JSON {
        if let e = SchemaValidator.firstError(.object(arguments), schema: tool.inputSchema) {
            throw InvalidArguments(message: "invalid arguments for \(tool.name): \(e)")
        }
        let response: IncomingResponse
        do {
            var request = try tool.request(arguments)
            request.addTraceContext(from: meta)
            response = try await send(request, auth: tool.auth ?? defaultAuth, timeoutMs: tool.timeoutMs)
        } catch let e as HTTPToolsError {
            return toolResult(text: scrub(e.message), isError: true)
        } catch is CancellationError {
            return toolResult(text: "cancelled", isError: true)
        }
        return map(response, tool: tool)
    }

    /// The result of an HTTP answer: non-2xx is an error with the status and a short excerpt; a JSON answer
    /// is selected into and, with an outputSchema, becomes `structuredContent` (TOOL-7, TOOL-8).
    public func map(_ response: IncomingResponse, tool: HTTPTool) -> JSON {
        guard (200..<300).contains(response.status) else {
            let excerpt = scrub(response.excerpt())
            return toolResult(
                text: "HTTP \(response.status) \(response.reason)" + (excerpt.isEmpty ? "" : ": \(excerpt)"),
                isError: true)
        }
        let wantsJSON = response.isJSON || tool.select != nil || tool.outputSchema != nil
        var json: JSON?
        if wantsJSON, !response.body.isEmpty {
            json = try? JSON.parse(response.body)
            if json == nil, tool.select != nil || tool.outputSchema != nil {
                return toolResult(text: "the response is not JSON: \(scrub(response.excerpt()))", isError: true)
            }
        }
        guard var value = json else {
            if tool.outputSchema != nil {
                return toolResult(text: "the response is empty but the tool has an outputSchema", isError: true)
            }
            return toolResult(text: String(decoding: response.body, as: UTF8.self))
        }
        if let select = tool.select {
            guard let v = value.select(select) else {
                return toolResult(text: "the response has nothing at \(select)", isError: true)
            }
            value = v
        }
        let text = value.stringValue ?? value.text
        guard let schema = tool.outputSchema else { return toolResult(text: text) }
        guard case .object = value else {
            return toolResult(text: "the response is not a JSON object as the outputSchema requires", isError: true)
        }
        if let e = SchemaValidator.firstError(value, schema: schema, path: "result") {
            return toolResult(text: "the response does not match the outputSchema: \(e)", isError: true)
        }
        return toolResult(text: text, structured: value)
    }
}
