import Logging
import MCPGFrames
import MCPGJSON

/// What a backend allowed to call tools (`calls_tools`) needs to do so as the caller it serves.
struct InnerCalls: Sendable {
    let identity: Identity
    let caller: Caller
    /// The correlation id of the call the backend is serving: inner calls' records name it as their `parent`.
    let correlationID: String
    let backend: String
    /// 1 for a backend serving a client's call; one more per nested pipeline.
    let depth: Int

    /// Pipelines calling pipelines stop here, so a loop in configuration cannot recurse without end.
    static let maxDepth = 8
}

extension Gateway {
    /// Runs a `tools/call` request a backend sent during a call, through the whole chain (policy, transforms,
    /// backend, audit) as the principal of the call it serves, and hands the answer back with `client_response`.
    /// A denied inner call is denied and recorded like any other.
    func innerCall(_ inner: InnerCalls, params: JSON?, pluginID: JSON, session: Session,
                   emit: (@Sendable (JSON) -> Bool)?, backend: Stage) {
        let timeout = settings.callTimeout
        let logger = self.logger
        Task {
            var body: JSONObject = ["jsonrpc": "2.0", "id": pluginID]
            if inner.depth >= InnerCalls.maxDepth {
                body["error"] = RPCError.invalidRequest(
                    "tools called from backends nest deeper than \(InnerCalls.maxDepth) levels").json
            } else {
                let reply = await self.callTool(
                    id: .string("inner"), params: params, identity: inner.identity, caller: inner.caller,
                    session: session, emit: emit, parent: inner)
                switch reply {
                case .frame(let frame):
                    let json = frame.json
                    if let result = json["result"] { body["result"] = result }
                    if let error = json["error"] { body["error"] = error }
                default:
                    body["error"] = RPCError.internalError("the tool call was cancelled").json
                }
            }
            if case .failure(let f) = await backend.caller.call(
                op: "client_response", request: .object(body), timeout: timeout, emit: nil)
            {
                logger.warning("backend did not take the answer to its tool call",
                               metadata: ["mcpg.plugin.id": "\(backend.label)", "mcpg.error": "\(f.summary)"])
            }
        }
    }
}
