import MCPGFrames
import MCPGJSON
import MCPGRouter
import Synchronization
import Testing

@Suite struct Lifecycle {
    /// LIFE-3: a supported version is echoed; an unknown one gets our latest.
    @Test func versionNegotiation() async throws {
        let h = try Harness()
        let who = try await h.identity("alice")
        for (asked, expected) in [("2025-06-18", "2025-06-18"), ("1999-01-01", "2025-11-25")] {
            let f = await h.request("initialize", ["protocolVersion": .string(asked), "capabilities": [:]], as: who, session: nil)
            #expect(f?.result?["protocolVersion"] == .string(expected))
            #expect(f?.result?["capabilities"]?["tools"] != nil)
        }
    }

    /// PING-1 works before initialize; other methods need a session.
    @Test func pingBeforeInitializeAndNothingElse() async throws {
        let h = try Harness()
        let who = try await h.identity("alice")
        #expect(await h.request("ping", nil, as: who, session: nil)?.result == .object([:]))
        #expect(await h.request("tools/list", nil, as: who, session: nil)?.error?.code == -32600)
    }

    /// ERR-1: unknown methods are -32601.
    @Test func unknownMethod() async throws {
        let h = try Harness()
        let who = try await h.identity("alice")
        let s = try await h.open(who)
        #expect(await h.request("no/such-method", nil, as: who, session: s)?.error?.code == -32601)
    }
}

@Suite struct IdentityChain {
    @Test func abstainFallsThroughRejectStops() async throws {
        let always = FakeCaller { _, _, _ in .success(["result": "authenticated", "principal": ["id": "fallback"], "reason": "x"]) }
        let h = try Harness(identity: [headerIdentity, always])
        switch await h.gateway.authenticate(h.caller([:])) {
        case .success(let i):
            #expect(i.principal.id == "fallback")
            #expect(i.abstained.map(\.plugin) == ["identity[0]"])
        case .failure: Issue.record("abstain did not fall through")
        }
        switch await h.gateway.authenticate(h.caller(["x-user": "bad"])) {
        case .success: Issue.record("reject did not stop the chain")
        case .failure(let f): #expect(f.plugin == "identity[0]")
        }
        #expect(h.trail.all.last?["type"] == "authentication")
        #expect(h.trail.all.last?["decision"]?["effect"] == "reject")
    }

    @Test func allAbstainIsUnauthenticatedAndBrokenPluginFailsClosed() async throws {
        let broken = FakeCaller { _, _, _ in .failure(StageFailure(.timeout)) }
        let h = try Harness(identity: [headerIdentity, broken])
        guard case .failure = await h.gateway.authenticate(h.caller([:])) else {
            Issue.record("a broken identity plugin let the caller in")
            return
        }
        let h2 = try Harness(identity: [headerIdentity])
        guard case .failure(let f) = await h2.gateway.authenticate(h2.caller([:])) else {
            Issue.record("nobody authenticated, yet the caller got in")
            return
        }
        #expect(f.plugin == nil)
    }
}

@Suite struct ToolsList {
    @Test func deniedToolsAreHidden() async throws {
        let h = try Harness()
        let alice = try await h.identity("alice")
        let s = try await h.open(alice)
        let names = await h.request("tools/list", nil, as: alice, session: s)?.result?["tools"]?.arrayValue?.compactMap { $0["name"]?.stringValue }
        #expect(names == ["echo", "slow", "progress"])
        let admin = try await h.identity("root", groups: "admins")
        let s2 = try await h.open(admin)
        let all = await h.request("tools/list", nil, as: admin, session: s2)?.result?["tools"]?.arrayValue?.count
        #expect(all == 4)
    }

    /// PAGE-1, PAGE-2, GW-4: gateway cursors walk every page; forged ones are -32602.
    @Test func paginationWithGatewayCursors() async throws {
        let h = try Harness(tools: (0..<7).map { "t\($0)" }, pageSize: 3)
        let who = try await h.identity("alice")
        let s = try await h.open(who)
        var seen: [String] = []
        var cursor: JSON?
        var pages = 0
        repeat {
            let f = await h.request("tools/list", cursor.map { ["cursor": $0] }, as: who, session: s)
            let r = try #require(f?.result)
            seen += r["tools"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
            cursor = r["nextCursor"]
            pages += 1
        } while cursor != nil && pages < 10
        #expect(seen == (0..<7).map { "t\($0)" })
        #expect(pages == 3)
        for bad: JSON in ["garbage", "00000000", 5, "0000000300000001000000000000000000000000"] {
            #expect(await h.request("tools/list", ["cursor": bad], as: who, session: s)?.error?.code == -32602)
        }
    }
}

@Suite struct ToolsCall {
    @Test func allowedCallIsAnsweredAndAuditedWithTheSameCorrelationID() async throws {
        let h = try Harness()
        let who = try await h.identity("alice")
        let s = try await h.open(who)
        let f = await h.request("tools/call", ["name": "echo", "arguments": ["text": "hi"]], as: who, session: s)
        let r = try #require(f?.result)
        #expect(r["content"]?[0]?["text"] == "hi")
        let cid = try #require(r["_meta"]?[correlationMetaKey]?.stringValue)
        let event = try #require(h.trail.all.last)
        #expect(event["id"] == .string(cid))
        #expect(event["type"] == "tools/call")
        #expect(event["decision"]?["effect"] == "allow")
        #expect(event["outcome"]?["status"] == "ok")
        #expect(event["principal"]?["id"] == "alice")
    }

    /// A denied call names no rule, backend or existence; the audit record has the reasons.
    @Test func deniedCallRevealsNothing() async throws {
        let h = try Harness()
        let who = try await h.identity("alice")
        let s = try await h.open(who)
        for name in ["secret.reset", "secret.does-not-exist"] {
            let e = try #require(await h.request("tools/call", ["name": .string(name)], as: who, session: s)?.error)
            #expect(e.code == -32003)
            #expect(e.message == "Not permitted")
            #expect(e.data?.objectValue?.keys == ["correlationId"])
            #expect(h.trail.all.last?["decision"]?["reasons"] == ["policy[0]:no-secrets"])
        }
        // Allowed by policy but served by no backend: the ordinary unknown-tool error (ERR-2).
        #expect(await h.request("tools/call", ["name": "nope"], as: who, session: s)?.error?.code == -32602)
    }

    @Test func policyFailureDeniesAndAuditFailureWithholdsTheAnswer() async throws {
        let broken = FakeCaller { _, _, _ in .failure(StageFailure(.plugin(code: 1, message: "boom"))) }
        let h = try Harness(policy: [prefixPolicy, broken])
        let who = try await h.identity("alice")
        let s = try await h.open(who)
        #expect(await h.request("tools/call", ["name": "echo"], as: who, session: s)?.error?.code == -32003)

        let h2 = try Harness()
        let who2 = try await h2.identity("alice")
        let s2 = try await h2.open(who2)
        h2.trail.failing.withLock { $0 = true }
        let e = await h2.request("tools/call", ["name": "echo", "arguments": ["text": "x"]], as: who2, session: s2)?.error
        #expect(e?.code == -32005)
    }

    @Test func badParams() async throws {
        let h = try Harness()
        let who = try await h.identity("alice")
        let s = try await h.open(who)
        #expect(await h.request("tools/call", ["arguments": [:]], as: who, session: s)?.error?.code == -32602)
        #expect(await h.request("tools/call", ["name": "echo", "arguments": [1]], as: who, session: s)?.error?.code == -32602)
    }

    @Test func transformsRewriteArgumentsAndResults() async throws {
        let upper = FakeCaller { op, req, _ in
            if op == "request" { return .success(["arguments": ["text": .string((req["arguments"]?["text"]?.stringValue ?? "") + "!")]]) }
            var r = req["result"]!.objectValue!
            r["content"] = [["type": "text", "text": .string((req["result"]?["content"]?[0]?["text"]?.stringValue ?? "").uppercased())]]
            return .success(["result": .object(r)])
        }
        let h = try Harness(transforms: [upper])
        let who = try await h.identity("alice")
        let s = try await h.open(who)
        let r = await h.request("tools/call", ["name": "echo", "arguments": ["text": "hi"]], as: who, session: s)?.result
        #expect(r?["content"]?[0]?["text"] == "HI!")
    }

    /// CANC-1: a cancelled request gets no answer, and the ledger says so.
    @Test func cancellationStopsTheCall() async throws {
        let h = try Harness()
        let who = try await h.identity("alice")
        let s = try await h.open(who)
        let call = Task { await h.request("tools/call", ["name": "slow"], as: who, session: s, id: 42) }
        try await Task.sleep(for: .milliseconds(100))
        _ = await h.gateway.handle(.notification(method: "notifications/cancelled", params: ["requestId": 42]),
                                   identity: who, caller: h.caller([:]), session: s)
        let answer = await call.value
        #expect(answer == nil)
        #expect(h.trail.all.last?["outcome"]?["status"] == "cancelled")
    }

    /// Notifications a backend emits reach the client; requests are not relayed (their answers have no route yet).
    @Test func emittedNotificationsAreForwarded() async throws {
        let h = try Harness()
        let who = try await h.identity("alice")
        let s = try await h.open(who)
        let got = Mutex<[JSON]>([])
        let r = await h.request("tools/call", ["name": "progress"], as: who, session: s) { m in
            got.withLock { $0.append(m) }
            return true
        }
        #expect(r?.result?["content"]?[0]?["text"] == "done")
        #expect(got.withLock { $0.map { $0["method"] } } == ["notifications/progress"])
    }

    /// SEC-3: a session belongs to the principal that created it.
    @Test func sessionsAreBoundToTheirPrincipal() async throws {
        let h = try Harness()
        let alice = try await h.identity("alice")
        let s = try await h.open(alice)
        #expect(h.gateway.sessions.lookup(s.id, principal: "alice") != nil)
        #expect(h.gateway.sessions.lookup(s.id, principal: "mallory") == nil)
        #expect(!h.gateway.sessions.remove(s.id, principal: "mallory"))
        #expect(h.gateway.sessions.remove(s.id, principal: "alice"))
        #expect(h.gateway.sessions.lookup(s.id, principal: "alice") == nil)
    }
}

@Suite struct ListCache {
    /// A list filtered while the policy plugin was failing is empty (fail closed) and is not cached: once the
    /// plugin recovers, the same principal sees its tools.
    @Test func failClosedListsAreNotCached() async throws {
        let failing = Mutex(true)
        let flaky = FakeCaller { op, req, emit in
            if failing.withLock({ $0 }) { return .failure(StageFailure(.timeout)) }
            return await prefixPolicy.call(op: op, request: req, timeout: .seconds(1), emit: emit)
        }
        let h = try Harness(policy: [flaky])
        let who = try await h.identity("alice")
        let s = try await h.open(who)
        #expect(await h.request("tools/list", nil, as: who, session: s)?.result?["tools"]?.arrayValue?.count == 0)
        failing.withLock { $0 = false }
        #expect(await h.request("tools/list", nil, as: who, session: s, id: 2)?.result?["tools"]?.arrayValue?.count == 3)
    }
}

@Suite struct RequestIDs {
    /// BASE-2: an id already in flight in the session is refused before anything runs (no second tool call).
    @Test func duplicateInFlightIDIsRefusedBeforeItRuns() async throws {
        let h = try Harness()
        let who = try await h.identity("alice")
        let s = try await h.open(who)
        let first = Task { await h.request("tools/call", ["name": "slow"], as: who, session: s, id: 7) }
        try await Task.sleep(for: .milliseconds(100))
        let before = h.trail.all.count
        let dup = await h.request("tools/call", ["name": "echo", "arguments": ["text": "x"]], as: who, session: s, id: 7)
        #expect(dup?.error?.code == -32600)
        #expect(dup?.error?.message.contains("already in use") == true)
        #expect(h.trail.all.count == before, "the refused request must not reach policy, backend or ledger")
        _ = await h.gateway.handle(.notification(method: "notifications/cancelled", params: ["requestId": 7]),
                                   identity: who, caller: h.caller([:]), session: s)
        #expect(await first.value == nil)
        // Once the first is over, the id may be used again.
        let again = await h.request("tools/call", ["name": "echo", "arguments": ["text": "y"]], as: who, session: s, id: 7)
        #expect(again?.result?["content"]?[0]?["text"] == "y")
    }
}

@Suite struct CorrelationIDs {
    /// Every answered call gets its own 16-hex-digit correlation id, the same in the answer and its record.
    @Test func distinctAndMatching() async throws {
        let h = try Harness()
        let who = try await h.identity("alice")
        let s = try await h.open(who)
        var seen = Set<String>()
        for i in 0..<300 {
            let r = await h.request("tools/call", ["name": "echo", "arguments": ["text": "x"]], as: who, session: s, id: Int64(100 + i))
            let cid = try #require(r?.result?["_meta"]?[correlationMetaKey]?.stringValue)
            #expect(cid.count == 16 && cid.allSatisfy(\.isHexDigit))
            #expect(h.trail.all.last?["id"] == .string(cid))
            seen.insert(cid)
        }
        #expect(seen.count == 300)
    }
}

@Suite struct SessionLimit {
    /// Sessions are bounded: past the limit `initialize` is refused (-32005) until one ends.
    @Test func initializeIsRefusedAtTheLimitUntilOneEnds() async throws {
        let h = try Harness(sessionLimit: 2)
        let who = try await h.identity("alice")
        let first = try await h.open(who)
        _ = try await h.open(who)
        await #expect(throws: RPCError.self) { _ = try await h.open(who) }
        let refused = await h.request("initialize", ["protocolVersion": "2025-11-25", "capabilities": [:]], as: who, session: nil)
        #expect(refused?.error?.code == -32005)
        #expect(h.gateway.sessions.remove(first.id, principal: "alice"))
        _ = try await h.open(who)
        #expect(h.gateway.sessions.count == 2)
    }
}
