import MCPGJSON
import MCPGLoader
import Testing

/// The apikey identity plugin, loaded through the real loader.
@Suite struct APIKeyTests {
    // `printf %s alice-secret-key | sha256sum` and the same for bob-secret-key.
    static let aliceHash = "d85cc5e31c65548b64632af4304e20eb0f792b7280b1cf6fd73ffa0d9c745f5b"
    static let bobHash = "2656fecc42e5ed2e72a2a5f2d92068d8c7bfe8f9af4c62895a25dcb6f5bbb64b"

    static let config: JSON = [
        "keys": [
            ["id": "alice", "sha256": .string(aliceHash), "groups": ["eng", "ops"], "tenant": "acme"],
            ["id": "bob", "sha256": .string(bobHash)],
        ]
    ]

    func authenticate(_ headers: JSONObject, config: JSON = Self.config) async throws -> JSON {
        let p = try instance("apikey", config: config)
        return try await p.ok(
            "authenticate",
            ["transport": "http", "peer": ["address": "10.0.0.7:5000", "loopback": false], "headers": .object(headers)])
    }

    @Test func bearerKeyAuthenticatesWithGroupsAndTenant() async throws {
        let r = try await authenticate(["authorization": "Bearer alice-secret-key"])
        #expect(r["result"] == "authenticated")
        #expect(r["principal"]?["id"] == "alice")
        #expect(r["principal"]?["groups"] == ["eng", "ops"])
        #expect(r["principal"]?["tenant"] == "acme")
        #expect(r["reason"] == "api key alice")
    }

    @Test func xAPIKeyHeaderAuthenticates() async throws {
        let r = try await authenticate(["x-api-key": "bob-secret-key"])
        #expect(r["result"] == "authenticated")
        #expect(r["principal"]?["id"] == "bob")
        #expect(r["principal"]?["groups"] == [])
        #expect(r["principal"]?["tenant"] == nil)
    }

    @Test func wrongKeyIsRejected() async throws {
        for headers: JSONObject in [["authorization": "Bearer alice-secret-kez"], ["x-api-key": "d85cc5e31c65"]] {
            let r = try await authenticate(headers)
            #expect(r["result"] == "reject")
            #expect(r["reason"] == "unknown API key")
            #expect(r["principal"] == nil)
        }
    }

    @Test func noKeyAbstains() async throws {
        for headers: JSONObject in [[:], ["authorization": "Basic YWxpY2U6eA=="], ["authorization": "Bearer "]] {
            let r = try await authenticate(headers)
            #expect(r["result"] == "abstain")
            #expect(r["reason"] == "no API key presented")
        }
    }

    @Test func configuredHeaderIsTheOnlyOneRead() async throws {
        var config = Self.config.objectValue!
        config["header"] = "X-Gateway-Token"
        let hit = try await authenticate(["x-gateway-token": "alice-secret-key"], config: .object(config))
        #expect(hit["principal"]?["id"] == "alice")
        let ignored = try await authenticate(["authorization": "Bearer alice-secret-key"], config: .object(config))
        #expect(ignored["result"] == "abstain")
    }

    @Test func badSHA256IsRefusedAtCreate() throws {
        let bads = [String(Self.aliceHash.dropLast()), Self.aliceHash.uppercased(), "zz" + Self.aliceHash.dropFirst(2)]
        for bad in bads {
            let message = try creationError("apikey", config: ["keys": [["id": "alice", "sha256": .string(bad)]]])
            #expect(message.contains("sha256 must be 64 lowercase hex digits"), "\(message)")
            #expect(message.contains("alice"))
        }
    }

    @Test func duplicateIDsAreRefusedAtCreate() throws {
        let message = try creationError(
            "apikey",
            config: [
                "keys": [
                    ["id": "alice", "sha256": .string(Self.aliceHash)],
                    ["id": "alice", "sha256": .string(Self.bobHash)],
                ]
            ])
        #expect(message.contains("duplicate key id \"alice\""), "\(message)")
    }

    @Test func missingKeysIsRefusedAtCreate() throws {
        let message = try creationError("apikey", config: [:])
        #expect(message.contains("keys"), "\(message)")
    }
}
