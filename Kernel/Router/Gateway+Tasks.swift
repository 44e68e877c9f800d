import Logging
import MCPGFrames
import MCPGJSON
import Synchronization

/// `_meta` key tying a message to its task (TASK-6).
let relatedTaskMetaKey = "io.modelcontextprotocol/related-task"

/// Task-augmented tools/call run by the gateway itself (TASK-1…7): any tool of any backend can run as a task.
/// A task belongs to the principal that created it (TASK-7); its id is 128 random bits.
public final class TaskTable: Sendable {
    struct Record {
        var owner: String
        var status: String
        var statusMessage: String?
        var createdAt: String
        var lastUpdatedAt: String
        var ttlMs: Int64
        var created: ContinuousClock.Instant
        var finished: ContinuousClock.Instant?
        /// The answer the plain tools/call would have given (TASK-4).
        var answer: Frame?
        var runner: Task<Void, Never>?
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    let records = Mutex<[String: Record]>([:])
    static let defaultTTLms: Int64 = 3_600_000
    static let maxTTLms: Int64 = 86_400_000
    static let limitPerOwner = 1000

    public init() {}

    static let terminal: Set<String> = ["completed", "failed", "cancelled"]

    func json(_ id: String, _ r: Record) -> JSON {
        var o: JSONObject = [
            "taskId": .string(id), "status": .string(r.status), "createdAt": .string(r.createdAt),
            "lastUpdatedAt": .string(r.lastUpdatedAt), "ttl": .int(r.ttlMs), "pollInterval": 500,
        ]
        if let m = r.statusMessage { o["statusMessage"] = .string(m) }
        return .object(o)
    }

    /// The task's JSON if it exists and belongs to `owner`.
    func get(_ id: String, owner: String) -> JSON? {
        records.withLock { t -> JSON? in
            // Spelled out: JSON is nil-literal expressible, so a bare `nil` here would be JSON's null.
            guard let r = t[id], r.owner == owner else { return Optional<JSON>.none }
            return json(id, r)
        }
    }

    /// Drops tasks whose time to live ran out.
    func sweep(now: ContinuousClock.Instant = .now) {
        records.withLock { t in
            t = t.filter { _, r in now - r.created < .milliseconds(r.ttlMs) || !Self.terminal.contains(r.status) }
        }
    }
}

extension Gateway {
    /// The task capability of the handshake era (LIFE-8): tools/call may be augmented; tasks can be listed and
    /// cancelled.
    static let tasksCapability: JSON = ["list": [:], "cancel": [:], "requests": ["tools": ["call": [:]]]]

    /// tools/call with `params.task`: answered at once with the created task; the call runs on, its progress and
    /// requests going to the session's GET stream tagged with the task (TASK-2, TASK-6).
    func callToolAsTask(id: RequestID, params: JSON, identity: Identity, caller: Caller, session: Session) -> Reply {
        tasks.sweep()
        let requested = params["task"]?["ttl"]?.intValue ?? TaskTable.defaultTTLms
        let ttl = min(max(requested, 1000), TaskTable.maxTTLms)
        let taskID = RandomID.hex(bytes: 16)
        let now = UTCTimestamp.now()
        let owner = identity.principal.id
        let full = tasks.records.withLock { t -> Bool in
            if t.values.filter({ $0.owner == owner && !TaskTable.terminal.contains($0.status) }).count >= TaskTable.limitPerOwner {
                return true
            }
            t[taskID] = TaskTable.Record(owner: owner, status: "working", createdAt: now, lastUpdatedAt: now,
                                         ttlMs: ttl, created: .now)
            return false
        }
        if full {
            return .frame(.errorResponse(id: id, error: .invalidRequest("Too many tasks in progress")))
        }
        var inner = params.objectValue ?? [:]
        inner["task"] = nil
        let plain = JSON.object(inner)
        let related: JSON = ["taskId": .string(taskID)]
        let toClient: @Sendable (JSON) -> Bool = { message in
            guard case .object(var m) = message else { return false }
            var p = m["params"]?.objectValue ?? [:]
            var meta = p["_meta"]?.objectValue ?? [:]
            meta[relatedTaskMetaKey] = related
            p["_meta"] = .object(meta)
            m["params"] = .object(p)
            return session.notify(.object(m))
        }
        let runner = Task {
            let reply = await self.callTool(id: id, params: plain, identity: identity, caller: caller, session: session,
                                            emit: toClient, task: taskID)
            let frame: Frame
            switch reply {
            case .frame(let f): frame = f
            default: frame = .errorResponse(id: id, error: RPCError(code: -32800, message: "Request cancelled"))
            }
            self.finishTask(taskID, frame, session: session)
        }
        tasks.records.withLock { $0[taskID]?.runner = runner }
        let task = tasks.get(taskID, owner: owner) ?? .null
        return .frame(.response(id: id, result: ["task": task]))
    }

    func finishTask(_ taskID: String, _ answer: Frame, session: Session) {
        let (waiters, task) = tasks.records.withLock { t -> ([CheckedContinuation<Void, Never>], JSON?) in
            guard var r = t[taskID], !TaskTable.terminal.contains(r.status) else { return ([], nil) }
            switch answer {
            case .response(_, let result) where result["isError"]?.boolValue == true: r.status = "failed"
            case .response: r.status = "completed"
            default: r.status = "failed"
            }
            if case .errorResponse(_, let e) = answer { r.statusMessage = e.message }
            r.answer = answer
            r.lastUpdatedAt = UTCTimestamp.now()
            r.finished = .now
            let w = r.waiters
            r.waiters = []
            t[taskID] = r
            return (w, tasks.json(taskID, r))
        }
        for w in waiters { w.resume() }
        // TASK-5: a status notification (clients must not rely on it).
        if let task { session.notify(["jsonrpc": "2.0", "method": "notifications/tasks/status", "params": task]) }
    }

    /// tasks/get, tasks/result, tasks/list, tasks/cancel (TASK-4), for the caller's own tasks only (TASK-7).
    func taskRequest(_ method: String, id: RequestID, params: JSON?, identity: Identity) async -> Reply {
        let owner = identity.principal.id
        func fail(_ m: String) -> Reply { .frame(.errorResponse(id: id, error: .invalidParams(m))) }
        if method == "tasks/list" {
            tasks.sweep()
            var offset = 0
            if let c = params?["cursor"] {
                guard let s = c.stringValue, let o = cursors.decode(s, generation: 0) else { return fail("Invalid cursor") }
                offset = o
            }
            let mine = tasks.records.withLock { t in
                t.filter { $0.value.owner == owner }.sorted { $0.value.created < $1.value.created }.map { tasks.json($0.key, $0.value) }
            }
            guard offset <= mine.count else { return fail("Invalid cursor") }
            let end = min(mine.count, offset + settings.pageSize)
            var result: JSONObject = ["tasks": .array(Array(mine[offset..<end]))]
            if end < mine.count { result["nextCursor"] = .string(cursors.encode(offset: end, generation: 0)) }
            return .frame(.response(id: id, result: .object(result)))
        }
        guard let taskID = params?["taskId"]?.stringValue, tasks.get(taskID, owner: owner) != nil else {
            // ERR-2: unknown, expired or someone else's task.
            return fail("Unknown task")
        }
        switch method {
        case "tasks/get":
            return .frame(.response(id: id, result: tasks.get(taskID, owner: owner) ?? .null))
        case "tasks/cancel":
            let runner = tasks.records.withLock { t -> Task<Void, Never>?? in
                guard var r = t[taskID], !TaskTable.terminal.contains(r.status) else { return nil }
                r.status = "cancelled"
                r.statusMessage = "Cancelled by the client"
                r.lastUpdatedAt = UTCTimestamp.now()
                r.finished = .now
                r.answer = .errorResponse(id: id, error: RPCError(code: -32800, message: "Task cancelled"))
                let w = r.waiters
                r.waiters = []
                t[taskID] = r
                for c in w { c.resume() }
                return .some(r.runner)
            }
            guard let runner else { return fail("Task is already finished") }
            runner?.cancel()
            return .frame(.response(id: id, result: tasks.get(taskID, owner: owner) ?? .null))
        case "tasks/result":
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = tasks.records.withLock { t -> Bool in
                    guard let r = t[taskID], !TaskTable.terminal.contains(r.status) else { return true }
                    t[taskID]?.waiters.append(c)
                    return false
                }
                if now { c.resume() }
            }
            let answer = tasks.records.withLock { $0[taskID]?.answer }
            let related: JSON = ["taskId": .string(taskID)]
            switch answer {
            case .response(_, .object(var r))?:
                var meta = r["_meta"]?.objectValue ?? [:]
                meta[relatedTaskMetaKey] = related
                r["_meta"] = .object(meta)
                return .frame(.response(id: id, result: .object(r)))
            case .errorResponse(_, let e)?:
                return .frame(.errorResponse(id: id, error: e))
            default:
                return .frame(.errorResponse(id: id, error: .internalError("Task has no result")))
            }
        default:
            return .frame(.errorResponse(id: id, error: .methodNotFound(method)))
        }
    }
}
