import Logging
import MCPGFrames
import MCPGJSON

extension Gateway {
    /// What a backend emits during a call, on its way to the client: notifications pass (log messages only at or
    /// above the session's `logging/setLevel`); requests (sampling, elicitation, roots) pass only when the client
    /// declared it can answer them, under an id of the gateway's, and the client's answer goes back to the backend
    /// through `client_response` (GW-5, GW-6). Returns false for what cannot be delivered.
    func forwarder(_ emit: (@Sendable (JSON) -> Bool)?, session: Session, backend: Stage,
                   inner: InnerCalls? = nil) -> (@Sendable (JSON) -> Bool)? {
        if emit == nil && !session.modern && inner == nil { return nil }
        return { @Sendable message in
            guard let method = message["method"]?.stringValue else { return false }
            if method == "tools/call", let pluginID = message["id"], let inner {
                // A backend calling the gateway's own tools (a pipeline step): never sent to the client.
                self.innerCall(inner, params: message["params"], pluginID: pluginID, session: session,
                               emit: emit, backend: backend)
                return true
            }
            if let pluginID = message["id"], session.modern {
                // No requests to a 2026-07-28 client: they become input requests of the call's answer (NEXT-6).
                guard let bridge = session.inputBridge,
                    Self.clientCan(method, params: message["params"], capabilities: session.clientCapabilities)
                else { return false }
                bridge.add(method: method, params: message["params"] ?? .object([:]), caller: backend.caller,
                           pluginID: pluginID)
                return true
            }
            guard let emit else { return false }
            if let pluginID = message["id"] {
                guard Self.clientCan(method, params: message["params"], capabilities: session.clientCapabilities) else {
                    return false
                }
                let id = session.expectAnswer(
                    Session.ClientRequest(caller: backend.caller, label: backend.label, pluginID: pluginID))
                let sent = emit(message.setting("id", to: .string(id)))
                if !sent { _ = session.takeAnswer(.string(id)) }
                return sent
            }
            if method == "notifications/message", let level = message["params"]?["level"]?.stringValue,
                !session.wantsLog(level)
            {
                return true
            }
            return emit(message)
        }
    }

    /// True when a client with `capabilities` may be sent `method` (LIFE-6, SAMP-1, SAMP-2, ELIC-1, ROOTS-1).
    public static func clientCan(_ method: String, params: JSON?, capabilities: JSON) -> Bool {
        switch method {
        case "ping": return true
        case "roots/list": return capabilities["roots"]?.objectValue != nil
        case "sampling/createMessage":
            guard let sampling = capabilities["sampling"]?.objectValue else { return false }
            if params?["tools"] != nil { return sampling["tools"]?.objectValue != nil }
            return true
        case "elicitation/create":
            guard let elicitation = capabilities["elicitation"]?.objectValue else { return false }
            if params?["mode"]?.stringValue == "url" { return elicitation["url"]?.objectValue != nil }
            // `{}` declares form mode only.
            return elicitation.isEmpty || elicitation["form"]?.objectValue != nil
        default: return false
        }
    }

    /// Hands the client's answer to a request the gateway sent on a backend's behalf back to that backend.
    /// Answers to unknown ids are ignored (CANC-1: late or duplicate).
    func answerFromClient(_ id: RequestID, _ answer: JSONObject, session: Session?) {
        guard let session, let waiting = session.takeAnswer(id) else { return }
        var body = answer
        body["id"] = waiting.pluginID
        let timeout = settings.callTimeout
        let logger = self.logger
        Task {
            if case .failure(let f) = await waiting.caller.call(
                op: "client_response", request: .object(body), timeout: timeout, emit: nil)
            {
                logger.warning("backend did not take the client's answer",
                               metadata: ["mcpg.plugin.id": "\(waiting.label)", "mcpg.error": "\(f.summary)"])
            }
        }
    }

    /// resources/subscribe and resources/unsubscribe (RES-6): authorized like resources/read, relayed to the
    /// backend serving the URI, audited; the session then gets (or stops getting) `notifications/resources/updated`.
    func subscription(_ method: String, id: RequestID, params: JSON?, identity: Identity, caller: Caller,
                      session: Session) async -> Reply {
        guard let uri = params?["uri"]?.stringValue else {
            return .frame(.errorResponse(id: id, error: .invalidParams("\(method) needs params.uri (a string)")))
        }
        let subscribe = method == "resources/subscribe"
        let found = catalog.resource(uri: uri)
        let reply = await relay(
            id: id, method: method, op: subscribe ? "subscribe" : "unsubscribe",
            target: PolicyTarget(action: "resources/read", type: found?.type ?? "resource", name: uri,
                                 backend: found?.entry.backend ?? ""),
            known: found != nil, unknown: RPCError(code: -32002, message: "Resource not found", data: ["uri": .string(uri)]),
            request: ["uri": .string(uri)], auditFields: ["uri": .string(uri)], identity: identity, caller: caller,
            session: session, emit: nil)
        if case .frame(.response) = reply {
            if subscribe { session.subscribe(uri) } else { session.unsubscribe(uri) }
        }
        return reply
    }

    /// completion/complete (COMP-1): authorized as using what is completed (`prompts/get` of the prompt,
    /// `resources/read` of the template), relayed to its backend, audited. A backend without completions answers
    /// an empty list.
    func complete(id: RequestID, params: JSON?, identity: Identity, caller: Caller, session: Session) async -> Reply {
        guard let ref = params?["ref"], let type = ref["type"]?.stringValue, params?["argument"]?.objectValue != nil
        else {
            return .frame(.errorResponse(id: id, error: .invalidParams("completion/complete needs params.ref and params.argument")))
        }
        let catalog = self.catalog
        var request = params?.objectValue ?? [:]
        let target: PolicyTarget
        let known: Bool
        switch type {
        case "ref/prompt":
            guard let name = ref["name"]?.stringValue else {
                return .frame(.errorResponse(id: id, error: .invalidParams("ref/prompt needs a name")))
            }
            let entry = catalog.prompt(named: name)
            if let entry { request["ref"] = ref.setting("name", to: .string(entry.upstreamKey)) }
            target = PolicyTarget(action: "prompts/get", type: "prompt", name: name, backend: entry?.backend ?? "")
            known = entry != nil
        case "ref/resource":
            guard let uri = ref["uri"]?.stringValue else {
                return .frame(.errorResponse(id: id, error: .invalidParams("ref/resource needs a uri")))
            }
            // The ref names a template (or a resource) by its listed string; a concrete URI is matched too.
            if let t = catalog.templates.first(where: { $0.key == uri }) {
                target = PolicyTarget(action: "resources/read", type: "resource_template", name: uri, backend: t.backend)
                known = true
            } else {
                let found = catalog.resource(uri: uri)
                target = PolicyTarget(action: "resources/read", type: found?.type ?? "resource", name: uri,
                                      backend: found?.entry.backend ?? "")
                known = found != nil
            }
        default:
            return .frame(.errorResponse(id: id, error: .invalidParams("Unknown ref type: \(type)")))
        }
        return await relay(
            id: id, method: "completion/complete", op: "complete", target: target, known: known,
            unknown: .invalidParams("Unknown reference"), request: request,
            auditFields: ["ref": ref], identity: identity, caller: caller, session: session, emit: nil,
            unsupported: ["completion": ["values": [], "hasMore": false]])
    }
}

extension JSON {
    /// This object with `key` set to `value` (other values are returned unchanged).
    func setting(_ key: String, to value: JSON) -> JSON {
        guard case .object(var o) = self else { return self }
        o[key] = value
        return .object(o)
    }
}
