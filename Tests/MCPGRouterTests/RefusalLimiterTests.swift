import MCPGJSON
import Testing

@testable import MCPGRouter

@Suite struct RefusalLimiting {
    let t0 = ContinuousClock.now

    @Test func theFirstRefusalsPerSourceAreRecordedAndTheRestSummarizedWhenTheWindowEnds() {
        let limiter = RefusalLimiter(RefusalLimits(perSource: 3, window: .seconds(60)))
        var recorded = 0
        for i in 0..<10 {
            let (record, ended) = limiter.admit(
                peer: "192.0.2.7", reason: i % 2 == 0 ? "unknown key" : "expired", now: t0 + .seconds(i),
                ts: "t\(i)")
            #expect(ended == nil)
            if record { recorded += 1 }
        }
        #expect(recorded == 3)
        // Another source has its own allowance.
        #expect(limiter.admit(peer: "192.0.2.8", reason: "r", now: t0, ts: "x").record)
        // Nothing has ended inside the window.
        #expect(limiter.drain(now: t0 + .seconds(59)).isEmpty)
        // The next refusal after the window is recorded, after the summary of the window before it.
        let (record, ended) = limiter.admit(peer: "192.0.2.7", reason: "expired", now: t0 + .seconds(61), ts: "t61")
        #expect(record)
        let summary = ended
        #expect(summary?.source == "192.0.2.7")
        #expect(summary?.count == 7)
        #expect(summary?.first == "t3")
        #expect(summary?.last == "t9")
        #expect(summary?.reasons == ["expired": 4, "unknown key": 3])
    }

    @Test func drainReturnsEndedWindowsWithRefusalsLeftOutAndForgetsTheRest() {
        let limiter = RefusalLimiter(RefusalLimits(perSource: 1, window: .seconds(10)))
        for i in 0..<3 { _ = limiter.admit(peer: "198.51.100.1", reason: "r", now: t0, ts: "a\(i)") }
        _ = limiter.admit(peer: "198.51.100.2", reason: "r", now: t0, ts: "b")  // within its allowance
        _ = limiter.admit(peer: "198.51.100.3", reason: "r", now: t0 + .seconds(8), ts: "c")
        _ = limiter.admit(peer: "198.51.100.3", reason: "r", now: t0 + .seconds(8), ts: "c2")
        let ended = limiter.drain(now: t0 + .seconds(10))
        #expect(ended.map(\.source) == ["198.51.100.1"])
        #expect(ended.first?.count == 2)
        #expect(limiter.trackedSources == 1, "ended windows are forgotten, with or without a summary")
        let rest = limiter.drain(now: t0 + .seconds(10), all: true)
        #expect(rest.map(\.source) == ["198.51.100.3"])
        #expect(rest.first?.count == 1)
        #expect(limiter.trackedSources == 0)
    }

    @Test func ipv6AddressesCountPerSlash64() {
        #expect(RefusalLimiter.source(of: "2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64")
        #expect(RefusalLimiter.source(of: "2001:db8:1:2:bbbb:cccc:dddd:9") == "2001:db8:1:2::/64")
        #expect(RefusalLimiter.source(of: "2001:db8:1:3::1") == "2001:db8:1:3::/64")
        #expect(RefusalLimiter.source(of: "::1") == "::1")
        #expect(RefusalLimiter.source(of: "::ffff:192.0.2.1") == "::ffff:192.0.2.1")
        #expect(RefusalLimiter.source(of: "203.0.113.9") == "203.0.113.9")
        #expect(RefusalLimiter.source(of: "stdio") == "stdio")
        let limiter = RefusalLimiter(RefusalLimits(perSource: 1, window: .seconds(60)))
        #expect(limiter.admit(peer: "2001:db8:1:2::a", reason: "r", now: t0, ts: "x").record)
        #expect(!limiter.admit(peer: "2001:db8:1:2::b", reason: "r", now: t0, ts: "y").record)
    }

    @Test func sourcesBeyondTheTableShareOneAllowance() {
        let limiter = RefusalLimiter(RefusalLimits(perSource: 1, window: .seconds(60)), maxSources: 2)
        #expect(limiter.admit(peer: "192.0.2.1", reason: "r", now: t0, ts: "1").record)
        #expect(limiter.admit(peer: "192.0.2.2", reason: "r", now: t0, ts: "2").record)
        #expect(limiter.admit(peer: "192.0.2.3", reason: "r", now: t0, ts: "3").record)
        #expect(!limiter.admit(peer: "192.0.2.4", reason: "r", now: t0, ts: "4").record)
        #expect(limiter.trackedSources == 3)
        let ended = limiter.drain(now: t0, all: true)
        #expect(ended.map(\.source) == [RefusalLimiter.overflowSource])
    }

    @Test func distinctReasonsAreBounded() {
        let limiter = RefusalLimiter(RefusalLimits(perSource: 1, window: .seconds(60)))
        for i in 0...20 { _ = limiter.admit(peer: "192.0.2.1", reason: "reason \(i)", now: t0, ts: "t") }
        let summary = limiter.drain(now: t0, all: true).first
        #expect(summary?.count == 20)
        #expect(summary?.reasons.count == RefusalLimiter.maxReasons + 1)
        #expect(summary?.reasons["other"] == 20 - RefusalLimiter.maxReasons)
    }

    /// Through the gateway: refusals past the allowance have no record of their own, and the summary written at
    /// shutdown counts them.
    @Test func theGatewayRecordsTheAllowanceThenOneSummary() async throws {
        let h = try Harness(refusalLimits: RefusalLimits(perSource: 2, window: .seconds(3600)))
        for _ in 0..<5 {
            guard case .failure = await h.gateway.authenticate(h.caller([:])) else {
                Issue.record("a caller without credentials was let in")
                return
            }
        }
        #expect(h.trail.all.count == 2)
        #expect(h.trail.all.allSatisfy { $0["type"] == "authentication" && $0["refusals"] == nil })
        await h.gateway.flushRefusalSummaries()
        #expect(h.trail.all.count == 2, "the window has not ended")
        await h.gateway.flushRefusalSummaries(all: true)
        let summary = try #require(h.trail.all.last)
        #expect(h.trail.all.count == 3)
        #expect(summary["type"] == "authentication")
        #expect(summary["peer"] == "127.0.0.1")
        #expect(summary["decision"]?["effect"] == "reject")
        #expect(summary["refusals"]?["count"] == 3)
        #expect(summary["refusals"]?["reasons"]?.objectValue?.count == 1)
    }
}
