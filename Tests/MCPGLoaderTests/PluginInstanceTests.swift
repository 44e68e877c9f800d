import Foundation
import Logging
import MCPGJSON
import MCPGLoader
import Synchronization
import Testing

/// The call bridge: complete/emit/cancel/host table, against the raw-ABI fixture and a PluginKit plugin.
@Suite struct PluginInstanceTests {
    let logs = LogStore()

    func instance(_ product: String, label: String, config: JSON = .object([:]), metrics: PluginMetrics = .shared)
        throws -> PluginInstance
    {
        let dir = try TempDir()
        let signer = TestSigner()
        try signer.sign(try dir.install(product: product, as: product))
        let plugin = try PluginLoader(directory: dir.path, trustedKeys: signer.trusted, logger: logs.logger()).load(name: product)
        return try PluginInstance.create(plugin, config: config, label: label, logger: logs.logger(), metrics: metrics)
    }

    @Test func echoRoundTrip() async throws {
        let p = try instance("fixture_misbehave", label: "backends.echo")
        let request = Array(#"{"hello":"world","n":[1,2,3]}"#.utf8)
        let reply = await p.call(op: "echo", request: request, timeout: .seconds(5))
        #expect(reply.ok)
        #expect(reply.body == request)
    }

    @Test func secondCompleteIsIgnoredAndLogged() async throws {
        let p = try instance("fixture_misbehave", label: "backends.twice")
        let reply = await p.call(op: "twice", request: [], timeout: .seconds(5))
        #expect(reply.ok)
        #expect(reply.json == ["n": 1])
        let errors = logs.all.filter { $0.level == .error && $0.metadata["mcpg.plugin.id"] == "backends.twice" }
        #expect(errors.count == 1)
        #expect(errors.first?.message.contains("completed twice") == true)
    }

    @Test func neverCompletingCallTimesOutAndCancels() async throws {
        let p = try instance("fixture_misbehave", label: "backends.never")
        let before = await p.call(op: "stats", request: [], timeout: .seconds(5)).json?["cancels"]?.intValue ?? -1
        let start = ContinuousClock.now
        let reply = await p.call(op: "never", request: [], timeout: .milliseconds(100))
        let elapsed = ContinuousClock.now - start
        #expect(!reply.ok)
        #expect(reply.isTimeout)
        #expect(reply.errorMessage?.contains("backends.never") == true)
        // A liveness bound, not a speed target: the whole suite shares two cores with upstream servers starting.
        #expect(elapsed >= .milliseconds(100) && elapsed < .seconds(60))
        let after = await p.call(op: "stats", request: [], timeout: .seconds(5)).json?["cancels"]?.intValue ?? -1
        #expect(after == before + 1, "the plugin's cancel must be called on timeout")
    }

    @Test func manyDeadlinesFireInTheirOwnTime() async throws {
        let p = try instance("fixture_misbehave", label: "backends.deadlines")
        let results = await withTaskGroup(of: (Int, Duration, Bool).self) { group in
            for i in 0..<40 {
                let ms = 10 + (i * 37) % 400  // shuffled order of deadlines
                group.addTask {
                    let start = ContinuousClock.now
                    let r = await p.call(op: "never", request: [], timeout: .milliseconds(ms))
                    return (ms, ContinuousClock.now - start, r.isTimeout)
                }
            }
            var all: [(Int, Duration, Bool)] = []
            for await r in group { all.append(r) }
            return all
        }
        #expect(results.count == 40)
        for (ms, elapsed, timedOut) in results {
            #expect(timedOut)
            #expect(elapsed >= .milliseconds(ms), "a \(ms) ms deadline fired after \(elapsed)")
        }
    }

    @Test func lateCompletionFromAnotherThreadWorks() async throws {
        let p = try instance("fixture_misbehave", label: "backends.late")
        let reply = await p.call(op: "late", request: [], timeout: .seconds(5))
        #expect(reply.ok)
        #expect(reply.json == ["late": true])
    }

    @Test func completionAfterTimeoutIsIgnored() async throws {
        let p = try instance("fixture_misbehave", label: "backends.tooLate")
        let reply = await p.call(op: "late", request: Array("300".utf8), timeout: .milliseconds(20))
        #expect(reply.isTimeout)
        try await Task.sleep(for: .milliseconds(600))
        // The late completion arrived after the timeout: ignored quietly (debug), never an error.
        #expect(logs.all.contains { $0.message == "late plugin completion ignored" && $0.metadata["mcpg.plugin.id"] == "backends.tooLate" })
        #expect(!logs.all.contains { $0.level == .error && $0.metadata["mcpg.plugin.id"] == "backends.tooLate" })
    }

    @Test func cancellingTheAwaitingTaskCancelsThePluginCall() async throws {
        let p = try instance("fixture_misbehave", label: "backends.cancel")
        let before = await p.call(op: "stats", request: [], timeout: .seconds(5)).json?["cancels"]?.intValue ?? -1
        let task = Task { await p.call(op: "never", request: [], timeout: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(50))
        task.cancel()
        let reply = await task.value
        #expect(reply.errorCode == PluginReply.cancelledCode)
        let after = await p.call(op: "stats", request: [], timeout: .seconds(5)).json?["cancels"]?.intValue ?? -1
        #expect(after == before + 1)
    }

    @Test func emitReachesTheCallerOnlyWhileTheCallIsLive() async throws {
        let p = try instance("fixture_misbehave", label: "backends.emit")
        let got = Mutex<[[UInt8]]>([])
        let message = Array(#"{"jsonrpc":"2.0","method":"notifications/progress"}"#.utf8)
        let reply = await p.call(op: "emit", request: message, timeout: .seconds(5)) { bytes in
            got.withLock { $0.append(bytes) }
            return true
        }
        #expect(reply.json == ["rc": 0])
        #expect(got.withLock { $0 } == [message])
        // Without an emit closure the plugin is told the client cannot receive messages.
        #expect(await p.call(op: "emit", request: message, timeout: .seconds(5)).json == ["rc": -1])
        // After complete, emit returns -1 and the closure is not called.
        let count = got.withLock { $0.count }
        _ = await p.call(op: "emit_after", request: message, timeout: .seconds(5)) { _ in true }
        #expect(await p.call(op: "stats", request: [], timeout: .seconds(5)).json?["emit_after"] == -1)
        #expect(got.withLock { $0.count } == count)
    }

    @Test func hostLogAndMetricsCarryThePluginLabel() async throws {
        let metrics = PluginMetrics()
        let p = try instance("fixture_misbehave", label: "backends.log", metrics: metrics)
        _ = await p.call(op: "log", request: [], timeout: .seconds(5))
        _ = await p.call(op: "log", request: [], timeout: .seconds(5))
        let line = logs.all.first { $0.message == "fixture log line" }
        #expect(line?.level == .warning)
        #expect(line?.metadata["mcpg.plugin.id"] == "backends.log")
        #expect(line?.metadata["fixture"] == "yes")
        let sample = metrics.sample(name: "fixture_misbehave_calls", labels: [("op", "log")])
        #expect(sample?.kind == .counter)
        #expect(sample?.value == 2)
    }

    @Test func unknownOpIsAnErrorReply() async throws {
        let p = try instance("fixture_misbehave", label: "backends.unknown")
        let reply = await p.call(op: "nope", request: [], timeout: .seconds(5))
        #expect(!reply.ok)
        #expect(reply.errorCode == -32601)
    }

    @Test func pluginKitPluginAuthenticates() async throws {
        let p = try instance("anonymous", label: "identity[0]", config: ["principal": "dev", "groups": ["eng"]])
        #expect(p.plugin.kindName == "identity")
        let loopback = JSON.object(["transport": "http", "peer": ["address": "127.0.0.1:5000", "loopback": true], "headers": [:]])
        let ok = await p.call(op: "authenticate", request: loopback.serialized(), timeout: .seconds(5))
        #expect(ok.ok)
        #expect(ok.json?["result"] == "authenticated")
        #expect(ok.json?["principal"]?["id"] == "dev")
        let remote = JSON.object(["transport": "http", "peer": ["address": "10.0.0.9:5000", "loopback": false], "headers": [:]])
        let no = await p.call(op: "authenticate", request: remote.serialized(), timeout: .seconds(5))
        #expect(no.json?["result"] == "reject")
        let wrongOp = await p.call(op: "authorize", request: Array("{}".utf8), timeout: .seconds(5))
        #expect(!wrongOp.ok)
        #expect(wrongOp.errorCode == -32601)
    }

    @Test func pluginKitConfigErrorsAreCreateFailures() throws {
        let e = #expect(throws: LoaderError.self) {
            try instance("anonymous", label: "identity[1]", config: ["principal": 42])
        }
        #expect(e?.code == .createFailed)
        #expect(e?.message.contains("invalid config") == true)
    }

    @Test func manyConcurrentCallsAllComplete() async throws {
        let p = try instance("fixture_misbehave", label: "backends.concurrent")
        let n = await withTaskGroup(of: Bool.self) { group in
            for i in 0..<200 {
                group.addTask {
                    let req = Array("{\"i\":\(i)}".utf8)
                    let op = i % 10 == 0 ? "late" : "echo"
                    let r = await p.call(op: op, request: req, timeout: .seconds(10))
                    return r.ok && (op == "late" || r.body == req)
                }
            }
            var ok = 0
            for await r in group where r { ok += 1 }
            return ok
        }
        #expect(n == 200)
    }
}
