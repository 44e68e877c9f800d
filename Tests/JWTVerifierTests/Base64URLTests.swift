import JWTVerifier
import Testing

@Suite struct Base64URLTests {
    @Test func roundTripsEveryLength() {
        for n in 0..<40 {
            let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            let text = Base64URL.encode(bytes)
            #expect(!text.contains("="))
            #expect(Base64URL.decode(text) == bytes)
        }
    }

    @Test func decodesTheURLSafeAlphabet() {
        #expect(Base64URL.decode("-_8") == [0xFB, 0xFF])
        #expect(Base64URL.decode("AQAB") == [1, 0, 1])
    }

    @Test func refusesPaddingOtherAlphabetsAndWhitespace() {
        #expect(Base64URL.decode("AQ==") == nil)
        #expect(Base64URL.decode("+/8") == nil)
        #expect(Base64URL.decode("AQ AB") == nil)
        #expect(Base64URL.decode("AQAB\n") == nil)
    }

    @Test func refusesImpossibleLengthsAndNonCanonicalTrailingBits() {
        // 5 characters: one leftover character can never form a byte.
        #expect(Base64URL.decode("AQABA") == nil)
        // "AR" has nonzero bits after the one byte it encodes; "AQ" is the canonical form of [1].
        #expect(Base64URL.decode("AQ") == [1])
        #expect(Base64URL.decode("AR") == nil)
    }
}
