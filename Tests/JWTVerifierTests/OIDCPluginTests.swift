import Foundation
import JWTVerifier
import MCPGJSON
import PluginKit
import Testing

@testable import OIDCPlugin

/// The `oidc` plugin through PluginKit's in-process runner, against a real issuer (Tests/Issuer/issuer.py).
@Suite struct OIDCPluginTests {
    // AUTH-7: every supported algorithm verifies with swift-crypto against the issuer's real keys.
    @Test(arguments: [("rsa", "RS256"), ("pss", "PS256"), ("ec256", "ES256"), ("ec384", "ES384"), ("ed", "EdDSA")])
    func acceptsEachAlgorithm(key: String, alg: String) async throws {
        let issuer = try await TestIssuer.start()
        defer { issuer.stop() }
        let plugin = try makePlugin(issuer)
        let token = try await issuer.mint(["key": .string(key)])
        let answer = try await authenticate(plugin, token: token)
        #expect(answer["result"] == "authenticated", "\(alg): \(answer)")
        #expect(answer["principal"]?["id"] == "alice")
        #expect(answer["reason"]?.stringValue == "oidc token of alice from \(issuer.url)")
        #expect(answer["principal"]?["attributes"]?["iss"]?.stringValue == issuer.url)
    }

    // AUTH-7: invalid or expired → 401 invalid_token, naming the failed check.
    @Test func refusesTimeClaimsOutsideTheirWindow() async throws {
        let issuer = try await TestIssuer.start()
        defer { issuer.stop() }
        let plugin = try makePlugin(issuer)
        let now = epoch()
        let expired = try await issuer.mint(["claims": ["exp": .int(now - 3600)]])
        expectInvalid(try await authenticate(plugin, token: expired), "token expired", token: expired)
        let noExp = try await issuer.mint(["claims": ["exp": nil]])
        expectInvalid(try await authenticate(plugin, token: noExp), "token has no exp", token: noExp)
        let early = try await issuer.mint(["claims": ["nbf": .int(now + 3600)]])
        expectInvalid(try await authenticate(plugin, token: early), "token not yet valid (nbf)", token: early)
        let future = try await issuer.mint(["claims": ["iat": .int(now + 3600)]])
        expectInvalid(try await authenticate(plugin, token: future), "token issued in the future (iat)", token: future)
        // Within clock_skew_s (60 by default) of exp and nbf: still good.
        let skewed = try await issuer.mint(["claims": ["exp": .int(now - 20), "nbf": .int(now + 20)]])
        #expect(try await authenticate(plugin, token: skewed)["result"] == "authenticated")
    }

    // AUTH-7, AUTH-8, SEC-2: only tokens issued for this resource, by this issuer.
    @Test func refusesOtherAudiencesAndIssuers() async throws {
        let issuer = try await TestIssuer.start()
        defer { issuer.stop() }
        let plugin = try makePlugin(issuer)
        let other = try await issuer.mint(["claims": ["aud": "https://other.example.test"]])
        expectInvalid(try await authenticate(plugin, token: other), "wrong audience", token: other)
        let none = try await issuer.mint(["claims": ["aud": nil]])
        expectInvalid(try await authenticate(plugin, token: none), "token has no aud", token: none)
        let listed = try await issuer.mint(["claims": ["aud": ["https://other.example.test", .string(TestIssuer.audience)]]])
        #expect(try await authenticate(plugin, token: listed)["result"] == "authenticated")
        let foreign = try await issuer.mint(["claims": ["iss": "https://evil.example.test"]])
        expectInvalid(try await authenticate(plugin, token: foreign), "wrong issuer", token: foreign)
        // The issuer compares byte for byte: a trailing slash is another issuer.
        let slash = try await issuer.mint(["claims": ["iss": .string(issuer.url + "/")]])
        expectInvalid(try await authenticate(plugin, token: slash), "wrong issuer", token: slash)
    }

    @Test func refusesTamperedTokens() async throws {
        let issuer = try await TestIssuer.start()
        defer { issuer.stop() }
        let plugin = try makePlugin(issuer)
        for key in ["rsa", "ec256", "ed"] {
            let token = try await issuer.mint(["key": .string(key)])
            var parts = token.split(separator: ".").map(String.init)
            // Flip one bit of the signature's first byte.
            let first = parts[2].first!
            parts[2] = (first == "A" ? "B" : "A") + parts[2].dropFirst()
            let flipped = parts.joined(separator: ".")
            expectInvalid(try await authenticate(plugin, token: flipped), "bad signature", token: flipped)
            // Claims swapped under the original signature.
            let other = try await issuer.mint(["key": .string(key), "claims": ["sub": "mallory"]])
            let swapped = [token.split(separator: ".")[0], other.split(separator: ".")[1], token.split(separator: ".")[2]]
                .joined(separator: ".")
            expectInvalid(try await authenticate(plugin, token: swapped), "bad signature", token: swapped)
        }
        let garbled = try await issuer.mint() + "x"
        expectInvalid(try await authenticate(plugin, token: garbled), "malformed token", token: garbled)
    }

    // The classic JWT attacks: unsigned tokens and HMAC keyed with the public key.
    @Test func refusesNoneAndHMAC() async throws {
        let issuer = try await TestIssuer.start()
        defer { issuer.stop() }
        let plugin = try makePlugin(issuer)
        let unsigned = try await issuer.mint(["alg": "none"])
        expectInvalid(try await authenticate(plugin, token: unsigned), #"algorithm "none" is not allowed"#, token: unsigned)
        let confused = try await issuer.mint(["alg": "HS256", "hmac_secret": "rsa-public-pem"])
        expectInvalid(try await authenticate(plugin, token: confused), #"algorithm "HS256" is not allowed"#, token: confused)
    }

    @Test func algorithmMustMatchTheKeyAndTheAllowList() async throws {
        let issuer = try await TestIssuer.start()
        defer { issuer.stop() }
        let plugin = try makePlugin(issuer)
        // The `rsa-1` JWK says alg RS256: a PS256 signature by the same key is refused.
        let pss = try await issuer.mint(["key": "rsa", "alg": "PS256"])
        expectInvalid(try await authenticate(plugin, token: pss), "does not match the algorithm", token: pss)
        // An ES256 token naming the RSA key.
        let crossed = try await issuer.mint(["key": "ec256", "kid": "rsa-1"])
        expectInvalid(try await authenticate(plugin, token: crossed), "does not match the algorithm", token: crossed)
        // Without a kid, only the single key of the right type may verify.
        let bare = try await issuer.mint(["key": "ec384", "kid": nil])
        #expect(try await authenticate(plugin, token: bare)["result"] == "authenticated")

        let onlyEC = try makePlugin(issuer, ["algorithms": ["ES256"]])
        let rs = try await issuer.mint(["key": "rsa"])
        expectInvalid(try await authenticate(onlyEC, token: rs), #"algorithm "RS256" is not allowed"#, token: rs)
        #expect(try await authenticate(onlyEC, token: try await issuer.mint(["key": "ec256"]))["result"] == "authenticated")
    }

    // Keys come only from the configured JWKS: `jwk`/`jku` in the header are never used, and `crit`
    // extensions (none understood) refuse the token (RFC 7515 §4.1.11).
    @Test func ignoresHeaderKeysAndRefusesCriticalExtensions() async throws {
        let issuer = try await TestIssuer.start()
        defer { issuer.stop() }
        // The weak key is published only while asked to: outside that it stands for an attacker's own key.
        try await issuer.control(["weak": true])
        let weakJWK = try #require(try await issuer.jwks()["keys"]?.arrayValue?.first { $0["kid"] == "weak-1" })
        try await issuer.control(["weak": false])
        let plugin = try makePlugin(issuer)
        let embedded = try await issuer.mint([
            "key": "weak", "headers": ["jwk": weakJWK, "jku": .string(issuer.url + "/jwks")],
        ])
        expectInvalid(try await authenticate(plugin, token: embedded), #"unknown key id "weak-1""#, token: embedded)
        let critical = try await issuer.mint(["headers": ["crit": ["exp"], "exp": 1]])
        expectInvalid(try await authenticate(plugin, token: critical), "unsupported critical header", token: critical)
    }

    @Test func refusesWeakRSAKeys() async throws {
        let issuer = try await TestIssuer.start()
        defer { issuer.stop() }
        try await issuer.control(["weak": true])
        let plugin = try makePlugin(issuer)
        let token = try await issuer.mint(["key": "weak"])
        expectInvalid(try await authenticate(plugin, token: token), "below the minimum of 2048", token: token)
    }

    // AUTH-5: a valid token without the required scopes → 403 insufficient_scope naming the scopes needed.
    @Test func missingScopeIsForbiddenWithAChallenge() async throws {
        let issuer = try await TestIssuer.start()
        defer { issuer.stop() }
        let plugin = try makePlugin(issuer, ["required_scopes": ["mcp:tools", "mcp:admin"]])
        let narrow = try await issuer.mint(["claims": ["scope": "openid mcp:tools"]])
        let answer = try await authenticate(plugin, token: narrow)
        #expect(answer["result"] == "reject")
        #expect(answer["status"] == 403)
        #expect(answer["challenge"]?["error"] == "insufficient_scope")
        #expect(answer["challenge"]?["scope"] == "mcp:tools mcp:admin")
        #expect(answer["reason"] == "token lacks scope mcp:admin")

        let wide = try await issuer.mint(["claims": ["scope": "mcp:admin openid mcp:tools"]])
        let ok = try await authenticate(plugin, token: wide)
        #expect(ok["result"] == "authenticated")
        #expect(ok["principal"]?["attributes"]?["scopes"] == ["mcp:admin", "openid", "mcp:tools"])
        let scp = try await issuer.mint(["claims": ["scp": ["mcp:tools", "mcp:admin"]]])
        #expect(try await authenticate(plugin, token: scp)["result"] == "authenticated")
    }

    @Test func mapsClaimsToThePrincipal() async throws {
        let issuer = try await TestIssuer.start()
        defer { issuer.stop() }
        let plugin = try makePlugin(
            issuer,
            [
                "groups_claim": "realm_access.roles", "tenant_claim": "org.id",
                "attribute_claims": ["email", "https://example.test/team", "org.plan", "absent"],
            ])
        let token = try await issuer.mint([
            "claims": [
                "sub": "u-42", "realm_access": ["roles": ["eng", "oncall"]], "org": ["id": "acme", "plan": "gold"],
                "email": "bob@example.test", "https://example.test/team": "red", "scope": "mcp:tools",
            ]
        ])
        let answer = try await authenticate(plugin, token: token)
        #expect(answer["result"] == "authenticated")
        let p = try #require(answer["principal"])
        #expect(p["id"] == "u-42")
        #expect(p["groups"] == ["eng", "oncall"])
        #expect(p["tenant"] == "acme")
        #expect(p["attributes"] == [
            "iss": .string(issuer.url), "scopes": ["mcp:tools"], "email": "bob@example.test",
            "https://example.test/team": "red", "org.plan": "gold",
        ])
        #expect(!answer.text.contains(token.split(separator: ".")[2]))

        // Default mapping: `sub` and `groups` (a single string becomes one group).
        let plain = try makePlugin(issuer)
        let single = try await issuer.mint(["claims": ["groups": "admins"]])
        #expect(try await authenticate(plain, token: single)["principal"]?["groups"] == ["admins"])
        let anonymous = try await issuer.mint(["claims": ["sub": nil]])
        expectInvalid(try await authenticate(plain, token: anonymous), "token has no usable sub claim", token: anonymous)
    }

    // Non-JWT credentials are left to later plugins in the chain (e.g. apikey).
    @Test func abstainsWithoutABearerJWT() async throws {
        let plugin = try makePlugin(nil, ["issuer": "https://idp.example.test", "audience": "https://mcp.example.test"])
        let none = try await authenticate(plugin)
        #expect(none == ["result": "abstain", "reason": "no bearer token"])
        let basic = try await authenticate(plugin, headers: ["authorization": "Basic YWxpY2U6c2VjcmV0"])
        #expect(basic == ["result": "abstain", "reason": "no bearer token"])
        let apiKey = try await authenticate(plugin, token: "sk-live-0123456789abcdef")
        #expect(apiKey == ["result": "abstain", "reason": "not a JWT"])
        let dotted = try await authenticate(plugin, token: "abc.def.ghi")
        #expect(dotted == ["result": "abstain", "reason": "not a JWT"])
    }

    @Test func readsTheConfiguredHeader() async throws {
        let issuer = try await TestIssuer.start()
        defer { issuer.stop() }
        let plugin = try makePlugin(issuer, ["header": "X-Access-Token"])
        let token = try await issuer.mint()
        #expect(try await authenticate(plugin, headers: ["x-access-token": .string(token)])["result"] == "authenticated")
        #expect(try await authenticate(plugin, token: token)["result"] == "abstain")
    }

    // AUTH-2: what the kernel serves as /.well-known/oauth-protected-resource (it adds `resource`).
    @Test func resourceMetadata() async throws {
        let plugin = try makePlugin(
            nil, ["issuer": "https://idp.example.test/realms/mcp", "audience": "https://mcp.example.test",
                  "required_scopes": ["mcp:tools"]])
        let answer = try await PluginExport.run(plugin, op: "resource_metadata", request: [:])
        #expect(answer == [
            "authorization_servers": ["https://idp.example.test/realms/mcp"], "scopes_supported": ["mcp:tools"],
            "bearer_methods_supported": ["header"],
        ])
        let advertised = try makePlugin(
            nil, ["issuer": "https://idp.example.test", "audience": "https://mcp.example.test",
                  "scopes_supported": ["mcp:tools", "mcp:admin"]])
        #expect(try await PluginExport.run(advertised, op: "resource_metadata", request: [:])["scopes_supported"]
            == ["mcp:tools", "mcp:admin"])
        await #expect(throws: PluginError.self) { try await PluginExport.run(plugin, op: "authorize", request: [:]) }
    }

    @Test func configErrorsAreClear() throws {
        let base: JSONObject = ["issuer": "https://idp.example.test", "audience": "https://mcp.example.test"]
        func message(_ extra: JSON) -> String {
            var c = base
            for m in extra.objectValue ?? [:] { c[m.key] = m.value }
            do {
                _ = try makePlugin(nil, .object(c))
                return "accepted"
            } catch let e as PluginError {
                return e.message
            } catch {
                return "\(error)"
            }
        }
        #expect(message(["algorithms": ["RS256", "none"]]) == #"oidc: algorithms: "none" is never allowed (unsigned or symmetric tokens)"#)
        #expect(message(["algorithms": ["HS256"]]) == #"oidc: algorithms: "HS256" is never allowed (unsigned or symmetric tokens)"#)
        #expect(message(["algorithms": ["RS512"]]) == #"oidc: algorithms: "RS512" is not supported (RS256, PS256, ES256, ES384, EdDSA)"#)
        #expect(message(["issuer": "http://idp.example.test"]).contains("must use https"))
        #expect(message(["issuer": "idp.example.test"]).contains("must be an https URL"))
        #expect(message(["audience": []]) == "oidc: audience must name at least one non-empty resource URI")
        #expect(message(["jwks_file": "/nonexistent/jwks.json", "jwks_uri": "https://idp.example.test/jwks"])
            == "oidc: give jwks_file or jwks_uri, not both")
        #expect(message(["jwks_file": "/nonexistent/jwks.json"]) == "oidc: jwks_file /nonexistent/jwks.json: cannot read file")
        #expect(message(["clock_skew_s": -1]) == "oidc: clock_skew_s must be between 0 and 3600")
        #expect(message(["http_timeout_ms": 0]) == "oidc: http_timeout_ms must be between 1 and 60000")
        #expect(message(["required_scopes": ["a b"]]).contains("without spaces"))
        #expect(message(["tls": ["ca_file": "/nonexistent/ca.pem"]]).contains("tls.ca_file /nonexistent/ca.pem"))
        #expect(throws: DecodingError.self) { try makePlugin(nil, ["issuer": "https://idp.example.test"]) }
    }

    @Test func schemaIsClosed() {
        let schema = OIDC.configSchema
        #expect(schema["additionalProperties"] == false)
        #expect(schema["properties"]?["tls"]?["additionalProperties"] == false)
        #expect(schema["required"] == ["issuer", "audience"])
    }
}
