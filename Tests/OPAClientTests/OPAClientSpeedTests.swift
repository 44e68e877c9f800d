import Foundation
import MCPGJSON
import Testing

@testable import OPAClient

/// Prints decisions per second against the local server; asserts only that the answers are right, never time.
/// Part of the serialized server suite, so no other test competes for the cores while it measures.
extension OPAClientServerTests {
    @Test func decisionsPerSecond() async throws {
        let server = try await startServer()
        defer { server.stop() }
        let shared: JSONObject = [
            "principal": "bob", "groups": ["eng", "eng/platform", "eng/platform/oncall"],
            "context": ["transport": "http", "peer": "127.0.0.1", "session": "s-1"],
        ]
        let clock = ContinuousClock()
        func rate(_ count: Int, _ elapsed: Duration) -> String {
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            return String(Int(Double(count) / max(seconds, 1e-9)))
        }

        // Uncached, per-query mode: one HTTP request per decision, 16 in flight.
        let perQuery = try OPAClient(
            config: .init(url: server.baseURL, path: "mcpg/authz/tool_allowed", timeoutMs: 60_000, cacheTTLMs: 0),
            log: { _, _ in })
        let few: [JSON] = (0..<300).map { ["tool": .string("t\($0)"), "action": "tools/call"] }
        var outcomes: [OPAClient.Outcome] = []
        let uncached = await clock.measure { outcomes = await perQuery.decide(queries: few, shared: shared) }
        #expect(outcomes == Array(repeating: .value(false), count: few.count))

        // Uncached, batch mode: one request for a 2,000-query list.
        let batch = try OPAClient(
            config: .init(url: server.baseURL, path: "mcpg/authz/batch", timeoutMs: 60_000, cacheTTLMs: 0, batch: true),
            log: { _, _ in })
        let many: [JSON] = (0..<2000).map { ["tool": .string($0 % 3 == 0 ? "c" : "t\($0)"), "action": "tools/list"] }
        let batched = await clock.measure { outcomes = await batch.decide(queries: many, shared: shared) }
        #expect(outcomes.count == many.count)
        #expect(outcomes.first == .value(true))

        // Cached: a 10,000-query call answered from the cache, and 10,000 one-query calls.
        let cached = try OPAClient(
            config: .init(
                url: server.baseURL, path: "mcpg/authz/batch", timeoutMs: 60_000, cacheTTLMs: 600_000, batch: true),
            log: { _, _ in })
        let list: [JSON] = (0..<10_000).map { ["tool": .string("t\($0)"), "action": "tools/list"] }
        _ = await cached.decide(queries: list, shared: shared)
        let cachedBatch = await clock.measure { outcomes = await cached.decide(queries: list, shared: shared) }
        #expect(outcomes == Array(repeating: .value(false), count: list.count))
        let cachedSingles = await clock.measure {
            for q in list.prefix(10_000) { _ = await cached.decide(queries: [q], shared: shared) }
        }

        print(
            """
            OPAClient decisions/s: uncached per-query \(rate(few.count, uncached)) (\(few.count) queries), \
            uncached batch \(rate(many.count, batched)) (\(many.count) in one request), \
            cached 10k-query call \(rate(list.count, cachedBatch)), cached 1-query calls \(rate(10_000, cachedSingles))
            """)
        await perQuery.close()
        await batch.close()
        await cached.close()
    }
}
