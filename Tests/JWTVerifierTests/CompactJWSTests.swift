import JWTVerifier
import MCPGJSON
import Testing

@Suite struct CompactJWSTests {
    static func segment(_ json: JSON) -> String { Base64URL.encode(json.serialized()) }

    @Test func splitsHeaderClaimsAndSignature() throws {
        let h = Self.segment(["alg": "ES256", "kid": "k1"])
        let p = Self.segment(["sub": "alice"])
        let jws = try CompactJWS.parse("\(h).\(p).AQAB")
        #expect(jws.header["kid"] == "k1")
        #expect(jws.claims["sub"] == "alice")
        #expect(jws.signature == [1, 0, 1])
        #expect(jws.signingInput == Array("\(h).\(p)".utf8))
    }

    @Test func otherCredentialsAreNotJWTs() {
        for token in ["sk-live-123456", "a.b", "a.b.c.d", "abc.def.ghi", "eyJ.e30.", "\(Self.segment("x")).e30.AA"] {
            #expect(throws: CompactJWS.ParseError.notJWT("not a JWT")) { try CompactJWS.parse(token) }
        }
    }

    @Test func brokenJWTsAreMalformed() {
        let h = Self.segment(["alg": "RS256"])
        #expect(throws: CompactJWS.ParseError.malformed("payload is not a JSON object")) {
            try CompactJWS.parse("\(h).\(Self.segment([1, 2])).AA")
        }
        #expect(throws: CompactJWS.ParseError.malformed("payload is not base64url")) {
            try CompactJWS.parse("\(h).AR.AA")
        }
        #expect(throws: CompactJWS.ParseError.malformed("signature is not base64url")) {
            try CompactJWS.parse("\(h).e30.A")
        }
        let big = String(repeating: "A", count: CompactJWS.maxBytes)
        #expect(throws: CompactJWS.ParseError.malformed("token is larger than \(CompactJWS.maxBytes) bytes")) {
            try CompactJWS.parse("\(h).\(big).AA")
        }
    }

    @Test func repeatedHeaderOrClaimNamesAreRefused() {
        let dupHeader = Base64URL.encode(Array(#"{"alg":"RS256","alg":"none"}"#.utf8))
        #expect(throws: CompactJWS.ParseError.malformed("header repeats \"alg\"")) {
            try CompactJWS.parse("\(dupHeader).e30.AA")
        }
        let h = Self.segment(["alg": "RS256"])
        let dupClaims = Base64URL.encode(Array(#"{"sub":"a","sub":"b"}"#.utf8))
        #expect(throws: CompactJWS.ParseError.malformed("claims repeat \"sub\"")) {
            try CompactJWS.parse("\(h).\(dupClaims).AA")
        }
    }
}
