import MCPGJSON
import MCPGRouter
import Testing

@Suite struct SessionIDs {
    let secret = Array("a secret of at least thirty-two bytes, shared by replicas".utf8)

    @Test func anIDCarriesItsSessionOnlyToHoldersOfTheKey() throws {
        let sealer = try SessionSealer(secret: secret)
        let s = SealedSession(owner: "alice", protocolVersion: "2025-11-25", clientCapabilities: ["sampling": [:]],
                              clientInfo: ["name": "c", "version": "1"], issuedAt: 1_800_000_000)
        let id = sealer.seal(s)
        #expect(id.hasPrefix("s1."))
        // HTTP-12: visible ASCII only.
        #expect(id.utf8.allSatisfy { $0 >= 0x21 && $0 <= 0x7E })
        #expect(sealer.open(id) == s)
        // Two seals of the same state differ (random nonce): ids are not predictable.
        #expect(sealer.seal(s) != id)
        #expect(try SessionSealer(secret: secret).open(id) == s)
        #expect(try SessionSealer(secret: Array("another secret of at least thirty-two bytes!".utf8)).open(id) == nil)
        var bytes = Array(id.utf8)
        bytes[bytes.count / 2] = bytes[bytes.count / 2] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(sealer.open(String(decoding: bytes, as: UTF8.self)) == nil)
        for junk in ["", "s1.", "s1.!!!", "0123456789abcdef0123456789abcdef", String(repeating: "s1.A", count: 4000)] {
            #expect(sealer.open(junk) == nil)
        }
        #expect(throws: SessionKeyError.self) { try SessionSealer(secret: Array("short".utf8)) }
    }

    @Test func anotherTableWithTheSameKeyServesTheSessionUnlessItEnded() async throws {
        let h = try Harness()
        let who = try await h.identity("alice")
        let s = try await h.open(who)
        // A restart (or another replica): a new table, the same key.
        let replica = SessionTable(idleTimeout: .seconds(60), sealer: h.gateway.sessions.sealer)
        let rebuilt = try #require(replica.lookup(s.id, principal: "alice"))
        #expect(rebuilt.protocolVersion == s.protocolVersion && rebuilt.isInitialized)
        #expect(replica.lookup(s.id, principal: "mallory") == nil)
        #expect(SessionTable(idleTimeout: .seconds(60)).lookup(s.id, principal: "alice") == nil)
        // Ended here: never rebuilt here again.
        #expect(replica.remove(s.id, principal: "alice"))
        #expect(replica.lookup(s.id, principal: "alice") == nil)
        // Too old: refused everywhere.
        let strict = SessionTable(idleTimeout: .seconds(60), sealer: h.gateway.sessions.sealer, maxAgeSeconds: -1)
        #expect(strict.lookup(s.id, principal: "alice") == nil)
    }
}
