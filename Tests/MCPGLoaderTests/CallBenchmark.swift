import Foundation
import MCPGJSON
import MCPGLoader
import Testing

/// Measures (prints, does not assert time) the cost of one `PluginInstance.call` round trip with a 200-byte request.
@Suite struct CallBenchmark {
    func measure(_ p: PluginInstance, op: String, request: [UInt8], iterations: Int) async -> (ns: Double, ok: Int) {
        var ok = 0
        for _ in 0..<200 { _ = await p.call(op: op, request: request, timeout: .seconds(10)) }
        let start = ContinuousClock.now
        for _ in 0..<iterations where await p.call(op: op, request: request, timeout: .seconds(10)).ok { ok += 1 }
        let d = ContinuousClock.now - start
        let ns = Double(d.components.seconds) * 1e9 + Double(d.components.attoseconds) / 1e9
        return (ns / Double(iterations), ok)
    }

    @Test func nanosecondsPerCall() async throws {
        let logs = LogStore()
        let dir = try TempDir()
        let signer = TestSigner()
        for product in ["fixture_misbehave", "anonymous"] {
            try signer.sign(try dir.install(product: product, as: product))
        }
        let loader = PluginLoader(directory: dir.path, trustedKeys: signer.trusted, logger: logs.logger())
        let raw = try PluginInstance.create(
            loader.load(name: "fixture_misbehave"), config: [:], label: "bench.raw", logger: logs.logger())
        let kit = try PluginInstance.create(loader.load(name: "anonymous"), config: [:], label: "bench.kit", logger: logs.logger())

        var request = JSON.object([
            "transport": "http", "peer": ["address": "127.0.0.1:40000", "loopback": true],
            "headers": ["user-agent": "bench", "x-pad": .string(String(repeating: "p", count: 80))],
        ]).serialized()
        request += Array(repeating: UInt8(ascii: " "), count: max(0, 200 - request.count))
        #expect(request.count == 200)

        let n = 20_000
        let r = await measure(raw, op: "echo", request: request, iterations: n)
        let k = await measure(kit, op: "authenticate", request: request, iterations: n / 4)
        print("[bench] PluginInstance.call, 200-byte request: raw ABI echo \(Int(r.ns)) ns/call; PluginKit anonymous.authenticate \(Int(k.ns)) ns/call")
        #expect(r.ok == n)
        #expect(k.ok == n / 4)
    }
}
