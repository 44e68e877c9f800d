import MCPGLoader
import Testing

@Suite struct PluginPinTests {
    @Test func parsesAndPrintsTheTrustedComment() {
        let pin = PluginPin(trustedComment: "mcpg-plugin name=rules version=1.2.0 abi=1")
        #expect(pin == PluginPin(name: "rules", version: "1.2.0", abiMajor: 1))
        #expect(pin?.trustedComment == "mcpg-plugin name=rules version=1.2.0 abi=1")
        // Tabs separate too, order is free, unknown fields are ignored.
        #expect(PluginPin(trustedComment: "mcpg-plugin\tabi=1 version=2 name=x built=ci") == PluginPin(name: "x", version: "2"))
    }

    @Test func rejectsCommentsThatPinNothing() {
        #expect(PluginPin(trustedComment: "timestamp:1700000000\tfile:rules.so\thashed") == nil)
        #expect(PluginPin(trustedComment: "mcpg-plugin name=rules version=1.2.0") == nil)
        #expect(PluginPin(trustedComment: "mcpg-plugin name=rules version=1.2.0 abi=one") == nil)
        #expect(PluginPin(trustedComment: "mcpg-plugin name= version=1 abi=1") == nil)
        #expect(PluginPin(trustedComment: "mcpg-plugin name=rules junk version=1 abi=1") == nil)
    }
}

@Suite struct PluginMetricsTests {
    @Test func countersGaugesAndHistograms() {
        let m = PluginMetrics()
        #expect(m.record(.counter, name: "c", value: 2, labels: [("b", "2"), ("a", "1")]))
        #expect(m.record(.counter, name: "c", value: 3, labels: [("a", "1"), ("b", "2")]))
        #expect(m.sample(name: "c", labels: [("a", "1"), ("b", "2")])?.value == 5)
        #expect(!m.record(.counter, name: "c", value: -1, labels: [("a", "1"), ("b", "2")]), "counters only grow")
        #expect(!m.record(.gauge, name: "c", value: 1, labels: [("a", "1"), ("b", "2")]), "a series keeps its kind")
        m.record(.gauge, name: "g", value: 7)
        m.record(.gauge, name: "g", value: 4)
        #expect(m.sample(name: "g")?.value == 4)
        m.record(.histogram, name: "h", value: 0.02)
        m.record(.histogram, name: "h", value: 3)
        let h = m.sample(name: "h")
        #expect(h?.count == 2)
        #expect(h?.bucketCounts[PluginMetrics.buckets.firstIndex(of: 0.025)!] == 1)
        #expect(h?.bucketCounts.last == 2)
        #expect(!m.record(.gauge, name: "nan", value: .nan))
        #expect(m.snapshot().map(\.key.name) == ["c", "g", "h"])
    }
}
