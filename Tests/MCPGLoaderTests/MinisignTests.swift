import Foundation
import MCPGLoader
import Testing

/// Compatibility with the real `minisign` tool (Debian's minisign 0.11), in both directions.
@Suite struct MinisignTests {
    @Test func minisignKeyAndSignatureVerifyInMCPG() async throws {
        let dir = try TempDir()
        let keygen = try await run(minisignPath, ["-G", "-W", "-p", dir.file("k.pub"), "-s", dir.file("k.key")])
        try #require(keygen.status == 0, "minisign -G failed: \(keygen.stderr)")
        let data = try dir.write("data.bin", "hello plugin bytes\n")
        let sign = try await run(minisignPath, ["-S", "-s", dir.file("k.key"), "-m", data, "-t", "mcpg-plugin name=x version=1 abi=1"])
        try #require(sign.status == 0, "minisign -S failed: \(sign.stderr)")

        let pub = try MinisignPublicKey(contentsOfFile: dir.file("k.pub"))
        // minisign prints the key id in the .pub comment with `%llX`, so without leading zeros (a key id whose top
        // nibble is 0, one key in 16, prints 15 digits); it must be the same number as ours.
        let comment = try String(contentsOfFile: dir.file("k.pub"), encoding: .utf8)
        let printed = String(pub.keyIDHex.drop { $0 == "0" })
        #expect(comment.hasPrefix("untrusted comment: minisign public key \(printed.isEmpty ? "0" : printed)\n"))
        let sigText = try String(contentsOfFile: data + ".minisig", encoding: .utf8)
        let verified = try Minisign.verify(Array(Data(contentsOf: URL(fileURLWithPath: data))), signature: sigText, trustedKeys: [pub])
        #expect(verified.trustedComment == "mcpg-plugin name=x version=1 abi=1")
        #expect(verified.prehashed)
        #expect(verified.keyID == pub.keyIDHex)

        // The secret key minisign wrote (unencrypted, checksum left zero by minisign) loads and matches the public key.
        let sk = try MinisignSecretKey(contentsOfFile: dir.file("k.key"))
        #expect(sk.publicKey == pub)
    }

    @Test func mcpgSignatureVerifiesWithMinisign() async throws {
        let dir = try TempDir()
        let key = MinisignSecretKey.generate()
        _ = try dir.write("k.pub", key.publicKeyFileText())
        let data = try dir.write("data.bin", String(repeating: "payload ", count: 1000))
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: data)))
        for prehashed in [true, false] {
            let text = try key.sign(bytes, trustedComment: "mcpg-plugin name=y version=2.0.0 abi=1", prehashed: prehashed)
            _ = try dir.write("data.bin.minisig", text)
            let v = try await run(minisignPath, ["-V", "-p", dir.file("k.pub"), "-m", data])
            #expect(v.status == 0, "minisign -V refused mcpg's \(prehashed ? "ED" : "Ed") signature: \(v.stderr)")
            #expect(v.stdout.contains("Trusted comment: mcpg-plugin name=y version=2.0.0 abi=1"))
            // -H demands prehashed signatures: it must accept ours only when they are.
            let h = try await run(minisignPath, ["-V", "-H", "-p", dir.file("k.pub"), "-m", data])
            #expect((h.status == 0) == prehashed)
        }
        // And with the key given inline, the way config carries it.
        let inline = try await run(minisignPath, ["-V", "-P", key.publicKey.base64, "-m", data])
        #expect(inline.status == 0)
    }

    @Test func mcpgSecretKeyFileSignsWithMinisign() async throws {
        let dir = try TempDir()
        let key = MinisignSecretKey.generate()
        _ = try dir.write("k.key", key.secretKeyFileText())
        _ = try dir.write("k.pub", key.publicKeyFileText())
        let data = try dir.write("f.txt", "signed by minisign with a key mcpg wrote\n")
        let s = try await run(minisignPath, ["-S", "-s", dir.file("k.key"), "-m", data, "-t", "hi"])
        try #require(s.status == 0, "minisign could not use mcpg's secret key: \(s.stderr)")
        let sig = try String(contentsOfFile: data + ".minisig", encoding: .utf8)
        let v = try Minisign.verify(Array("signed by minisign with a key mcpg wrote\n".utf8), signature: sig, trustedKeys: [key.publicKey])
        #expect(v.trustedComment == "hi")
        // mcpg re-reads its own file: checksum verified.
        let back = try MinisignSecretKey(contentsOfFile: dir.file("k.key"))
        #expect(back.publicKey == key.publicKey)
    }

    @Test func legacySignatureFromMinisignVerifies() async throws {
        let dir = try TempDir()
        #expect(try await run(minisignPath, ["-G", "-W", "-p", dir.file("k.pub"), "-s", dir.file("k.key")]).status == 0)
        let data = try dir.write("legacy.bin", "legacy signed\n")
        let s = try await run(minisignPath, ["-S", "-l", "-s", dir.file("k.key"), "-m", data, "-t", "old style"])
        try #require(s.status == 0, "\(s.stderr)")
        let sig = try String(contentsOfFile: data + ".minisig", encoding: .utf8)
        let pub = try MinisignPublicKey(contentsOfFile: dir.file("k.pub"))
        let v = try Minisign.verify(Array("legacy signed\n".utf8), signature: sig, trustedKeys: [pub])
        #expect(!v.prehashed)
        #expect(v.trustedComment == "old style")
        #expect(throws: LoaderError(.badSignature, "")) {
            try Minisign.verify(Array("legacy signeD\n".utf8), signature: sig, trustedKeys: [pub])
        }
    }

    @Test func refusesTamperingEditedCommentAndUnknownKeys() throws {
        let key = MinisignSecretKey.generate()
        let data = Array("the exact bytes".utf8)
        let sig = try key.sign(data, trustedComment: "mcpg-plugin name=a version=1 abi=1")
        var flipped = data
        flipped[3] ^= 1
        let tampered = #expect(throws: LoaderError.self) {
            try Minisign.verify(flipped, signature: sig, trustedKeys: [key.publicKey], source: "f.so")
        }
        #expect(tampered?.code == .badSignature)
        #expect(tampered?.message.hasPrefix("f.so: signature does not match the file") == true)

        let edited = sig.replacingOccurrences(of: "name=a", with: "name=b")
        let e = #expect(throws: LoaderError.self) {
            try Minisign.verify(data, signature: edited, trustedKeys: [key.publicKey], source: "f.so")
        }
        #expect(e?.code == .badSignature)
        #expect(e?.message.contains("trusted comment") == true)

        let other = MinisignSecretKey.generate()
        let u = #expect(throws: LoaderError.self) {
            try Minisign.verify(data, signature: sig, trustedKeys: [other.publicKey], source: "f.so")
        }
        #expect(u?.code == .untrustedKey)
        #expect(u?.message == "f.so: signed by untrusted key \(key.publicKey.keyIDHex)")

        let junk = #expect(throws: LoaderError.self) {
            try Minisign.verify(data, signature: "untrusted comment: x\nnot base64\n", trustedKeys: [key.publicKey], source: "f.so")
        }
        #expect(junk?.code == .malformedSignature)
        #expect(junk?.message.hasPrefix("f.so.minisig:") == true)
    }

    @Test func encryptedMinisignKeyIsRefusedClearly() async throws {
        let dir = try TempDir()
        // minisign asks for the password twice on stdin when it is not a terminal.
        let g = try await run(minisignPath, ["-G", "-p", dir.file("e.pub"), "-s", dir.file("e.key")], stdin: "pw\npw\n")
        try #require(g.status == 0, "minisign -G with password failed: \(g.stderr)")
        let e = #expect(throws: LoaderError.self) { try MinisignSecretKey(contentsOfFile: dir.file("e.key")) }
        #expect(e?.code == .encryptedKey)
        #expect(
            e?.message == "\(dir.file("e.key")): encrypted minisign keys are not supported; "
                + "create one with `minisign -G -W` or `mcpg plugin keygen`")
    }

    @Test func corruptSecretKeyChecksumIsRefused() throws {
        let key = MinisignSecretKey.generate()
        let lines = key.secretKeyFileText().split(separator: "\n").map(String.init)
        var raw = Array(Data(base64Encoded: lines[1])!)
        raw[raw.count - 1] ^= 0xFF  // last checksum byte
        let bad = "\(lines[0])\n\(Data(raw).base64EncodedString())\n"
        let e = #expect(throws: LoaderError.self) { try MinisignSecretKey(fileText: bad, source: "k.key") }
        #expect(e?.code == .malformedKey)
        #expect(e?.message.hasPrefix("k.key: secret key checksum") == true)
    }

    @Test func publicKeyRoundTripsAndKeyOrFile() throws {
        let key = MinisignSecretKey.generate().publicKey
        #expect(key.base64.hasPrefix("RW"))
        #expect(try MinisignPublicKey(base64: key.base64) == key)
        #expect(try MinisignPublicKey(keyOrFile: key.base64) == key)
        let dir = try TempDir()
        let f = try dir.write("k.pub", key.publicKeyFileText())
        #expect(try MinisignPublicKey(keyOrFile: f) == key)
        #expect(key.keyIDHex.count == 16)
        #expect(key.keyIDHex == key.keyIDHex.uppercased())
        let e = #expect(throws: LoaderError.self) { try MinisignPublicKey(keyOrFile: "nope") }
        #expect(e?.code == .malformedKey)
    }

    @Test func rawSignaturesForTheAuditLedger() {
        let key = MinisignSecretKey.generate()
        let msg = Array("chain head".utf8)
        let sig = key.signRaw(msg)
        #expect(sig.count == 64)
        #expect(Minisign.verifyRaw(message: msg, signature: sig, publicKey: key.publicKey))
        #expect(!Minisign.verifyRaw(message: msg + [0], signature: sig, publicKey: key.publicKey))
        #expect(!Minisign.verifyRaw(message: msg, signature: sig, publicKey: MinisignSecretKey.generate().publicKey))
    }

    @Test func sha256MatchesKnownVector() {
        #expect(sha256Hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(sha256Hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        // FIPS 180-2's long message: one million "a".
        #expect(sha256Hex([UInt8](repeating: 0x61, count: 1_000_000))
            == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// The plugin fingerprint is what `sha256sum` prints for the file (OpenSSL computes it; coreutils checks it).
    @Test func sha256MatchesSha256sum() async throws {
        let dir = try TempDir()
        let bytes = (0..<(3 << 20) + 7).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) }
        let path = dir.file("blob.bin")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let r = try await run("/usr/bin/sha256sum", [path])
        try #require(r.status == 0, "sha256sum failed: \(r.stderr)")
        #expect(r.stdout.split(separator: " ").first.map(String.init) == sha256Hex(bytes))
    }
}
