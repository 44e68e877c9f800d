import MCPGFrames
import MCPGJSON
import MCPGRouter
import Synchronization
import Testing

@Suite struct Tasks {
    /// TASK-2, TASK-4, TASK-5: a task-augmented call is answered at once; tasks/result waits for the call and
    /// returns what the plain call would have, tagged with the task; the session hears the status change.
    @Test func aTaskRunsTheCallAndKeepsItsResult() async throws {
        let h = try Harness()
        let who = try await h.identity("alice")
        let s = try await h.open(who)
        let inbox = Inbox()
        _ = s.attachOutbound { m in inbox.messages.withLock { $0.append(m) }; return true }
        let created = try #require(await h.request(
            "tools/call", ["name": "echo", "arguments": ["text": "later"], "task": ["ttl": 60000]], as: who, session: s)?.result)
        let task = try #require(created["task"])
        let taskID = try #require(task["taskId"]?.stringValue)
        #expect(taskID.utf8.count == 32)
        #expect(task["ttl"] == 60000)
        let result = try #require(await h.request("tasks/result", ["taskId": .string(taskID)], as: who, session: s, id: 2)?.result)
        #expect(result["content"]?[0]?["text"] == "later")
        #expect(result["_meta"]?["io.modelcontextprotocol/related-task"]?["taskId"] == .string(taskID))
        #expect(result["_meta"]?[correlationMetaKey] != nil)
        let got = try #require(await h.request("tasks/get", ["taskId": .string(taskID)], as: who, session: s, id: 3)?.result)
        #expect(got["status"] == "completed")
        #expect(inbox.withLock { $0.contains { $0["method"] == "notifications/tasks/status" } })
        // The call is audited like any other, naming its task.
        #expect(h.trail.all.contains { $0["type"] == "tools/call" && $0["task"] == .string(taskID) })
        // Listed, and cancelling a finished task is -32602 (ERR-2).
        let list = try #require(await h.request("tasks/list", nil, as: who, session: s, id: 4)?.result)
        #expect(list["tasks"]?.arrayValue?.map { $0["taskId"] } == [.string(taskID)])
        #expect(await h.request("tasks/cancel", ["taskId": .string(taskID)], as: who, session: s, id: 5)?.error?.code == -32602)
    }

    /// TASK-4, TASK-7: cancelling a working task stops the call; another principal sees no such task.
    @Test func tasksAreCancelledAndBoundToTheirPrincipal() async throws {
        let h = try Harness()
        let alice = try await h.identity("alice")
        let bob = try await h.identity("bob")
        let s = try await h.open(alice)
        let sb = try await h.open(bob)
        let created = try #require(await h.request(
            "tools/call", ["name": "slow", "task": [:]], as: alice, session: s)?.result)
        let taskID = try #require(created["task"]?["taskId"])
        #expect(await h.request("tasks/get", ["taskId": taskID], as: bob, session: sb, id: 2)?.error?.code == -32602)
        #expect(await h.request("tasks/list", nil, as: bob, session: sb, id: 3)?.result?["tasks"] == .array([]))
        let cancelled = try #require(await h.request("tasks/cancel", ["taskId": taskID], as: alice, session: s, id: 4)?.result)
        #expect(cancelled["status"] == "cancelled")
        let result = await h.request("tasks/result", ["taskId": taskID], as: alice, session: s, id: 5)
        #expect(result?.error?.code == -32800)
        #expect(await h.request("tasks/get", ["taskId": "nope"], as: alice, session: s, id: 6)?.error?.code == -32602)
    }

    /// TASK-3, TASK-10: every tool is listed as runnable as a task.
    @Test func toolsAreListedAsTaskable() async throws {
        let h = try Harness()
        let who = try await h.identity("alice")
        let s = try await h.open(who)
        let r = try #require(await h.request("tools/list", nil, as: who, session: s)?.result)
        #expect(r["tools"]?.arrayValue?.allSatisfy { $0["execution"]?["taskSupport"] == "optional" } == true)
        let caps = try #require(await h.request("initialize", ["protocolVersion": "2025-11-25", "capabilities": [:],
                                                               "clientInfo": ["name": "t", "version": "1"]], as: who, session: nil)?.result)
        #expect(caps["capabilities"]?["tasks"]?["requests"]?["tools"]?["call"] != nil)
    }
}
