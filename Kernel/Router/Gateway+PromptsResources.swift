import Logging
import MCPGFrames
import MCPGJSON

/// The catalog lists a principal sees filtered by policy, one cache entry per kind.
public enum ListKind: String, Sendable {
    case tools, prompts, resources, templates

    /// The policy question for each catalog entry of this kind.
    func targets(_ c: Catalog) -> [PolicyTarget] {
        switch self {
        case .tools: return c.tools.map { PolicyTarget(action: "tools/list", name: $0.name, backend: $0.backend) }
        case .prompts:
            return c.prompts.map { PolicyTarget(action: "prompts/list", type: "prompt", name: $0.key, backend: $0.backend) }
        case .resources:
            return c.resources.map {
                PolicyTarget(action: "resources/list", type: "resource", name: $0.key, backend: $0.backend)
            }
        case .templates:
            return c.templates.map {
                PolicyTarget(action: "resources/templates/list", type: "resource_template", name: $0.key, backend: $0.backend)
            }
        }
    }

    /// The result member the list goes in.
    var member: String {
        switch self {
        case .tools: return "tools"
        case .prompts: return "prompts"
        case .resources: return "resources"
        case .templates: return "resourceTemplates"
        }
    }

    var method: String {
        switch self {
        case .tools: return "tools/list"
        case .prompts: return "prompts/list"
        case .resources: return "resources/list"
        case .templates: return "resources/templates/list"
        }
    }
}

extension Gateway {
    /// prompts/list, resources/list, resources/templates/list: the catalog filtered by policy, in pages with
    /// gateway cursors (PAGE-1, GW-4). The first page is audited with how many entries were hidden.
    func list(_ kind: ListKind, id: RequestID, params: JSON?, identity: Identity, caller: Caller,
              session: Session) async -> Reply {
        let catalog = self.catalog
        var offset = 0
        if let c = params?["cursor"] {
            guard let s = c.stringValue, let o = cursors.decode(s, generation: catalog.generation) else {
                return .frame(.errorResponse(id: id, error: .invalidParams("Invalid cursor")))
            }
            offset = o
        }
        // The listed objects by catalog index, without copying the catalog per request.
        let total: Int
        let item: (Int) -> JSON
        switch kind {
        case .tools where session.modern: (total, item) = (catalog.tools.count, { [catalog] in catalog.tools[$0].tool })
        case .tools: (total, item) = (catalog.tools.count, { [catalog] in Self.taskable(catalog.tools[$0].tool) })
        case .prompts: (total, item) = (catalog.prompts.count, { [catalog] in catalog.prompts[$0].item })
        case .resources: (total, item) = (catalog.resources.count, { [catalog] in catalog.resources[$0].item })
        case .templates: (total, item) = (catalog.templates.count, { [catalog] in catalog.templates[$0].item })
        }
        let visible = await visible(kind, identity.principal, in: catalog, context: listContext(caller))
        guard offset <= visible.count else {
            return .frame(.errorResponse(id: id, error: .invalidParams("Invalid cursor")))
        }
        let end = min(visible.count, offset + settings.pageSize)
        var result: JSONObject = [kind.member: .array(visible[offset..<end].map(item))]
        if end < visible.count { result["nextCursor"] = .string(cursors.encode(offset: end, generation: catalog.generation)) }
        if offset == 0 {
            let cid = RandomID.correlation()
            var event = auditEvent(cid, type: kind.method, session: session, caller: caller, identity: identity)
            event["decision"] = ["visible": .int(Int64(visible.count)), "hidden": .int(Int64(total - visible.count))]
            do { try await audit.record(.object(event)) } catch {
                logger.critical("audit ledger write failed", metadata: ["mcpg.error.id": "\(cid)", "mcpg.error": "\(error)"])
                return .frame(.errorResponse(id: id, error: RPCError.unavailable.withCorrelation(cid)))
            }
        }
        return .frame(.response(id: id, result: .object(result)))
    }

    /// The gateway runs any tool as a task (TASK-10), so a tool the backend marks `forbidden` (or not at all) is
    /// listed as `optional`; `required` stays.
    static func taskable(_ tool: JSON) -> JSON {
        let execution = tool["execution"] ?? .object([:])
        if execution["taskSupport"]?.stringValue == "required" || execution["taskSupport"]?.stringValue == "optional" {
            return tool
        }
        return tool.setting("execution", to: execution.setting("taskSupport", to: "optional"))
    }

    /// prompts/get: authorized like tools/call (action `prompts/get`), relayed to the prompt's backend, audited.
    func getPrompt(id: RequestID, params: JSON?, identity: Identity, caller: Caller, session: Session,
                   emit: (@Sendable (JSON) -> Bool)?) async -> Reply {
        guard let name = params?["name"]?.stringValue else {
            return .frame(.errorResponse(id: id, error: .invalidParams("prompts/get needs params.name (a string)")))
        }
        let arguments = params?["arguments"] ?? .object([:])
        guard case .object = arguments else {
            return .frame(.errorResponse(id: id, error: .invalidParams("params.arguments must be an object")))
        }
        let entry = catalog.prompt(named: name)
        var request: JSONObject = ["name": .string(entry?.upstreamKey ?? name), "arguments": arguments]
        if let meta = ModernMeta.forBackend(params?["_meta"]) { request["_meta"] = meta }
        return await relay(
            id: id, method: "prompts/get", op: "get_prompt",
            target: PolicyTarget(action: "prompts/get", type: "prompt", name: name, backend: entry?.backend ?? ""),
            known: entry != nil, unknown: .invalidParams("Unknown prompt: \(name)"), request: request,
            auditFields: ["prompt": .string(name)], identity: identity, caller: caller, session: session, emit: emit)
    }

    /// resources/read: authorized like tools/call (action `resources/read`; the resource's type is
    /// `resource_template` when only a template matched), relayed to the backend serving the URI, audited.
    func readResource(id: RequestID, params: JSON?, identity: Identity, caller: Caller, session: Session,
                      emit: (@Sendable (JSON) -> Bool)?) async -> Reply {
        guard let uri = params?["uri"]?.stringValue else {
            return .frame(.errorResponse(id: id, error: .invalidParams("resources/read needs params.uri (a string)")))
        }
        let found = catalog.resource(uri: uri)
        var request: JSONObject = ["uri": .string(uri)]
        if let meta = ModernMeta.forBackend(params?["_meta"]) { request["_meta"] = meta }
        var fields: JSONObject = ["uri": .string(uri)]
        if let found, found.type == "resource_template" { fields["template"] = .string(found.entry.key) }
        // RES-8: an unknown URI is -32002 (resource not found).
        return await relay(
            id: id, method: "resources/read", op: "read_resource",
            target: PolicyTarget(action: "resources/read", type: found?.type ?? "resource", name: uri,
                                 backend: found?.entry.backend ?? ""),
            known: found != nil, unknown: RPCError(code: -32002, message: "Resource not found", data: ["uri": .string(uri)]),
            request: request, auditFields: fields, identity: identity, caller: caller, session: session, emit: emit)
    }

    /// Policy → backend op → durable audit record → answer, for requests without transforms. Policy runs first,
    /// also for names no backend serves, so a denied caller cannot probe what exists.
    /// `unsupported`: the answer when the backend has no such op (-32601); nil relays -32601 to the client.
    func relay(id: RequestID, method: String, op: String, target: PolicyTarget, known: Bool, unknown: RPCError,
               request: JSONObject, auditFields: JSONObject, identity: Identity, caller: Caller, session: Session,
               emit: (@Sendable (JSON) -> Bool)?, unsupported: JSON? = nil) async -> Reply {
        let start = ContinuousClock.now
        let cid = RandomID.correlation()
        var event = auditEvent(cid, type: method, session: session, caller: caller, identity: identity)
        for m in auditFields.members { event[m.key] = m.value }
        event["backend"] = .string(target.backend)
        var context = baseContext(caller, session)
        if let args = request["arguments"] { context["arguments"] = args }
        let verdict = await policy.decide(identity.principal, [target], context: context)[0]
        event["decision"] = verdict.auditJSON(mode: policy.mode)

        func finish(_ outcome: JSON, _ reply: Frame) async -> Reply {
            await recordThenAnswer(&event, outcome: outcome, reply: reply, id: id, cid: cid, start: start)
        }
        func failed(_ e: RPCError, detail: String) async -> Reply {
            await finish(["status": "error", "code": .int(Int64(e.code)), "message": .string(detail)],
                         .errorResponse(id: id, error: e.withCorrelation(cid)))
        }
        guard verdict.allow else { return await failed(.forbidden, detail: "denied by policy") }
        guard known, let backend = backends[target.backend] else { return await failed(unknown, detail: "unknown") }

        var call = request
        call["principal"] = identity.principal.json
        let forward = forwarder(emit, session: session, backend: backend)
        var answer = await backend.caller.call(op: op, request: .object(call), timeout: settings.callTimeout, emit: forward)
        if let unsupported, case .failure(let f) = answer, case .plugin(let code, _) = f.kind, code == -32601 {
            answer = .success(unsupported)
        }
        switch answer {
        case .success(var result):
            guard case .object(var obj) = result else {
                return await failed(.pluginFailure(), detail: "\(backend.label): \(op) answered a non-object")
            }
            var meta = obj["_meta"]?.objectValue ?? [:]
            meta[correlationMetaKey] = .string(cid)
            obj["_meta"] = .object(meta)
            result = .object(obj)
            return await finish(["status": "ok"], .response(id: id, result: result))
        case .failure(let f):
            switch f.kind {
            case .cancelled: return .none
            case .plugin(let code, let message) where RPCError.relayedFromBackends.contains(code):
                // The backend's own "no such prompt/resource" or bad arguments: the client's error, said as is.
                return await failed(RPCError(code: code, message: message), detail: message)
            default:
                logger.error("backend failed", metadata: ["mcpg.plugin.id": "\(backend.label)", "mcpg.error": "\(f.summary)"])
                return await failed(.backendUnavailable(), detail: "\(backend.label): \(f.summary)")
            }
        }
    }
}
