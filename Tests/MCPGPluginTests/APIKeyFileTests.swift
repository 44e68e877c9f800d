import Foundation
import MCPGJSON
import MCPGLoader
import Testing

/// The apikey plugin's keys from files and the environment, rotation without restart, expiry, and JWT bearers.
@Suite struct APIKeyFileTests {
    static let aliceHash = APIKeyTests.aliceHash
    static let bobHash = APIKeyTests.bobHash
    // `printf %s carol-secret-key | sha256sum`
    static let carolHash = "6339a584a728963c4acf905b798927c73a8b6298c61f9160fdc2bb11e706312e"

    static func request(_ headers: JSONObject) -> JSON {
        ["transport": "http", "peer": ["address": "10.0.0.7:5000", "loopback": false], "headers": .object(headers)]
    }

    func tempFile(_ name: String, _ text: String) throws -> String {
        let dir = NSTemporaryDirectory() + "mcpg-apikey-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func yamlFileWithGroupsTenantAndExpiry() async throws {
        let file = try tempFile("keys.yaml", """
            # rotated by ops
            - id: alice
              sha256: \(Self.aliceHash)
              groups: [eng, ops]
              tenant: acme
              expires: 2999-01-01T00:00:00Z
            - id: bob
              sha256: \(Self.bobHash)
              expires: "2001-01-01T00:00:00+02:00"
            """)
        let p = try instance("apikey", config: ["keys_file": .string(file)])
        let alice = try await p.ok("authenticate", Self.request(["authorization": "Bearer alice-secret-key"]))
        #expect(alice["result"] == "authenticated")
        #expect(alice["principal"]?["groups"] == ["eng", "ops"])
        #expect(alice["principal"]?["tenant"] == "acme")
        let bob = try await p.ok("authenticate", Self.request(["x-api-key": "bob-secret-key"]))
        #expect(bob["result"] == "reject")
        #expect(bob["reason"] == "api key bob expired")
    }

    @Test func lineFileAndJSONFile() async throws {
        let lines = try tempFile("keys.txt", "# id:sha256\nalice:\(Self.aliceHash)\n\nbob:\(Self.bobHash)\n")
        let p = try instance("apikey", config: ["keys_file": .string(lines)])
        #expect(try await p.ok("authenticate", Self.request(["x-api-key": "bob-secret-key"]))["principal"]?["id"] == "bob")
        let json = try tempFile("keys.json", #"{"keys": [{"id": "alice", "sha256": "\#(Self.aliceHash)", "groups": ["x"]}]}"#)
        let q = try instance("apikey", config: ["keys_file": .string(json)])
        let r = try await q.ok("authenticate", Self.request(["x-api-key": "alice-secret-key"]))
        #expect(r["principal"]?["groups"] == ["x"])
    }

    /// A changed file takes effect without a restart; a broken edit keeps the previous keys.
    @Test func rotationWithoutRestart() async throws {
        let file = try tempFile("keys.txt", "alice:\(Self.aliceHash)\n")
        let p = try instance("apikey", config: ["keys_file": .string(file), "reload_interval_s": 0.05])
        #expect(try await p.ok("authenticate", Self.request(["x-api-key": "alice-secret-key"]))["result"] == "authenticated")
        #expect(try await p.ok("authenticate", Self.request(["x-api-key": "bob-secret-key"]))["result"] == "reject")
        try "bob:\(Self.bobHash)\n".write(toFile: file, atomically: true, encoding: .utf8)
        try await Task.sleep(for: .milliseconds(150))
        #expect(try await p.ok("authenticate", Self.request(["x-api-key": "bob-secret-key"]))["result"] == "authenticated")
        #expect(try await p.ok("authenticate", Self.request(["x-api-key": "alice-secret-key"]))["result"] == "reject")
        try "- id: [unclosed\n".write(toFile: file, atomically: true, encoding: .utf8)
        try await Task.sleep(for: .milliseconds(150))
        #expect(try await p.ok("authenticate", Self.request(["x-api-key": "bob-secret-key"]))["result"] == "authenticated")
    }

    @Test func keysFromTheEnvironment() async throws {
        setenv("MCPG_TEST_APIKEYS", "carol:\(Self.carolHash)", 1)
        let p = try instance("apikey", config: ["keys_env": "MCPG_TEST_APIKEYS",
                                               "keys": [["id": "alice", "sha256": .string(Self.aliceHash)]]])
        let carol = try await p.ok("authenticate", Self.request(["x-api-key": "carol-secret-key"]))
        #expect(carol["principal"]?["id"] == "carol")
        #expect(try await p.ok("authenticate", Self.request(["x-api-key": "alice-secret-key"]))["result"] == "authenticated")
        let unset = try creationError("apikey", config: ["keys_env": "MCPG_TEST_NO_SUCH_VARIABLE"])
        #expect(unset.contains("MCPG_TEST_NO_SUCH_VARIABLE is not set"), "\(unset)")
    }

    /// An unknown bearer that is shaped like a JWT abstains (a JWT plugin later in the chain takes it); any other
    /// unknown key is still refused.
    @Test func unknownJWTAbstains() async throws {
        let p = try instance("apikey", config: APIKeyTests.config)
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"
        let r = try await p.ok("authenticate", Self.request(["authorization": .string("Bearer \(jwt)")]))
        #expect(r["result"] == "abstain")
        for notJWT in ["a.b", "a.b.c.d", "eyJ.eyJ.sig+/=", "a..c"] {
            let x = try await p.ok("authenticate", Self.request(["authorization": .string("Bearer \(notJWT)")]))
            #expect(x["result"] == "reject", "\(notJWT)")
        }
    }

    @Test func badFilesAreRefusedAtCreate() throws {
        let dup = try tempFile("dup.txt", "alice:\(Self.aliceHash)\n")
        let m1 = try creationError("apikey", config: ["keys_file": .string(dup),
                                                     "keys": [["id": "alice", "sha256": .string(Self.bobHash)]]])
        #expect(m1.contains("duplicate key id \"alice\""), "\(m1)")
        let badTime = try tempFile("t.yaml", "- {id: a, sha256: \(Self.aliceHash), expires: tomorrow}\n")
        let m2 = try creationError("apikey", config: ["keys_file": .string(badTime)])
        #expect(m2.contains("RFC 3339"), "\(m2)")
        let m3 = try creationError("apikey", config: ["keys_file": "/nonexistent/keys"])
        #expect(m3.contains("cannot read"), "\(m3)")
    }
}
