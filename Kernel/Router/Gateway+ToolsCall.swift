import Logging
import MCPGFrames
import MCPGJSON

/// `_meta` key carrying the correlation id on every answer, so a call can be matched to its audit record.
public let correlationMetaKey = "dev.mcpg/correlationId"

extension Gateway {
    /// tools/call: policy → request transforms → backend → response transforms → durable audit record → answer.
    func callTool(id: RequestID, params: JSON?, identity: Identity, caller: Caller, session: Session,
                  emit: (@Sendable (JSON) -> Bool)?, task: String? = nil, parent: InnerCalls? = nil) async -> Reply {
        let start = ContinuousClock.now
        let cid = RandomID.correlation()
        guard let name = params?["name"]?.stringValue else {
            return .frame(.errorResponse(id: id, error: .invalidParams("tools/call needs params.name (a string)")))
        }
        var arguments = params?["arguments"] ?? .object([:])
        guard case .object = arguments else {
            return .frame(.errorResponse(id: id, error: .invalidParams("params.arguments must be an object")))
        }
        let entry = catalog.tool(named: name)
        let backendName = entry?.backend ?? ""

        var event = auditEvent(cid, type: "tools/call", session: session, caller: caller, identity: identity)
        event["tool"] = .string(name)
        event["backend"] = .string(backendName)
        if let task { event["task"] = .string(task) }
        if let parent {
            event["parent"] = .string(parent.correlationID)
            event["via"] = .string(parent.backend)
        }
        let trace = TraceContext.incoming(meta: params?["_meta"], headers: caller.headers)
        event["trace"] = trace.auditJSON
        let recordModes = settings.recordModes(name)
        recordModes.arguments.record(arguments, as: "arguments", into: &event)

        // Policy first, also for names no backend serves, so a denied caller cannot probe which tools exist.
        var context = baseContext(caller, session)
        context["arguments"] = arguments
        let verdict = await policy.decide(
            identity.principal, [PolicyTarget(action: "tools/call", name: name, backend: backendName)], context: context)[0]
        event["decision"] = verdict.auditJSON(mode: policy.mode)

        func finish(_ outcome: JSON, _ reply: Frame) async -> Reply {
            await recordThenAnswer(&event, outcome: outcome, reply: reply, id: id, cid: cid, start: start)
        }
        func failed(_ e: RPCError, detail: String) async -> Reply {
            await finish(["status": "error", "code": .int(Int64(e.code)), "message": .string(detail)],
                         .errorResponse(id: id, error: e.withCorrelation(cid)))
        }

        guard verdict.allow else { return await failed(.forbidden, detail: "denied by policy") }
        guard let entry, let backend = backends[entry.backend] else {
            return await failed(.invalidParams("Unknown tool: \(name)"), detail: "unknown tool")
        }
        if entry.tool["execution"]?["taskSupport"]?.stringValue == "required", task == nil {
            // TASK-3: a tool that requires a task is not run without one.
            return await failed(.methodNotFound("Tool \(name) must be called as a task"), detail: "task required")
        }

        let principalJSON = identity.principal.json
        for t in transforms {
            let r = await t.caller.call(
                op: "request",
                request: ["tool": .string(name), "backend": .string(backendName), "principal": principalJSON, "arguments": arguments],
                timeout: settings.callTimeout, emit: nil)
            switch r {
            case .success(let a) where a["arguments"]?.objectValue != nil:
                arguments = a["arguments"]!
            case .success:
                return await failed(.pluginFailure(), detail: "\(t.label): request transform answered without arguments")
            case .failure(let f):
                if case .cancelled = f.kind { return .none }
                return await failed(.pluginFailure(), detail: "\(t.label): \(f.summary)")
            }
        }

        var call: JSONObject = ["name": .string(entry.upstreamName), "arguments": arguments, "principal": principalJSON]
        // The backend continues the trace: its parent is the gateway's span.
        call["_meta"] = trace.forBackend(ModernMeta.forBackend(params?["_meta"]))
        let inner = store.settings(of: entry.backend)?.callsTools == true
            ? InnerCalls(identity: identity, caller: caller, correlationID: cid, backend: entry.backend,
                         depth: (parent?.depth ?? 0) + 1)
            : nil
        let forward = forwarder(emit, session: session, backend: backend, inner: inner)
        var result: JSON
        switch await backend.caller.call(op: "call_tool", request: .object(call), timeout: settings.callTimeout, emit: forward) {
        case .success(let r):
            guard case .object = r else {
                return await failed(.pluginFailure(), detail: "\(backend.label): result is not an object")
            }
            result = r
        case .failure(let f):
            switch f.kind {
            case .cancelled:
                event["outcome"] = ["status": "cancelled"]
                event["latency_us"] = .int(Int64((ContinuousClock.now - start) / .microseconds(1)))
                do { try await audit.record(.object(event)) } catch {
                    logger.critical("audit ledger write failed", metadata: ["mcpg.error.id": "\(cid)", "mcpg.error": "\(error)"])
                }
                return .none
            case .timeout:
                return await failed(.backendUnavailable("Backend did not answer in time"), detail: "\(backend.label): timed out")
            case .plugin(let code, let message) where RPCError.relayedFromBackends.contains(code):
                // The upstream's own answer (unknown tool, bad arguments, a capability it lacks): said as is.
                return await failed(RPCError(code: code, message: message), detail: "\(backend.label): \(message)")
            case .plugin, .malformed:
                return await failed(.backendUnavailable(), detail: "\(backend.label): \(f.summary)")
            }
        }

        for t in transforms {
            let r = await t.caller.call(
                op: "response",
                request: ["tool": .string(name), "backend": .string(backendName), "principal": principalJSON, "result": result],
                timeout: settings.callTimeout, emit: nil)
            switch r {
            case .success(let a) where a["result"]?.objectValue != nil:
                result = a["result"]!
            case .success:
                return await failed(.pluginFailure(), detail: "\(t.label): response transform answered without a result")
            case .failure(let f):
                return await failed(.pluginFailure(), detail: "\(t.label): \(f.summary)")
            }
        }

        recordModes.result.record(result, as: "result", into: &event)
        if case .object(var o) = result {
            var meta = o["_meta"]?.objectValue ?? [:]
            meta[correlationMetaKey] = .string(cid)
            o["_meta"] = .object(meta)
            result = .object(o)
        }
        let isError = result["isError"]?.boolValue == true
        return await finish(["status": .string(isError ? "tool_error" : "ok")], .response(id: id, result: result))
    }

    /// The members every audit record of a session's request starts with: who, from where, in which session.
    func auditEvent(_ cid: String, type: String, session: Session, caller: Caller, identity: Identity) -> JSONObject {
        [
            "id": .string(cid), "type": .string(type), "session": .string(session.id),
            "transport": .string(caller.transport), "peer": .string(caller.peer),
            "principal": identity.principal.json, "identity": identity.auditJSON,
        ]
    }

    /// Completes an audit `event` with its outcome and latency, makes it durable, and only then answers `reply`.
    /// No durable record, no answer: the client must not get a result nobody can prove.
    func recordThenAnswer(_ event: inout JSONObject, outcome: JSON, reply: Frame, id: RequestID, cid: String,
                          start: ContinuousClock.Instant) async -> Reply {
        event["outcome"] = outcome
        event["latency_us"] = .int(Int64((ContinuousClock.now - start) / .microseconds(1)))
        do {
            try await audit.record(.object(event))
        } catch {
            logger.critical("audit ledger write failed", metadata: ["mcpg.error.id": "\(cid)", "mcpg.error": "\(error)"])
            return .frame(.errorResponse(id: id, error: RPCError.unavailable.withCorrelation(cid)))
        }
        return .frame(reply)
    }
}
