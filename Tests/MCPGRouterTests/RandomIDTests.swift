import MCPGJSON
import Testing

@testable import MCPGRouter

/// Random ids (session ids, HTTP-12; trace ids) from the buffered CSPRNG, correlation ids, and timestamps.
@Suite struct RandomIDTests {
    @Test func hexIdsHaveTheirLengthAndAlphabetAndDoNotRepeat() {
        var seen = Set<String>()
        // More than one 4 KiB refill of the pool: 600 ids × 16 bytes.
        for _ in 0..<600 {
            let id = RandomID.session()
            #expect(id.utf8.count == 32)
            #expect(id.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }, "\(id)")
            seen.insert(id)
        }
        #expect(seen.count == 600)
        #expect(RandomID.hex(bytes: 1).utf8.count == 2)
        #expect(RandomID.hex(bytes: 0).isEmpty)
    }

    @Test func hexBytesAreNotBiased() {
        // 64,000 random bytes as hex: every digit appears; each of the 16 should be near 8,000 (a stuck or
        // constant byte source would leave most at 0).
        var counts = [Int](repeating: 0, count: 16)
        for _ in 0..<1000 {
            for b in RandomID.hex(bytes: 64).utf8 { counts[Int(b < 97 ? b - 48 : b - 87)] += 1 }
        }
        #expect(counts.allSatisfy { $0 > 7000 && $0 < 9000 }, "\(counts)")
    }

    @Test func correlationIdsAreSixteenHexDigitsAndUnique() {
        let ids = (0..<10_000).map { _ in RandomID.correlation() }
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy { $0.utf8.count == 16 && $0.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) } })
    }

    @Test func timestampsAreRFC3339Milliseconds() {
        let t = UTCTimestamp.now()
        #expect(t.utf8.count == 24, "\(t)")
        #expect(t.wholeMatch(of: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/) != nil, "\(t)")
        let parsed = UTCTimestamp.parse(t)
        #expect(parsed != nil)
        if let parsed { #expect(abs(parsed - UTCTimestamp.nowSeconds()) <= 2) }
    }
}
