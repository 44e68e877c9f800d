import Foundation
import JWTVerifier
import MCPGJSON
import PluginKit
import Synchronization
import Testing

@testable import OIDCPlugin

/// How the plugin gets and keeps signing keys: discovery, caching, refresh on unknown kids and its rate
/// limit, single-flight fetches, an issuer that is down, static JWKS files and TLS.
@Suite struct KeyRefreshTests {
    @Test func oneFetchServesManyTokens() async throws {
        let issuer = try await TestIssuer.start()
        defer { issuer.stop() }
        // Slow JWKS answers, so the concurrent first requests really overlap the fetch.
        try await issuer.control(["jwks_delay_ms": 300])
        let tokens = try await (0..<5).asyncMap { i in try await issuer.mint(["claims": ["sub": .string("user\(i)")]]) }
        let plugin = try makePlugin(issuer)
        let results = try await withThrowingTaskGroup(of: JSON.self) { group in
            for i in 0..<20 { group.addTask { try await authenticate(plugin, token: tokens[i % tokens.count]) } }
            return try await group.reduce(into: [JSON]()) { $0.append($1) }
        }
        #expect(results.allSatisfy { $0["result"] == "authenticated" })
        for token in tokens { #expect(try await authenticate(plugin, token: token)["result"] == "authenticated") }
        #expect(try await issuer.jwksFetches() == 1)
        #expect(try await issuer.discoveryFetches() == 1)
    }

    @Test func unknownKidRefreshesAndRotationIsPickedUp() async throws {
        let issuer = try await TestIssuer.start()
        defer { issuer.stop() }
        let plugin = try makePlugin(issuer, ["jwks_min_refresh_s": 1])
        let old = try await issuer.mint()
        #expect(try await authenticate(plugin, token: old)["result"] == "authenticated")
        #expect(try await issuer.jwksFetches() == 1)
        try await Task.sleep(for: .milliseconds(1100))
        try await issuer.rotate()
        let new = try await issuer.mint()
        #expect(try await authenticate(plugin, token: new)["result"] == "authenticated")
        #expect(try await issuer.jwksFetches() == 2)
        // The old key left the JWKS with the rotation.
        expectInvalid(try await authenticate(plugin, token: old), #"unknown key id "rsa-1""#, token: old)
    }

    @Test func unknownKidsRefreshAtMostOncePerInterval() async throws {
        let issuer = try await TestIssuer.start()
        defer { issuer.stop() }
        let valid = try await issuer.mint()
        let bogus = try await (0..<30).asyncMap { i in try await issuer.mint(["kid": .string("made-up-\(i)")]) }
        let plugin = try makePlugin(issuer, ["jwks_min_refresh_s": 3])
        let start = ContinuousClock.now
        #expect(try await authenticate(plugin, token: valid)["result"] == "authenticated")
        // Within the interval after the first fetch: no fetch at all.
        for token in bogus.prefix(10) {
            expectInvalid(try await authenticate(plugin, token: token), "unknown key id", token: token)
        }
        let early = try await issuer.jwksFetches()
        if ContinuousClock.now - start < .seconds(3) { #expect(early == 1) }
        try await Task.sleep(until: start + .milliseconds(3200))
        // A concurrent flood after the interval: one fetch.
        let answers = try await withThrowingTaskGroup(of: JSON.self) { group in
            for token in bogus.dropFirst(10) { group.addTask { try await authenticate(plugin, token: token) } }
            return try await group.reduce(into: [JSON]()) { $0.append($1) }
        }
        #expect(answers.allSatisfy { $0["reason"]?.stringValue?.hasPrefix("unknown key id") == true })
        let late = try await issuer.jwksFetches()
        #expect(late == early + 1)
    }

    // Fail closed while the issuer is down, recover once it is back.
    @Test func issuerDownAtStartRejectsThenRecovers() async throws {
        let first = try await TestIssuer.start()
        let port = first.port
        let stale = try await first.mint()
        first.stop()

        let plugin = try makePlugin(first, ["jwks_min_refresh_s": 1, "http_timeout_ms": 2000])
        let down = try await authenticate(plugin, token: stale)
        #expect(down["result"] == "reject")
        #expect(down["reason"]?.stringValue?.hasPrefix("signing keys unavailable") == true, "\(down)")

        let issuer = try await TestIssuer.start(port: port)
        defer { issuer.stop() }
        let token = try await issuer.mint()
        let recovered = try await eventually(5) {
            try await authenticate(plugin, token: token)["result"] == "authenticated"
        }
        #expect(recovered)
        #expect(try await issuer.jwksFetches() == 1)
    }

    // Once keys were fetched, an issuer outage does not lock everyone out: the stale set keeps verifying
    // while refreshes fail.
    @Test func staleKeysServeWhileTheIssuerIsDown() async throws {
        let issuer = try await TestIssuer.start()
        let token = try await issuer.mint()
        let plugin = try makePlugin(issuer, ["jwks_cache_s": 1, "jwks_min_refresh_s": 0, "http_timeout_ms": 2000])
        #expect(try await authenticate(plugin, token: token)["result"] == "authenticated")
        issuer.stop()
        try await Task.sleep(for: .milliseconds(1200))
        // Stale now: this starts a refresh (which fails) and is answered from the cached set.
        #expect(try await authenticate(plugin, token: token)["result"] == "authenticated")
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await authenticate(plugin, token: token)["result"] == "authenticated")
        #expect((plugin.remote?.fetchCount ?? 0) >= 2)
    }

    // A discovery document for another issuer must not supply keys.
    @Test func discoveryWithAnotherIssuerIsRefused() async throws {
        let issuer = try await TestIssuer.start()
        defer { issuer.stop() }
        try await issuer.control(["issuer": "https://evil.example.test"])
        let plugin = try makePlugin(issuer)
        let answer = try await authenticate(plugin, token: try await issuer.mint())
        #expect(answer["result"] == "reject")
        let reason = answer["reason"]?.stringValue ?? ""
        #expect(reason.contains(#"discovery document names issuer "https://evil.example.test""#), "\(reason)")
        #expect(try await issuer.jwksFetches() == 0)
    }

    @Test func configuredJWKSURISkipsDiscovery() async throws {
        let issuer = try await TestIssuer.start()
        defer { issuer.stop() }
        let plugin = try makePlugin(issuer, ["jwks_uri": .string(issuer.url + "/jwks")])
        #expect(try await authenticate(plugin, token: try await issuer.mint())["result"] == "authenticated")
        #expect(try await issuer.discoveryFetches() == 0)
        #expect(try await issuer.jwksFetches() == 1)
    }

    // A shorter Cache-Control max-age from the JWKS response wins over jwks_cache_s; the stale set keeps
    // answering while the refresh runs.
    @Test func cacheControlMaxAgeShortensTheCache() async throws {
        let issuer = try await TestIssuer.start()
        defer { issuer.stop() }
        try await issuer.control(["cache_control": "public, max-age=1"])
        let plugin = try makePlugin(issuer, ["jwks_cache_s": 300, "jwks_min_refresh_s": 0])
        let token = try await issuer.mint()
        #expect(try await authenticate(plugin, token: token)["result"] == "authenticated")
        #expect(try await issuer.jwksFetches() == 1)
        try await Task.sleep(for: .milliseconds(1200))
        try await issuer.control(["jwks_delay_ms": 500])
        #expect(try await authenticate(plugin, token: token)["result"] == "authenticated")
        #expect(try await eventually { try await issuer.jwksFetches() == 2 })

        // Without max-age, jwks_cache_s holds: no refetch.
        let steady = try await TestIssuer.start()
        defer { steady.stop() }
        let cached = try makePlugin(steady, ["jwks_cache_s": 300, "jwks_min_refresh_s": 0])
        let t = try await steady.mint()
        #expect(try await authenticate(cached, token: t)["result"] == "authenticated")
        try await Task.sleep(for: .milliseconds(1200))
        #expect(try await authenticate(cached, token: t)["result"] == "authenticated")
        #expect(try await steady.jwksFetches() == 1)
    }

    @Test func staticJWKSFileReloadsOnChange() async throws {
        let issuer = try await TestIssuer.start()
        defer { issuer.stop() }
        let file = issuer.directory.appendingPathComponent("jwks.json")
        try Data(try await issuer.jwks().serialized()).write(to: file, options: .atomic)
        let plugin = try makePlugin(issuer, ["jwks_file": .string(file.path)])
        #expect(try await authenticate(plugin, token: try await issuer.mint())["result"] == "authenticated")

        try await issuer.rotate()
        let rotated = try await issuer.mint()
        try Data(try await issuer.jwks().serialized()).write(to: file, options: .atomic)
        #expect(try await authenticate(plugin, token: rotated)["result"] == "authenticated")
        #expect(try await issuer.discoveryFetches() == 0)
        #expect(try await issuer.jwksFetches() == 2)  // the test's own two reads
    }

    @Test func fetchesOverTLSWithTheConfiguredCA() async throws {
        let issuer = try await TestIssuer.start(tls: true)
        defer { issuer.stop() }
        let token = try await issuer.mint()
        let trusted = try makePlugin(issuer, ["tls": ["ca_file": .string(issuer.caFile)]])
        #expect(try await authenticate(trusted, token: token)["result"] == "authenticated")
        // The system roots do not know the issuer's self-signed certificate: no keys, fail closed.
        let untrusted = try makePlugin(issuer)
        let answer = try await authenticate(untrusted, token: token)
        #expect(answer["result"] == "reject")
        #expect(answer["reason"]?.stringValue?.hasPrefix("signing keys unavailable") == true)
    }

    // The library on its own: a verifier over RemoteJWKS, without the plugin.
    @Test func verifierOverRemoteJWKS() async throws {
        let issuer = try await TestIssuer.start()
        defer { issuer.stop() }
        let events = Mutex<[(RemoteJWKS.Event, [String: String])]>([])
        let keys = try RemoteJWKS(settings: .init(issuer: issuer.url, minRefreshSeconds: 60)) { event, _, meta in
            events.withLock { $0.append((event, meta)) }
        }
        let verifier = TokenVerifier(
            rules: ValidationRules(issuer: issuer.url, audiences: [TestIssuer.audience], requiredScopes: ["a"]),
            keys: keys)
        guard case .insufficientScope(let missing, let token) = await verifier.verify(try await issuer.mint()) else {
            Issue.record("expected insufficient scope")
            return
        }
        #expect(missing == ["a"])
        #expect(token.claims["sub"] == "alice")
        guard case .valid(let ok) = await verifier.verify(try await issuer.mint(["claims": ["scp": "a b"]])) else {
            Issue.record("expected a valid token")
            return
        }
        #expect(ok.scopes == ["a", "b"])
        #expect(ok.algorithm == .rs256)
        #expect(keys.fetchCount == 1)
        #expect(events.withLock { $0.map(\.0) } == [.fetched])
        #expect(events.withLock { $0.first?.1["oidc.keys"] } == "5")
        await keys.close()

        // Down: the failure is reported, and the message says where.
        issuer.stop()
        let down = try RemoteJWKS(settings: .init(issuer: issuer.url, timeoutMilliseconds: 2000)) { event, _, meta in
            events.withLock { $0.append((event, meta)) }
        }
        guard case .failure(let why) = await down.keys() else {
            Issue.record("no keys expected from a stopped issuer")
            return
        }
        #expect(why.message.hasPrefix("signing keys unavailable: discovery document at \(issuer.url)/.well-known"))
        #expect(events.withLock { $0.last?.0 } == .fetchFailed)
        await down.close()
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for e in self { out.append(try await transform(e)) }
        return out
    }
}
