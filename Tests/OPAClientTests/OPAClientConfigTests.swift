import Foundation
import MCPGJSON
import NIOHTTP1
import Testing

@testable import OPAClient

@Suite("OPAClient config and pieces without a server")
struct OPAClientConfigTests {
    func error(_ config: OPAClient.Config) -> String? {
        do {
            let client = try OPAClient(config: config, log: { _, _ in })
            _ = client.endpoint
            return nil
        } catch let e as OPAClientError {
            return e.message
        } catch {
            return "unexpected \(error)"
        }
    }

    @Test func decodesSnakeCaseKeysWithDefaults() throws {
        let minimal = try JSONDecoder().decode(
            OPAClient.Config.self, from: Data(#"{"url": "http://opa:8181", "path": "mcpg/allow"}"#.utf8))
        #expect(minimal == OPAClient.Config(url: "http://opa:8181", path: "mcpg/allow"))
        #expect(minimal.timeoutMs == 500)
        #expect(minimal.cacheTTLMs == 1000)
        #expect(minimal.cacheSize == 10_000)
        #expect(minimal.maxConcurrency == 16)
        #expect(!minimal.batch)

        let full = try JSONDecoder().decode(
            OPAClient.Config.self,
            from: Data(
                #"""
                {"url": "https://opa", "path": "data.a.b", "timeout_ms": 50, "cache_ttl_ms": 0, "cache_size": 5,
                 "headers": {"X-A": "1"}, "bearer_token_env": "T", "tls": {"ca_file": "ca.pem",
                 "insecure_skip_verify": true}, "batch": true, "max_concurrency": 2}
                """#.utf8))
        #expect(
            full
                == OPAClient.Config(
                    url: "https://opa", path: "data.a.b", timeoutMs: 50, cacheTTLMs: 0, cacheSize: 5,
                    headers: ["X-A": "1"], bearerTokenEnv: "T", tls: .init(caFile: "ca.pem", insecureSkipVerify: true),
                    batch: true, maxConcurrency: 2))
    }

    @Test func schemaListsEveryKeyWithADescription() throws {
        let schema = OPAClient.configSchema
        #expect(schema["additionalProperties"] == false)
        let properties = try #require(schema["properties"]?.objectValue)
        #expect(
            Set(properties.keys) == [
                "url", "path", "timeout_ms", "cache_ttl_ms", "cache_size", "headers", "bearer_token_file",
                "bearer_token_env", "tls", "batch", "max_concurrency",
            ])
        for member in properties {
            #expect(member.value["description"]?.stringValue?.isEmpty == false, "\(member.key)")
        }
        let tls = try #require(properties["tls"]?["properties"]?.objectValue)
        #expect(Set(tls.keys) == ["ca_file", "insecure_skip_verify"])
        #expect(properties["tls"]?["additionalProperties"] == false)
    }

    @Test func endpointFromSlashAndDottedPaths() throws {
        func endpoint(_ url: String, _ path: String) throws -> String {
            try OPAClient(config: .init(url: url, path: path), log: { _, _ in }).endpoint
        }
        #expect(try endpoint("http://opa:8181", "mcpg/authz/allow") == "http://opa:8181/v1/data/mcpg/authz/allow")
        #expect(try endpoint("http://opa:8181/", "/mcpg/authz/allow/") == "http://opa:8181/v1/data/mcpg/authz/allow")
        #expect(try endpoint("HTTP://opa:8181", "data.mcpg.authz.allow") == "http://opa:8181/v1/data/mcpg/authz/allow")
        #expect(try endpoint("https://gw/opa", "mcpg.allow") == "https://gw/opa/v1/data/mcpg/allow")
        #expect(try endpoint("http://opa", "a b/ü") == "http://opa/v1/data/a%20b/%C3%BC")
    }

    @Test func rejectsBadConfig() {
        #expect(error(.init(url: "ftp://opa", path: "a"))?.contains("not an http(s) URL") == true)
        #expect(error(.init(url: "opa:8181", path: "a"))?.contains("not an http(s) URL") == true)
        #expect(error(.init(url: "http://u:p@opa", path: "a"))?.contains("credentials") == true)
        #expect(error(.init(url: "http://opa?x=1", path: "a"))?.contains("query") == true)
        #expect(error(.init(url: "http://opa", path: ""))?.contains("names no document") == true)
        #expect(error(.init(url: "http://opa", path: "data"))?.contains("names no document") == true)
        #expect(error(.init(url: "http://opa", path: "a..b"))?.contains("empty segment") == true)
        #expect(error(.init(url: "http://opa", path: "a", timeoutMs: 0))?.contains("timeout_ms") == true)
        #expect(error(.init(url: "http://opa", path: "a", cacheTTLMs: -1))?.contains("cache_ttl_ms") == true)
        #expect(error(.init(url: "http://opa", path: "a", cacheSize: 0))?.contains("cache_size") == true)
        #expect(error(.init(url: "http://opa", path: "a", maxConcurrency: 0))?.contains("max_concurrency") == true)
        #expect(error(.init(url: "http://opa", path: "a", headers: ["Bad Name": "x"]))?.contains("header name") == true)
        #expect(
            error(.init(url: "http://opa", path: "a", headers: ["X-A": "1\r\nX-B: 2"]))?.contains("line break") == true)
        #expect(
            error(.init(url: "http://opa", path: "a", tls: .init(insecureSkipVerify: true)))?.contains("not https")
                == true)
        #expect(
            error(.init(url: "https://opa", path: "a", tls: .init(caFile: "/nonexistent/ca.pem")))?.contains(
                "tls.ca_file") == true)
    }

    @Test func bearerTokenSources() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("opa-token-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let empty = dir.appendingPathComponent("empty")
        try "  \n".write(to: empty, atomically: true, encoding: .utf8)
        let good = dir.appendingPathComponent("good")
        try "tok-123456789\n".write(to: good, atomically: true, encoding: .utf8)

        #expect(error(.init(url: "http://opa", path: "a", bearerTokenFile: empty.path)) == "bearer token is empty")
        #expect(
            error(.init(url: "http://opa", path: "a", bearerTokenFile: dir.appendingPathComponent("none").path))?
                .contains("cannot read file") == true)
        #expect(
            error(.init(url: "http://opa", path: "a", bearerTokenEnv: "MCPG_OPA_SURELY_UNSET_\(UUID().uuidString)"))?
                .contains("is not set") == true)
        #expect(
            error(.init(url: "http://opa", path: "a", bearerTokenFile: good.path, bearerTokenEnv: "X"))?.contains(
                "not both") == true)
        let clash = error(
            .init(url: "http://opa", path: "a", headers: ["authorization": "Basic x"], bearerTokenFile: good.path))
        #expect(clash?.contains("Authorization") == true)
        // The token itself never appears in an error.
        #expect(error(.init(url: "http://opa", path: "a", bearerTokenFile: good.path)) == nil)
    }

    @Test func responsesBecomeOutcomes() throws {
        let client = try OPAClient(config: .init(url: "http://127.0.0.1:9", path: "a"), log: { _, _ in })
        #expect(client.interpret(status: .ok, body: Array(#"{"result": [1, "x"]}"#.utf8)) == .value([1, "x"]))
        #expect(client.interpret(status: .ok, body: Array(#"{"result": null}"#.utf8)) == .value(nil))
        #expect(client.interpret(status: .ok, body: Array(#"{"decision_id": "x"}"#.utf8)) == .undefined)
        guard case .failure(let bad) = client.interpret(status: .ok, body: Array("{".utf8)) else {
            Issue.record("truncated JSON must fail")
            return
        }
        #expect(bad.hasPrefix("OPA answered invalid JSON (invalid JSON at byte"))
        #expect(
            client.interpret(status: .ok, body: Array("[true]".utf8))
                == .failure("OPA answered a JSON array, expected an object"))
        #expect(
            client.interpret(status: .badRequest, body: Array(#"{"code": "invalid_parameter", "message": "m"}"#.utf8))
                == .failure("OPA answered HTTP 400: invalid_parameter: m"))
        #expect(client.interpret(status: .notFound, body: Array("<html>".utf8)) == .failure("OPA answered HTTP 404"))
    }

    @Test func batchAnswersAreSplitInOrder() {
        #expect(OPAClient.splitBatch(.value([true, false]), count: 2) == [.value(true), .value(false)])
        #expect(OPAClient.splitBatch(.undefined, count: 2) == [.undefined, .undefined])
        #expect(OPAClient.splitBatch(.failure("x"), count: 1) == [.failure("x")])
        #expect(
            OPAClient.splitBatch(.value([true]), count: 2)
                == Array(
                    repeating: .failure("OPA batch result is an array of 1, expected an array of 2 decisions"),
                    count: 2))
        #expect(
            OPAClient.splitBatch(.value(true), count: 1)
                == [.failure("OPA batch result is a boolean, expected an array of 1 decisions")])
    }

    @Test func mergesSharedFieldsIntoEachQuery() {
        #expect(OPAClient.merged([:], ["a": 1]) == ["a": 1])
        #expect(OPAClient.merged(["p": "x", "a": 0], ["a": 1, "b": 2]) == ["p": "x", "a": 1, "b": 2])
        #expect(OPAClient.merged(["p": "x"], "tool") == ["p": "x", "query": "tool"])
    }
}

@Suite("DecisionCache")
struct DecisionCacheTests {
    func key(_ s: String) -> CacheKey { CacheKey(bytes: Array(s.utf8)) }

    @Test func expiresAfterTTL() {
        let cache = DecisionCache(ttl: .milliseconds(100), capacity: 10)
        let t0 = ContinuousClock.now
        cache.store([(key("a"), .value(true)), (key("b"), .undefined)], now: t0)
        let early = cache.lookup([key("a"), key("b"), key("c")], now: t0 + .milliseconds(99))
        #expect(early == [.value(true), .undefined, nil])
        #expect(cache.lookup([key("a")], now: t0 + .milliseconds(100)) == [nil])
        #expect(cache.count == 1)  // the expired entry looked up was dropped
    }

    @Test func evictsTheOldestWhenFull() {
        let cache = DecisionCache(ttl: .seconds(60), capacity: 3)
        let t0 = ContinuousClock.now
        for s in ["a", "b", "c"] { cache.store([(key(s), .value(.string(s)))], now: t0) }
        cache.store([(key("b"), .value("b2"))], now: t0)  // an update keeps its place
        cache.store([(key("d"), .value("d"))], now: t0)
        #expect(cache.count == 3)
        let afterD = cache.lookup([key("a"), key("b"), key("c"), key("d")], now: t0)
        #expect(afterD == [nil, .value("b2"), .value("c"), .value("d")])
        cache.store([(key("e"), .value("e")), (key("f"), .value("f"))], now: t0)
        let afterF = cache.lookup([key("b"), key("c"), key("d"), key("e"), key("f")], now: t0)
        #expect(afterF == [nil, nil, .value("d"), .value("e"), .value("f")])
    }

    @Test func disabledWithZeroTTL() {
        let cache = DecisionCache(ttl: .zero, capacity: 3)
        cache.store([(key("a"), .value(true))])
        #expect(cache.count == 0)
        #expect(cache.lookup([key("a")]) == [nil])
    }

    @Test func manyDistinctKeysStayBounded() {
        let cache = DecisionCache(ttl: .seconds(60), capacity: 100)
        for i in 0..<1000 { cache.store([(key("k\(i)"), .undefined)]) }
        #expect(cache.count == 100)
        #expect(cache.lookup([key("k999"), key("k899"), key("k900")]) == [.undefined, nil, .undefined])
    }
}
