import Foundation
import MCPGJSON
import PluginKit
import Testing

@testable import OIDCPlugin

/// Builds the plugin from `config` merged over a config for `issuer` (its URL, the default audience, and a
/// 1 s refresh interval so tests do not wait long), as the kernel would after schema validation.
func makePlugin(_ issuer: TestIssuer?, _ extra: JSON = [:]) throws -> OIDC {
    var config: JSONObject = [:]
    if let issuer {
        config = ["issuer": .string(issuer.url), "audience": .string(TestIssuer.audience), "jwks_min_refresh_s": 1]
    }
    for m in extra.objectValue ?? [:] { config[m.key] = m.value.isNull ? nil : m.value }
    let decoded = try JSONDecoder().decode(OIDC.Config.self, from: Data(JSON.object(config).serialized()))
    return try OIDC(config: decoded, host: .detached)
}

/// The `authenticate` payload for a request carrying `headers` (an `Authorization: Bearer` one for `token`).
func authenticate(_ plugin: OIDC, token: String? = nil, headers: JSONObject = [:]) async throws -> JSON {
    var h = headers
    if let token { h["authorization"] = .string("Bearer \(token)") }
    return try await PluginExport.run(
        plugin, op: "authenticate",
        request: [
            "transport": "http", "peer": ["address": "127.0.0.1:40000", "loopback": true], "headers": .object(h),
        ])
}

/// Expects a 401-style refusal whose reason contains `reason`, with an `invalid_token` challenge, and no
/// piece of the token anywhere in the answer.
func expectInvalid(_ answer: JSON, _ reason: String, token: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(answer["result"] == "reject", "\(answer)", sourceLocation: sourceLocation)
    let why = answer["reason"]?.stringValue ?? ""
    #expect(why.contains(reason), "reason: \(why)", sourceLocation: sourceLocation)
    #expect(answer["challenge"]?["error"] == "invalid_token", sourceLocation: sourceLocation)
    #expect(answer["status"] == nil, sourceLocation: sourceLocation)
    let text = answer.text
    for part in token.split(separator: ".") where part.count > 8 {
        #expect(!text.contains(part), "the answer must not carry the token", sourceLocation: sourceLocation)
    }
}

/// Seconds since the epoch.
func epoch() -> Int64 { Int64(Date().timeIntervalSince1970) }

/// Waits until `condition` holds or `seconds` pass; returns whether it held.
func eventually(_ seconds: Double = 5, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}
