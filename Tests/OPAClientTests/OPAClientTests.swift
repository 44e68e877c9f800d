import Foundation
import MCPGJSON
import Synchronization
import Testing

@testable import OPAClient

/// The policy every server test loads: booleans with defaults, a document without default (undefined), and a
/// batch document answering an array per `input.queries`.
let testPolicy = """
    package mcpg.authz
    import rego.v1

    default allow := false

    allow if input.principal == "alice"

    allow if {
    	some g in input.groups
    	g in data.admin_groups
    }

    default tool_allowed := false

    tool_allowed if input.tool in data.tools[input.principal]

    batch := [allowed |
    	some q in input.queries
    	allowed := q.tool in data.tools[input.principal]
    ]

    decision := {"allow": true, "reasons": ["reader"]} if input.tool in data.read_tools

    not_an_array := {"allow": true}
    """

let testData: JSON = [
    "admin_groups": ["ops"],
    "tools": ["alice": ["a", "b"], "bob": ["c", "d", "e"]],
    "read_tools": ["search"],
]

/// Collects what the client logs.
final class LogRecorder: Sendable {
    let lines = Mutex<[(String, [String: String])]>([])
    var log: @Sendable (String, [String: String]) -> Void {
        { message, metadata in self.lines.withLock { $0.append((message, metadata)) } }
    }
    var all: [(String, [String: String])] { lines.withLock { $0 } }
}

func startServer(_ arguments: [String] = [], tls: Bool = false) async throws -> OPATestServer {
    try await OPATestServer.start(policy: testPolicy, data: testData, arguments: arguments, tls: tls)
}

/// A config with a deadline generous enough for a loaded machine, for tests that do not test timeouts.
func config(
    _ server: OPATestServer, _ path: String, cacheTTLMs: Int = 1000, headers: [String: String] = [:],
    bearerTokenFile: String? = nil, bearerTokenEnv: String? = nil, tls: OPAClient.Config.TLS? = nil,
    batch: Bool = false
) -> OPAClient.Config {
    .init(
        url: server.baseURL, path: path, timeoutMs: 10_000, cacheTTLMs: cacheTTLMs, headers: headers,
        bearerTokenFile: bearerTokenFile, bearerTokenEnv: bearerTokenEnv, tls: tls, batch: batch)
}

/// Serialized: each test starts a Python server, and timing checks need the two cores to themselves.
@Suite("OPAClient against an OPA-compatible server", .serialized)
struct OPAClientServerTests {
    @Test func allowDenyAndUndefined() async throws {
        let server = try await startServer()
        defer { server.stop() }
        let client = try OPAClient(config: config(server, "mcpg/authz/allow"), log: { _, _ in })
        let outcomes = await client.decide(inputs: [
            ["principal": "alice"], ["principal": "bob"], ["principal": "bob", "groups": ["ops"]],
        ])
        #expect(outcomes == [.value(true), .value(false), .value(true)])

        // Dotted form of the path; a document without default is undefined when no rule applies.
        let decisions = try OPAClient(
            config: .init(url: server.baseURL + "/", path: "data.mcpg.authz.decision", timeoutMs: 10_000),
            log: { _, _ in })
        #expect(decisions.endpoint == server.baseURL + "/v1/data/mcpg/authz/decision")
        let more = await decisions.decide(inputs: [["tool": "search"], ["tool": "rm"]])
        #expect(more == [.value(["allow": true, "reasons": ["reader"]]), .undefined])

        // A document the server does not have at all is undefined too, as in OPA.
        let missing = try OPAClient(config: config(server, "no/such/doc"), log: { _, _ in })
        #expect(await missing.decide(inputs: [["x": 1]]) == [.undefined])
        await client.close()
        await decisions.close()
        await missing.close()
    }

    @Test func perQueryAndBatchAgree() async throws {
        let server = try await startServer()
        defer { server.stop() }
        let shared: JSONObject = ["principal": "bob"]
        let queries: [JSON] = ["a", "c", "d", "z", "e", "c"].map { ["tool": .string($0)] }

        let perQuery = try OPAClient(
            config: config(server, "mcpg/authz/tool_allowed", cacheTTLMs: 0), log: { _, _ in })
        let one = await perQuery.decide(queries: queries, shared: shared)
        #expect(one == [false, true, true, false, true, true].map { .value(.bool($0)) })
        // Five distinct inputs: the repeated "c" is asked once.
        #expect(try await server.requests() == 5)

        let batch = try OPAClient(
            config: config(server, "mcpg/authz/batch", cacheTTLMs: 0, batch: true),
            log: { _, _ in })
        let all = await batch.decide(queries: queries, shared: shared)
        #expect(all == one)
        #expect(try await server.requests() == 6)
        let stats = try await server.stats()
        #expect(stats["inputs"]?.intValue == 6)
        await perQuery.close()
        await batch.close()
    }

    @Test func batchResultMustBeAnArrayOfTheRightLength() async throws {
        let server = try await startServer()
        defer { server.stop() }
        let wrongShape = try OPAClient(
            config: config(server, "mcpg/authz/not_an_array", batch: true), log: { _, _ in })
        let outcomes = await wrongShape.decide(queries: [["tool": "a"], ["tool": "b"]], shared: ["principal": "bob"])
        #expect(outcomes.count == 2)
        for outcome in outcomes {
            guard case .failure(let message) = outcome else {
                Issue.record("expected a failure, got \(outcome)")
                continue
            }
            #expect(message.contains("expected an array of 2 decisions"))
        }
        // An undefined batch document leaves every query undefined.
        let undefinedBatch = try OPAClient(
            config: config(server, "mcpg/authz/nothing", batch: true), log: { _, _ in })
        #expect(await undefinedBatch.decide(inputs: [1, 2, 3]) == [.undefined, .undefined, .undefined])
        await wrongShape.close()
        await undefinedBatch.close()
    }

    @Test func cacheHitsAndExpires() async throws {
        let server = try await startServer()
        defer { server.stop() }
        let client = try OPAClient(
            config: config(server, "mcpg/authz/allow", cacheTTLMs: 400), log: { _, _ in })
        let input: JSON = ["principal": "alice"]
        #expect(await client.decide(inputs: [input]) == [.value(true)])
        #expect(await client.decide(inputs: [input, input]) == [.value(true), .value(true)])
        #expect(try await server.requests() == 1)
        #expect(client.cachedCount == 1)

        // Another input is a miss; undefined answers are cached like values.
        #expect(await client.decide(inputs: [["principal": "bob"]]) == [.value(false)])
        #expect(try await server.requests() == 2)

        try await Task.sleep(for: .milliseconds(600))
        #expect(await client.decide(inputs: [input]) == [.value(true)])
        #expect(try await server.requests() == 3)
        await client.close()
    }

    @Test func cacheOffAsksEveryTime() async throws {
        let server = try await startServer()
        defer { server.stop() }
        let client = try OPAClient(
            config: config(server, "mcpg/authz/allow", cacheTTLMs: 0), log: { _, _ in })
        for _ in 0..<3 { _ = await client.decide(inputs: [["principal": "alice"]]) }
        #expect(try await server.requests() == 3)
        #expect(client.cachedCount == 0)
        await client.close()
    }

    @Test func serverErrorFailsAndIsNotCached() async throws {
        let server = try await startServer(["--fail-status", "500"])
        defer { server.stop() }
        let recorder = LogRecorder()
        let client = try OPAClient(
            config: config(server, "mcpg/authz/allow"), log: recorder.log)
        let input: JSON = ["principal": "alice"]
        let failed = await client.decide(inputs: [input])
        guard case .failure(let message)? = failed.first else {
            Issue.record("expected a failure, got \(failed)")
            return
        }
        #expect(message.contains("HTTP 500"))
        #expect(message.contains("internal_error"))
        #expect(recorder.all.count == 1)
        #expect(recorder.all.first?.1["opa.error"] == message)

        try await server.control(["fail_status": nil])
        #expect(await client.decide(inputs: [input]) == [.value(true)])
        #expect(try await server.requests() == 2)
        await client.close()
    }

    @Test func timeoutAgainstASlowServer() async throws {
        let server = try await startServer(["--latency-ms", "2000"])
        defer { server.stop() }
        let client = try OPAClient(
            config: .init(url: server.baseURL, path: "mcpg/authz/allow", timeoutMs: 200), log: { _, _ in })
        let clock = ContinuousClock()
        var outcomes: [OPAClient.Outcome] = []
        let elapsed = await clock.measure { outcomes = await client.decide(inputs: [["principal": "alice"]]) }
        guard case .failure(let message)? = outcomes.first else {
            Issue.record("expected a timeout, got \(outcomes)")
            return
        }
        #expect(message.contains("timed out"))
        #expect(elapsed < .milliseconds(1500), "decide took \(elapsed)")
        await client.close()
    }

    /// `timeout_ms` bounds the whole call: what the server answered in time counts, the rest times out.
    @Test func deadlineCoversTheWholeCall() async throws {
        let server = try await startServer(["--latency-ms", "300"])
        defer { server.stop() }
        let client = try OPAClient(
            config: .init(url: server.baseURL, path: "mcpg/authz/allow", timeoutMs: 500, maxConcurrency: 2),
            log: { _, _ in })
        let inputs: [JSON] = (0..<10).map { ["principal": "alice", "n": .int(Int64($0))] }
        let clock = ContinuousClock()
        var outcomes: [OPAClient.Outcome] = []
        let elapsed = await clock.measure { outcomes = await client.decide(inputs: inputs) }
        #expect(elapsed < .milliseconds(1500), "decide took \(elapsed)")
        let answered = outcomes.filter { $0 == .value(true) }.count
        let timedOut = outcomes.filter { if case .failure(let m) = $0 { m.contains("timed out") } else { false } }.count
        #expect(answered == 2)
        #expect(timedOut == 8)
        await client.close()
    }

    @Test func concurrencyIsLimited() async throws {
        let server = try await startServer(["--latency-ms", "50"])
        defer { server.stop() }
        let client = try OPAClient(
            config: .init(url: server.baseURL, path: "mcpg/authz/allow", timeoutMs: 10_000, maxConcurrency: 3),
            log: { _, _ in })
        let inputs: [JSON] = (0..<24).map { ["principal": "bob", "n": .int(Int64($0))] }
        let outcomes = await client.decide(inputs: inputs)
        #expect(outcomes == Array(repeating: .value(false), count: 24))
        let stats = try await server.stats()
        #expect(stats["requests"]?.intValue == 24)
        let most = stats["max_in_flight"]?.intValue ?? 0
        #expect(most >= 2 && most <= 3, "max in flight \(most)")
        await client.close()
    }

    @Test func connectionRefused() async throws {
        let server = try await startServer()
        let url = server.baseURL
        server.stop()  // the port is now closed
        let client = try OPAClient(config: .init(url: url, path: "mcpg/authz/allow"), log: { _, _ in })
        let clock = ContinuousClock()
        var outcomes: [OPAClient.Outcome] = []
        let elapsed = await clock.measure { outcomes = await client.decide(inputs: [["principal": "alice"]]) }
        guard case .failure(let message)? = outcomes.first else {
            Issue.record("expected a failure, got \(outcomes)")
            return
        }
        #expect(message.contains("refused"), "\(message)")
        #expect(elapsed < .milliseconds(1000))
        await client.close()
    }

    @Test func bearerTokenAndHeadersReachTheServer() async throws {
        let token = "s3cret-token-\(UUID().uuidString)"
        let server = try await startServer(["--require-token", token, "--require-header", "X-Tenant=acme"])
        defer { server.stop() }
        let tokenFile = server.directory.appendingPathComponent("token")
        try (token + "\n").write(to: tokenFile, atomically: true, encoding: .utf8)

        let client = try OPAClient(
            config: config(
                server, "mcpg/authz/allow", headers: ["X-Tenant": "acme"],
                bearerTokenFile: tokenFile.path),
            log: { _, _ in })
        #expect(await client.decide(inputs: [["principal": "alice"]]) == [.value(true)])
        let headers = try await server.stats()["last_headers"]
        #expect(headers?["x-tenant"] == "acme")
        #expect(headers?["authorization"] == .string("Bearer \(token)"))
        #expect(headers?["content-type"] == "application/json")

        // The same token from the environment.
        let variable = "MCPG_OPA_TEST_TOKEN_\(UInt32.random(in: 0...UInt32.max))"
        setenv(variable, token, 1)
        defer { unsetenv(variable) }
        let fromEnv = try OPAClient(
            config: config(
                server, "mcpg/authz/allow", headers: ["X-Tenant": "acme"],
                bearerTokenEnv: variable),
            log: { _, _ in })
        #expect(await fromEnv.decide(inputs: [["principal": "bob"]]) == [.value(false)])

        // A wrong token is refused; the failure names the status, never the token.
        let wrongFile = server.directory.appendingPathComponent("wrong")
        let wrongToken = "wrong-token-value-123"
        try wrongToken.write(to: wrongFile, atomically: true, encoding: .utf8)
        let recorder = LogRecorder()
        let wrong = try OPAClient(
            config: config(
                server, "mcpg/authz/allow", headers: ["X-Tenant": "acme"],
                bearerTokenFile: wrongFile.path),
            log: recorder.log)
        let outcomes = await wrong.decide(inputs: [["principal": "alice"]])
        guard case .failure(let message)? = outcomes.first else {
            Issue.record("expected a failure, got \(outcomes)")
            return
        }
        #expect(message.contains("HTTP 401"))
        #expect(!message.contains(wrongToken))
        for (text, metadata) in recorder.all {
            #expect(!text.contains(wrongToken))
            #expect(!metadata.values.contains { $0.contains(wrongToken) })
        }
        await client.close()
        await fromEnv.close()
        await wrong.close()
    }

    @Test func tlsWithCAFileAndVerificationFailure() async throws {
        let server = try await startServer(tls: true)
        defer { server.stop() }
        let trusted = try OPAClient(
            config: config(server, "mcpg/authz/allow", tls: .init(caFile: server.caFile)),
            log: { _, _ in })
        #expect(await trusted.decide(inputs: [["principal": "alice"]]) == [.value(true)])

        // The system roots do not know the self-signed certificate.
        let untrusted = try OPAClient(
            config: .init(url: server.baseURL, path: "mcpg/authz/allow", timeoutMs: 2000), log: { _, _ in })
        let outcomes = await untrusted.decide(inputs: [["principal": "alice"]])
        guard case .failure(let message)? = outcomes.first else {
            Issue.record("expected a TLS failure, got \(outcomes)")
            return
        }
        #expect(message.contains("TLS"), "\(message)")

        let skip = try OPAClient(
            config: config(server, "mcpg/authz/allow", tls: .init(insecureSkipVerify: true)),
            log: { _, _ in })
        #expect(await skip.decide(inputs: [["principal": "bob"]]) == [.value(false)])
        await trusted.close()
        await untrusted.close()
        await skip.close()
    }

    @Test func closedClientFails() async throws {
        let client = try OPAClient(config: .init(url: "http://127.0.0.1:9", path: "a/b"), log: { _, _ in })
        await client.close()
        #expect(await client.decide(inputs: [1]) == [.failure("OPA client is closed")])
        #expect(await client.decide(inputs: []) == [])
    }
}
