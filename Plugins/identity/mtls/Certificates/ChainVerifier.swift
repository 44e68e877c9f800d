import FoundationEssentials
import SwiftASN1
@_spi(FixedExpiryValidationTime) import X509

#if canImport(Glibc)
import Glibc
#endif

/// A certificate problem: a file that does not load, or a chain that does not verify. The message names the
/// check or the file, never key material.
public struct CertificateError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// PEM certificate bundles.
public enum PEMBundle {
    /// Every `CERTIFICATE` block of `pem`, in order; other block types are skipped.
    /// - Throws: `CertificateError` when a certificate block does not parse, or there is none.
    public static func certificates(pem: String, what: String = "PEM") throws(CertificateError) -> [Certificate] {
        let documents: [PEMDocument]
        do { documents = try PEMDocument.parseMultiple(pemString: pem) } catch {
            throw CertificateError("\(what): not PEM (\(error))")
        }
        var out: [Certificate] = []
        for (i, d) in documents.enumerated() where d.discriminator == "CERTIFICATE" {
            do { out.append(try Certificate(derEncoded: d.derBytes)) } catch {
                throw CertificateError("\(what): certificate \(i + 1) does not parse (\(error))")
            }
        }
        guard !out.isEmpty else { throw CertificateError("\(what): no certificate") }
        return out
    }

    /// The certificates of the PEM file at `path`.
    public static func certificates(file path: String) throws(CertificateError) -> [Certificate] {
        guard let bytes = FileBytes.read(path) else { throw CertificateError("\(path): cannot read the file") }
        return try certificates(pem: String(decoding: bytes, as: UTF8.self), what: path)
    }
}

/// Small file reads without Foundation's file APIs.
public enum FileBytes {
    /// The file's bytes, or nil when it cannot be read (or is larger than 64 MiB).
    public static func read(_ path: String) -> [UInt8]? {
        guard let f = fopen(path, "rb") else { return nil }
        defer { fclose(f) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n > 0 { out += buf[0..<n] }
            if n < buf.count { return ferror(f) == 0 ? out : nil }
            if out.count > 64 << 20 { return nil }
        }
    }
}

/// Why a presented chain was refused, as a short reason for the audit record.
public enum ChainFailure: Error, Sendable, Equatable, CustomStringConvertible {
    case expired
    case notYetValid
    case unknownCA(String)
    case revoked(serial: String)
    case malformed(String)

    public var description: String {
        switch self {
        case .expired: return "client certificate expired"
        case .notYetValid: return "client certificate not yet valid"
        case .unknownCA(let why): return "client certificate not issued by a trusted CA (\(why))"
        case .revoked(let serial): return "client certificate revoked (serial \(serial))"
        case .malformed(let why): return "client certificate unusable: \(why)"
        }
    }
}

/// Verifies client certificate chains against trust roots (RFC 5280 path validation by swift-certificates:
/// signatures, validity periods, basic constraints, name constraints), then against revocations.
public struct ChainVerifier: Sendable {
    public let roots: [Certificate]
    public let revocations: Revocations

    public init(roots: [Certificate], revocations: Revocations = Revocations()) {
        self.roots = roots
        self.revocations = revocations
    }

    /// The validated chain (leaf first, root last) for `presented` (leaf first, then the intermediates the
    /// client sent), or why it fails. `now` is for tests; nil means the current time.
    public func verify(_ presented: [Certificate], now: Date? = nil) async -> Result<[Certificate], ChainFailure> {
        guard let leaf = presented.first else { return .failure(.malformed("no certificate")) }
        let t = now ?? Date()
        if t > leaf.notValidAfter { return .failure(.expired) }
        if t < leaf.notValidBefore { return .failure(.notYetValid) }
        var verifier = Verifier(rootCertificates: CertificateStore(roots)) {
            RFC5280Policy(fixedExpiryValidationTime: t)
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(presented.dropFirst()))
        switch result {
        case .validCertificate(let chain):
            for cert in chain.dropLast() where revocations.isRevoked(cert) {
                return .failure(.revoked(serial: Revocations.hex(cert.serialNumber.bytes)))
            }
            return .success(Array(chain))
        case .couldNotValidate(let failures):
            let why = failures.first.map { "\($0.policyFailureReason)" } ?? "no chain to a trusted root"
            return .failure(.unknownCA(why))
        }
    }
}

/// Revoked certificates: serials from config (any issuer) and the entries of CRLs (per issuer, each CRL's
/// signature checked against its issuer among the trust roots or intermediates given).
public struct Revocations: Sendable {
    var anyIssuer: Set<[UInt8]> = []
    var byIssuer: [DistinguishedName: Set<[UInt8]>] = [:]

    public init() {}

    /// Serials as hex (`0x` prefix, `:` separators and case are ignored).
    public init(serials: [String]) throws(CertificateError) {
        for s in serials {
            guard let bytes = Self.parseHex(s) else {
                throw CertificateError("revoked serial \"\(s)\" is not hexadecimal")
            }
            anyIssuer.insert(Self.normalized(bytes))
        }
    }

    /// Adds the entries of a CRL (PEM `X509 CRL` blocks or DER) whose signature verifies against one of
    /// `issuers` with the CRL's issuer name. An expired CRL still counts (a revocation does not lapse).
    public mutating func addCRL(_ bytes: [UInt8], issuers: [Certificate], what: String) throws(CertificateError) {
        var ders: [[UInt8]] = []
        if let text = String(validating: bytes, as: UTF8.self), text.contains("-----BEGIN") {
            let docs: [PEMDocument]
            do { docs = try PEMDocument.parseMultiple(pemString: text) } catch {
                throw CertificateError("\(what): not PEM (\(error))")
            }
            ders = docs.filter { $0.discriminator == "X509 CRL" }.map(\.derBytes)
            guard !ders.isEmpty else { throw CertificateError("\(what): no X509 CRL block") }
        } else {
            ders = [bytes]
        }
        for der in ders {
            let crl: CRL
            do { crl = try CRL(der: der) } catch { throw CertificateError("\(what): not a CRL (\(error))") }
            guard let issuer = issuers.first(where: { $0.subject == crl.issuer }) else {
                throw CertificateError("\(what): CRL issuer \(crl.issuer) is not among the trusted certificates")
            }
            guard let alg = crl.signatureAlgorithm,
                issuer.publicKey.isValidSignature(crl.signature, for: crl.tbsBytes, signatureAlgorithm: alg)
            else {
                throw CertificateError("\(what): the CRL signature does not verify against \(crl.issuer)")
            }
            byIssuer[crl.issuer, default: []].formUnion(crl.serials.map(Self.normalized))
        }
    }

    public func isRevoked(_ cert: Certificate) -> Bool {
        let serial = Self.normalized(Array(cert.serialNumber.bytes))
        return anyIssuer.contains(serial) || byIssuer[cert.issuer]?.contains(serial) == true
    }

    public var isEmpty: Bool { anyIssuer.isEmpty && byIssuer.isEmpty }

    static func normalized(_ bytes: [UInt8]) -> [UInt8] {
        let trimmed = Array(bytes.drop(while: { $0 == 0 }))
        return trimmed.isEmpty ? [0] : trimmed
    }

    static func parseHex(_ s: String) -> [UInt8]? {
        var t = s.lowercased().filter { $0 != ":" && $0 != " " }
        if t.hasPrefix("0x") { t.removeFirst(2) }
        guard !t.isEmpty, t.allSatisfy(\.isHexDigit) else { return nil }
        if t.count % 2 == 1 { t = "0" + t }
        var out: [UInt8] = []
        var i = t.startIndex
        while i < t.endIndex {
            let j = t.index(i, offsetBy: 2)
            guard let b = UInt8(t[i..<j], radix: 16) else { return nil }
            out.append(b)
            i = j
        }
        return out
    }

    /// Serial bytes as colon-free lowercase hex, for messages.
    public static func hex(_ bytes: some Collection<UInt8>) -> String {
        let digits = Array("0123456789abcdef")
        return String(normalized(Array(bytes)).flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
    }
}

/// The parts of an X.509 CRL (RFC 5280 §5) that revocation checking needs.
struct CRL {
    var issuer: DistinguishedName
    var serials: [[UInt8]]
    var tbsBytes: ArraySlice<UInt8>
    var signatureAlgorithm: Certificate.SignatureAlgorithm?
    var signature: [UInt8]

    init(der: [UInt8]) throws {
        let root = try DER.parse(der)
        var issuer = DistinguishedName()
        var serials: [[UInt8]] = []
        var tbsBytes: ArraySlice<UInt8> = []
        var algOID: ASN1ObjectIdentifier?
        var signature: [UInt8] = []
        try DER.sequence(root, identifier: .sequence) { nodes in
            guard let tbs = nodes.next() else { throw CertificateError("no tbsCertList") }
            tbsBytes = tbs.encodedBytes
            try DER.sequence(tbs, identifier: .sequence) { fields in
                var next = fields.next()
                if let n = next, n.identifier == .integer { next = fields.next() }  // version
                guard next != nil else { throw CertificateError("no signature algorithm") }  // signature
                guard let issuerNode = fields.next() else { throw CertificateError("no issuer") }
                issuer = try DistinguishedName(derEncoded: issuerNode)
                _ = fields.next()  // thisUpdate
                var n = fields.next()
                if let t = n, t.identifier == .utcTime || t.identifier == .generalizedTime { n = fields.next() }
                if let revoked = n, revoked.identifier == .sequence {
                    try DER.sequence(revoked, identifier: .sequence) { entries in
                        while let entry = entries.next() {
                            try DER.sequence(entry, identifier: .sequence) { parts in
                                guard let serial = parts.next(), serial.identifier == .integer,
                                    case .primitive(let value) = serial.content
                                else { throw CertificateError("revoked entry without serial") }
                                serials.append(Array(value))
                                while parts.next() != nil {}
                            }
                        }
                    }
                }
                while fields.next() != nil {}
            }
            guard let algNode = nodes.next() else { throw CertificateError("no signatureAlgorithm") }
            try DER.sequence(algNode, identifier: .sequence) { parts in
                guard let oid = parts.next() else { throw CertificateError("empty algorithm") }
                algOID = try ASN1ObjectIdentifier(derEncoded: oid)
                while parts.next() != nil {}
            }
            guard let sigNode = nodes.next() else { throw CertificateError("no signature") }
            signature = Array(try ASN1BitString(derEncoded: sigNode).bytes)
        }
        self.issuer = issuer
        self.serials = serials
        self.tbsBytes = tbsBytes
        self.signature = signature
        self.signatureAlgorithm = algOID.flatMap(Self.algorithms)
    }

    static func algorithms(_ oid: ASN1ObjectIdentifier) -> Certificate.SignatureAlgorithm? {
        switch oid {
        case [1, 2, 840, 10045, 4, 3, 2]: return .ecdsaWithSHA256
        case [1, 2, 840, 10045, 4, 3, 3]: return .ecdsaWithSHA384
        case [1, 2, 840, 10045, 4, 3, 4]: return .ecdsaWithSHA512
        case [1, 2, 840, 113549, 1, 1, 11]: return .sha256WithRSAEncryption
        case [1, 2, 840, 113549, 1, 1, 12]: return .sha384WithRSAEncryption
        case [1, 2, 840, 113549, 1, 1, 13]: return .sha512WithRSAEncryption
        case [1, 3, 101, 112]: return .ed25519
        default: return nil
        }
    }
}
