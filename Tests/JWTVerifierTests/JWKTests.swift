import JWTVerifier
import MCPGJSON
import Testing

/// JWK parsing on hand-made entries; the keys themselves come from the issuer in the other suites.
@Suite struct JWKTests {
    @Test func symmetricAndEncryptionKeysAreSkipped() throws {
        let set = try JWKSet(json: [
            "keys": [
                ["kty": "oct", "kid": "hmac", "k": "c2VjcmV0"],
                ["kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"],
                ["kty": "EC", "kid": "p521", "crv": "P-521", "x": "AA", "y": "AA"],
                ["kty": "RSA", "kid": "hs", "alg": "HS256", "n": "AQAB", "e": "AQAB"],
            ]
        ])
        #expect(set.keys.isEmpty)
        #expect(set.skipped.map(\.kid) == ["hmac", "enc", "p521", "hs"])
        #expect(set.skipped[0].reason == "symmetric (oct) keys are never used")
        guard case .unusable(let why) = set.select(alg: .rs256, kid: "hmac") else {
            Issue.record("a skipped key must not be selectable")
            return
        }
        #expect(why.contains("symmetric"))
    }

    @Test func smallRSAKeysAreRefused() {
        // A 1024-bit modulus (top bit set).
        let n = Base64URL.encode([0x80] + [UInt8](repeating: 0x01, count: 127))
        #expect(throws: JWKError("RSA key of 1024 bits is below the minimum of 2048")) {
            try JWK(json: ["kty": "RSA", "n": .string(n), "e": "AQAB"])
        }
    }

    @Test func ecPointsMustBeOnTheCurveAndFullLength() {
        let x = Base64URL.encode([UInt8](repeating: 1, count: 32))
        #expect(throws: JWKError("P-256 point is not on the curve")) {
            try JWK(json: ["kty": "EC", "crv": "P-256", "x": .string(x), "y": .string(x)])
        }
        #expect(throws: JWKError("P-256 coordinates must be 32 bytes each (x 31, y 32)")) {
            try JWK(json: [
                "kty": "EC", "crv": "P-256", "x": .string(Base64URL.encode([UInt8](repeating: 1, count: 31))),
                "y": .string(x),
            ])
        }
    }

    @Test func documentShapeErrors() {
        #expect(throws: JWKError("JWKS has no \"keys\" array")) { try JWKSet(json: ["keys": "x"]) }
        #expect(throws: JWKError("JWKS must be a JSON object, not array")) { try JWKSet(json: []) }
    }

    @Test func forbiddenAlgorithmNames() {
        for name in ["none", "None", "NONE", "HS256", "hs384", "HS512"] { #expect(JWSAlgorithm.isForbidden(name)) }
        for name in ["RS256", "PS256", "ES256", "ES384", "EdDSA"] { #expect(!JWSAlgorithm.isForbidden(name)) }
    }
}
