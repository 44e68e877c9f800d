import CLibcrypto
import CSodium
import MCPGJSON

/// libsodium needs `sodium_init` once before use; it is thread-safe and idempotent.
let sodiumReady: Bool = sodium_init() >= 0

/// Lowercase hex of the SHA-256 of `bytes`: OpenSSL's `EVP_Digest` (SHA extensions where the CPU has them; a
/// plugin file is hashed at every boot), or libsodium's `crypto_hash_sha256` should OpenSSL fail.
public func sha256Hex(_ bytes: some Collection<UInt8>) -> String {
    var out = [UInt8](repeating: 0, count: Int(crypto_hash_sha256_BYTES))
    withBytes(bytes) { b in
        var size: UInt32 = 0
        let ok = out.withUnsafeMutableBufferPointer { o in
            EVP_Digest(b.baseAddress, b.count, o.baseAddress, &size, EVP_sha256(), nil) == 1
        }
        if !ok || size != 32 { _ = crypto_hash_sha256(&out, b.baseAddress, UInt64(b.count)) }
    }
    return Hex.encode(out)
}

/// Runs `body` over contiguous storage of `bytes`, copying only when the collection has none.
func withBytes<R>(_ bytes: some Collection<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
    if let r = bytes.withContiguousStorageIfAvailable(body) { return r }
    return Array(bytes).withUnsafeBufferPointer(body)
}

/// BLAKE2b of `bytes` with a `length`-byte output (libsodium `crypto_generichash`, no key).
func blake2b(_ bytes: some Collection<UInt8>, length: Int) -> [UInt8] {
    precondition(sodiumReady, "libsodium failed to initialize")
    var out = [UInt8](repeating: 0, count: length)
    withBytes(bytes) { b in _ = crypto_generichash(&out, length, b.baseAddress, UInt64(b.count), nil, 0) }
    return out
}

/// Standard base64 with padding, as minisign writes it.
func base64Encode(_ bytes: [UInt8]) -> String {
    let variant = Int32(sodium_base64_VARIANT_ORIGINAL)
    let size = sodium_base64_encoded_len(bytes.count, variant)
    var out = [CChar](repeating: 0, count: size)
    bytes.withUnsafeBufferPointer { b in _ = sodium_bin2base64(&out, size, b.baseAddress, b.count, variant) }
    return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Decodes standard base64 (padding required, no whitespace); nil unless the result has exactly `length` bytes.
func base64Decode(_ text: Substring, length: Int) -> [UInt8]? {
    let input = Array(text.utf8)
    // Room for one extra byte, so a longer payload is detected instead of truncated.
    var out = [UInt8](repeating: 0, count: length + 3)
    var written = 0
    let rc = input.withUnsafeBufferPointer { inb in
        inb.withMemoryRebound(to: CChar.self) { chars in
            sodium_base642bin(
                &out, out.count, chars.baseAddress, chars.count, nil, &written, nil,
                Int32(sodium_base64_VARIANT_ORIGINAL))
        }
    }
    guard rc == 0, written == length else { return nil }
    return Array(out.prefix(length))
}
