import MCPGJSON

// MARK: - Shared payload types

/// Who is calling: the result of the identity chain, handed to policy, transforms and backends.
public struct Principal: Sendable, Equatable {
    public var id: String
    public var groups: [String]
    public var tenant: String?
    /// Free-form claims an identity plugin wants policies to see.
    public var attributes: JSONObject

    public init(id: String, groups: [String] = [], tenant: String? = nil, attributes: JSONObject = [:]) {
        self.id = id
        self.groups = groups
        self.tenant = tenant
        self.attributes = attributes
    }

    public init(json: JSON) throws {
        guard let id = json["id"]?.stringValue else { throw PluginError.badRequest("principal.id must be a string") }
        self.id = id
        groups = json["groups"]?.arrayValue?.compactMap(\.stringValue) ?? []
        tenant = json["tenant"]?.stringValue
        attributes = json["attributes"]?.objectValue ?? [:]
    }

    public var json: JSON {
        var o: JSONObject = ["id": .string(id), "groups": .array(groups.map { .string($0) })]
        if let tenant { o["tenant"] = .string(tenant) }
        if !attributes.isEmpty { o["attributes"] = .object(attributes) }
        return .object(o)
    }
}

// MARK: - Identity

/// The `authenticate` request: what the front knows about the caller.
public struct AuthenticateRequest: Sendable {
    /// "http" or "stdio".
    public var transport: String
    /// The peer's address ("127.0.0.1:53122", or "stdio").
    public var peerAddress: String
    /// True when the peer is on a loopback address (or stdio, which is local by construction).
    public var peerIsLoopback: Bool
    /// HTTP request headers, names lowercased. Empty on stdio.
    public var headers: [String: String]
    /// The TLS client certificates, on HTTPS connections (nil on plain HTTP and stdio).
    public var tls: ClientCertificates?

    /// The `tls` member: the chain a TLS client presented.
    public struct ClientCertificates: Sendable, Equatable {
        /// PEM certificates, the leaf first; empty when the client presented none.
        public var certificates: [String]
        /// True when the gateway's TLS layer verified the chain against `server.http.tls.client_ca_file`;
        /// false when it passed the chain on unverified (plugins then verify against their own roots).
        public var verified: Bool

        public init(certificates: [String], verified: Bool) {
            self.certificates = certificates
            self.verified = verified
        }
    }

    public init(transport: String, peerAddress: String, peerIsLoopback: Bool, headers: [String: String],
                tls: ClientCertificates? = nil) {
        self.transport = transport
        self.peerAddress = peerAddress
        self.peerIsLoopback = peerIsLoopback
        self.headers = headers
        self.tls = tls
    }

    public init(json: JSON) {
        transport = json["transport"]?.stringValue ?? ""
        peerAddress = json["peer"]?["address"]?.stringValue ?? ""
        peerIsLoopback = json["peer"]?["loopback"]?.boolValue ?? false
        var h: [String: String] = [:]
        for m in json["headers"]?.objectValue ?? [:] { if let v = m.value.stringValue { h[m.key] = v } }
        headers = h
        if let t = json["tls"]?.objectValue {
            tls = ClientCertificates(
                certificates: t["client_certificates"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                verified: t["verified"]?.boolValue ?? false)
        } else {
            tls = nil
        }
    }
}

/// An identity plugin's answer: authenticated (chain stops), abstain (next plugin), reject (chain stops, 401).
public enum AuthenticateResult: Sendable, Equatable {
    case authenticated(Principal, reason: String)
    case abstain(reason: String)
    case reject(reason: String)

    public var json: JSON {
        switch self {
        case .authenticated(let p, let reason):
            return ["result": "authenticated", "principal": p.json, "reason": .string(reason)]
        case .abstain(let reason): return ["result": "abstain", "reason": .string(reason)]
        case .reject(let reason): return ["result": "reject", "reason": .string(reason)]
        }
    }
}

/// Resolves who is calling. Op: `authenticate`.
public protocol IdentityPlugin: Plugin {
    func authenticate(_ request: AuthenticateRequest) async throws -> AuthenticateResult
}

extension IdentityPlugin {
    public static var kind: PluginKind { .identity }
    public func handle(op: String, request: JSON, context: CallContext) async throws -> JSON {
        guard op == "authenticate" else { throw PluginError(code: -32601, "identity plugins have no op \(op)") }
        return try await authenticate(AuthenticateRequest(json: request)).json
    }
}

// MARK: - Policy

/// The thing a decision is about.
public struct Resource: Sendable, Equatable {
    /// "tool" (prompts and resources come later).
    public var type: String
    public var name: String
    /// The backend name from config that serves it.
    public var backend: String

    public init(type: String, name: String, backend: String) {
        self.type = type
        self.name = name
        self.backend = backend
    }

    public init(json: JSON) throws {
        guard let name = json["name"]?.stringValue else { throw PluginError.badRequest("resource.name must be a string") }
        self.name = name
        type = json["type"]?.stringValue ?? "tool"
        backend = json["backend"]?.stringValue ?? ""
    }
}

/// One question to a policy: may the principal do `action` on `resource`?
public struct PolicyQuery: Sendable, Equatable {
    /// MCP method, e.g. "tools/call" or "tools/list".
    public var action: String
    public var resource: Resource
}

/// The `authorize` request: one principal, one context, a batch of queries (a list filter asks for many).
public struct AuthorizeRequest: Sendable {
    public var principal: Principal
    public var queries: [PolicyQuery]
    /// Request facts: `transport`, `peer`, `arguments` (for tools/call), `time`.
    public var context: JSONObject

    public init(principal: Principal, queries: [PolicyQuery], context: JSONObject = [:]) {
        self.principal = principal
        self.queries = queries
        self.context = context
    }

    public init(json: JSON) throws {
        principal = try Principal(json: json["principal"] ?? .null)
        guard let qs = json["queries"]?.arrayValue else { throw PluginError.badRequest("queries must be an array") }
        queries = try qs.map { q in
            guard let action = q["action"]?.stringValue else { throw PluginError.badRequest("query.action must be a string") }
            return PolicyQuery(action: action, resource: try Resource(json: q["resource"] ?? .null))
        }
        context = json["context"]?.objectValue ?? [:]
    }
}

/// A policy's answer to one query, with the rule ids that decided it (they go into the audit record).
public struct Decision: Sendable, Equatable {
    public enum Effect: String, Sendable { case allow, deny, abstain }
    public var effect: Effect
    public var reasons: [String]

    public init(_ effect: Effect, reasons: [String] = []) {
        self.effect = effect
        self.reasons = reasons
    }

    public var json: JSON { ["effect": .string(effect.rawValue), "reasons": .array(reasons.map { .string($0) })] }
}

/// Decides whether calls are allowed. Ops: `authorize` (one decision per query, in order) and
/// `policy_version` (`{"version": String}`, which changes whenever the plugin's decisions may have changed,
/// e.g. after a reload; the kernel keys its filtered-catalog cache on it).
public protocol PolicyPlugin: Plugin {
    func authorize(_ request: AuthorizeRequest) async throws -> [Decision]
    /// Defaults to "static": a plugin whose policy never changes while it runs.
    var policyVersion: String { get }
}

extension PolicyPlugin {
    public static var kind: PluginKind { .policy }
    public var policyVersion: String { "static" }
    public func handle(op: String, request: JSON, context: CallContext) async throws -> JSON {
        switch op {
        case "authorize":
            let req = try AuthorizeRequest(json: request)
            return try decisionsPayload(try await authorize(req), queries: req.queries.count)
        case "policy_version":
            return ["version": .string(policyVersion)]
        default:
            throw PluginError(code: -32601, "policy plugins have no op \(op)")
        }
    }
}

// MARK: - Transform

/// The call a transform sees.
public struct ToolInvocation: Sendable {
    public var tool: String
    public var backend: String
    public var principal: Principal?

    public init(tool: String, backend: String, principal: Principal? = nil) {
        self.tool = tool
        self.backend = backend
        self.principal = principal
    }

    init(json: JSON) throws {
        guard let tool = json["tool"]?.stringValue else { throw PluginError.badRequest("tool must be a string") }
        self.tool = tool
        backend = json["backend"]?.stringValue ?? ""
        principal = try json["principal"].map { try Principal(json: $0) }
    }
}

/// Rewrites tool arguments before the backend (op `request`) and results after it (op `response`).
/// Both default to returning their input unchanged.
public protocol TransformPlugin: Plugin {
    func transformArguments(_ arguments: JSON, for call: ToolInvocation) async throws -> JSON
    func transformResult(_ result: JSON, for call: ToolInvocation) async throws -> JSON
}

extension TransformPlugin {
    public static var kind: PluginKind { .transform }
    public func transformArguments(_ arguments: JSON, for call: ToolInvocation) async throws -> JSON { arguments }
    public func transformResult(_ result: JSON, for call: ToolInvocation) async throws -> JSON { result }

    public func handle(op: String, request: JSON, context: CallContext) async throws -> JSON {
        let call = try ToolInvocation(json: request)
        switch op {
        case "request":
            return ["arguments": try await transformArguments(request["arguments"] ?? .object([:]), for: call)]
        case "response":
            return ["result": try await transformResult(request["result"] ?? .object([:]), for: call)]
        default:
            throw PluginError(code: -32601, "transform plugins have no op \(op)")
        }
    }
}

// MARK: - Backend

/// A tools/call as a backend receives it.
public struct ToolCall: Sendable {
    public var name: String
    public var arguments: JSONObject
    /// The request's `_meta` (e.g. `progressToken`), passed through untouched.
    public var meta: JSONObject?
    public var principal: Principal?

    public init(name: String, arguments: JSONObject = [:], meta: JSONObject? = nil, principal: Principal? = nil) {
        self.name = name
        self.arguments = arguments
        self.meta = meta
        self.principal = principal
    }

    init(json: JSON) throws {
        guard let name = json["name"]?.stringValue else { throw PluginError.badRequest("name must be a string") }
        self.name = name
        arguments = json["arguments"]?.objectValue ?? [:]
        meta = json["_meta"]?.objectValue
        principal = try json["principal"].map { try Principal(json: $0) }
    }
}

/// Serves tools, and optionally prompts and resources.
///
/// Ops: `list_tools` → `{"tools": [Tool]}`, `call_tool` → a `CallToolResult`; `list_prompts` →
/// `{"prompts": [Prompt]}`, `get_prompt` (`name`, `arguments`) → a `GetPromptResult`; `list_resources` →
/// `{"resources": [Resource]}`, `list_resource_templates` → `{"resourceTemplates": [ResourceTemplate]}`,
/// `read_resource` (`uri`) → a `ReadResourceResult`; `complete` → a `CompleteResult`; `subscribe` / `unsubscribe`
/// (`uri`) → `{}`; `watch` → a long-lived call carrying change notifications. Every request also carries `principal` and the client's
/// `_meta`. A tool's own failure is a result with `isError: true`, not a thrown error; throw for unknown
/// names or when the backend itself is unavailable. Prompts and resources default to none.
public protocol BackendPlugin: Plugin {
    /// MCP `Tool` objects (name, description, inputSchema, optional outputSchema/annotations).
    func listTools() async throws -> [JSON]
    func callTool(_ call: ToolCall, context: CallContext) async throws -> JSON
    /// MCP `Prompt` objects (name, optional title, description, arguments).
    func listPrompts() async throws -> [JSON]
    func getPrompt(name: String, arguments: JSONObject, request: JSON, context: CallContext) async throws -> JSON
    /// MCP `Resource` objects (uri, name, optional mimeType …).
    func listResources() async throws -> [JSON]
    /// MCP `ResourceTemplate` objects (uriTemplate, name …).
    func listResourceTemplates() async throws -> [JSON]
    func readResource(uri: String, request: JSON, context: CallContext) async throws -> JSON
    /// `completion/complete` for a prompt argument or a resource template variable (COMP-1): the request's
    /// `ref`, `argument` and `context`, answered with a `CompleteResult`.
    func complete(_ request: JSON, context: CallContext) async throws -> JSON
    /// `resources/subscribe` / `resources/unsubscribe` of one URI (RES-6); updates are reported through `watch`.
    func subscribe(uri: String, context: CallContext) async throws
    func unsubscribe(uri: String, context: CallContext) async throws
    /// A call that lasts as long as the instance: the backend emits on `context` what changes upstream, as MCP
    /// notifications (`notifications/tools/list_changed`, `…/prompts/list_changed`, `…/resources/list_changed`,
    /// `notifications/resources/updated`) and `notifications/mcpg/health` (`{"status": "up"|"down", "reason"}`).
    /// Return (or throw) only when the backend can no longer report changes; backends whose catalog never
    /// changes keep the default, which answers -32601 at once.
    func watch(context: CallContext) async throws
}

extension BackendPlugin {
    public static var kind: PluginKind { .backend }
    public func listPrompts() async throws -> [JSON] { [] }
    public func getPrompt(name: String, arguments: JSONObject, request: JSON, context: CallContext) async throws -> JSON {
        throw PluginError(code: -32602, "Unknown prompt: \(name)")
    }
    public func listResources() async throws -> [JSON] { [] }
    public func listResourceTemplates() async throws -> [JSON] { [] }
    public func readResource(uri: String, request: JSON, context: CallContext) async throws -> JSON {
        throw PluginError(code: -32002, "Resource not found: \(uri)")
    }
    public func complete(_ request: JSON, context: CallContext) async throws -> JSON {
        throw PluginError(code: -32601, "this backend offers no completions")
    }
    public func subscribe(uri: String, context: CallContext) async throws {
        throw PluginError(code: -32601, "this backend offers no resource subscriptions")
    }
    public func unsubscribe(uri: String, context: CallContext) async throws {
        throw PluginError(code: -32601, "this backend offers no resource subscriptions")
    }
    public func watch(context: CallContext) async throws {
        throw PluginError(code: -32601, "this backend reports no changes")
    }

    public func handle(op: String, request: JSON, context: CallContext) async throws -> JSON {
        switch op {
        case "list_tools": return ["tools": .array(try await listTools())]
        case "call_tool": return try await callTool(try ToolCall(json: request), context: context)
        case "list_prompts": return ["prompts": .array(try await listPrompts())]
        case "get_prompt":
            guard let name = request["name"]?.stringValue else { throw PluginError.badRequest("name must be a string") }
            return try await getPrompt(name: name, arguments: request["arguments"]?.objectValue ?? [:], request: request,
                                       context: context)
        case "list_resources": return ["resources": .array(try await listResources())]
        case "list_resource_templates": return ["resourceTemplates": .array(try await listResourceTemplates())]
        case "read_resource":
            guard let uri = request["uri"]?.stringValue else { throw PluginError.badRequest("uri must be a string") }
            return try await readResource(uri: uri, request: request, context: context)
        case "complete": return try await complete(request, context: context)
        case "subscribe", "unsubscribe":
            guard let uri = request["uri"]?.stringValue else { throw PluginError.badRequest("uri must be a string") }
            if op == "subscribe" { try await subscribe(uri: uri, context: context) } else {
                try await unsubscribe(uri: uri, context: context)
            }
            return .object([:])
        case "watch":
            try await watch(context: context)
            return .object([:])
        default: throw PluginError(code: -32601, "backend plugins have no op \(op)")
        }
    }
}

// MARK: - Sink

/// Receives every audit event after it is in the ledger. Ops: `event` (payload: the ledger record) and
/// `metrics` (payload: the kernel's counters and gauges, sent every few seconds; see SPEC.md, "Sinks").
public protocol SinkPlugin: Plugin {
    func write(_ event: JSON) async throws
    /// Takes a snapshot of the kernel's metrics. The default answers -32601, which tells the kernel to stop
    /// sending them to this sink.
    func metrics(_ snapshot: JSON) async throws
}

extension SinkPlugin {
    public static var kind: PluginKind { .sink }
    public func metrics(_ snapshot: JSON) async throws {
        throw PluginError(code: -32601, "\(Self.name) takes no metrics")
    }
    public func handle(op: String, request: JSON, context: CallContext) async throws -> JSON {
        switch op {
        case "event": try await write(request)
        case "metrics": try await metrics(request)
        default: throw PluginError(code: -32601, "sink plugins have no op \(op)")
        }
        return .object([:])
    }
}

// MARK: - Synchronous plugins

/// A plugin whose calls never wait on I/O or timers. PluginKit answers them on the kernel's thread, without
/// creating a Task, which makes the call through the ABI several times cheaper. Conform through the kind's
/// `Sync…Plugin` protocol and write its methods without `async`.
public protocol SynchronousPlugin: Plugin {
    /// Dispatches one ABI operation synchronously. Each `Sync…Plugin` protocol implements this.
    func handleNow(op: String, request: JSON, context: CallContext) throws -> JSON
}

/// An identity plugin that answers without waiting (e.g. a key lookup).
public protocol SyncIdentityPlugin: IdentityPlugin, SynchronousPlugin {
    func authenticate(_ request: AuthenticateRequest) throws -> AuthenticateResult
}

extension SyncIdentityPlugin {
    public func handleNow(op: String, request: JSON, context: CallContext) throws -> JSON {
        guard op == "authenticate" else { throw PluginError(code: -32601, "identity plugins have no op \(op)") }
        return try authenticate(AuthenticateRequest(json: request)).json
    }
}

/// A policy plugin that decides without waiting (e.g. rules evaluated in memory).
public protocol SyncPolicyPlugin: PolicyPlugin, SynchronousPlugin {
    func authorize(_ request: AuthorizeRequest) throws -> [Decision]
}

extension SyncPolicyPlugin {
    public func handleNow(op: String, request: JSON, context: CallContext) throws -> JSON {
        switch op {
        case "authorize":
            let req = try AuthorizeRequest(json: request)
            return try decisionsPayload(try authorize(req), queries: req.queries.count)
        case "policy_version":
            return ["version": .string(policyVersion)]
        default:
            throw PluginError(code: -32601, "policy plugins have no op \(op)")
        }
    }
}

/// The `authorize` answer, checked to hold one decision per query.
func decisionsPayload(_ decisions: [Decision], queries: Int) throws -> JSON {
    guard decisions.count == queries else {
        throw PluginError("policy returned \(decisions.count) decisions for \(queries) queries")
    }
    return ["decisions": .array(decisions.map(\.json))]
}

/// A transform that rewrites without waiting (e.g. regex redaction). Both methods default to no change.
public protocol SyncTransformPlugin: TransformPlugin, SynchronousPlugin {
    func transformArguments(_ arguments: JSON, for call: ToolInvocation) throws -> JSON
    func transformResult(_ result: JSON, for call: ToolInvocation) throws -> JSON
}

extension SyncTransformPlugin {
    public func transformArguments(_ arguments: JSON, for call: ToolInvocation) throws -> JSON { arguments }
    public func transformResult(_ result: JSON, for call: ToolInvocation) throws -> JSON { result }

    public func handleNow(op: String, request: JSON, context: CallContext) throws -> JSON {
        let call = try ToolInvocation(json: request)
        switch op {
        case "request": return ["arguments": try transformArguments(request["arguments"] ?? .object([:]), for: call)]
        case "response": return ["result": try transformResult(request["result"] ?? .object([:]), for: call)]
        default: throw PluginError(code: -32601, "transform plugins have no op \(op)")
        }
    }
}
