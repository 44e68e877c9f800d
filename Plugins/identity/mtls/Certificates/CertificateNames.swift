import Crypto
import SwiftASN1
import X509

/// The names a certificate carries, as identity plugins map them to principals.
public struct CertificateNames: Sendable, Equatable {
    /// The subject's common name (the last CN when there are several).
    public var commonName: String?
    public var organizationalUnits: [String] = []
    public var organizations: [String] = []
    /// SAN `rfc822Name` entries.
    public var emails: [String] = []
    /// SAN `dNSName` entries.
    public var dnsNames: [String] = []
    /// SAN `uniformResourceIdentifier` entries.
    public var uris: [String] = []
    /// The subject as an RFC 4514 string.
    public var subject: String
    public var issuer: String
    /// The serial number as lowercase hex.
    public var serial: String
    /// SHA-256 of the DER certificate, lowercase hex.
    public var fingerprint: String

    public init(_ cert: Certificate) throws(CertificateError) {
        for rdn in cert.subject {
            for attr in rdn {
                guard let value = String(attr.value) else { continue }
                switch attr.type {
                case .RDNAttributeType.commonName: commonName = value
                case .RDNAttributeType.organizationalUnitName: organizationalUnits.append(value)
                case .RDNAttributeType.organizationName: organizations.append(value)
                default: break
                }
            }
        }
        do {
            for name in try cert.extensions.subjectAlternativeNames ?? SubjectAlternativeNames() {
                switch name {
                case .rfc822Name(let s): emails.append(s)
                case .dnsName(let s): dnsNames.append(s)
                case .uniformResourceIdentifier(let s): uris.append(s)
                default: break
                }
            }
        } catch {
            throw CertificateError("subjectAltName does not parse (\(error))")
        }
        subject = cert.subject.description
        issuer = cert.issuer.description
        serial = Revocations.hex(cert.serialNumber.bytes)
        var serializer = DER.Serializer()
        do { try serializer.serialize(cert) } catch { throw CertificateError("certificate does not serialize") }
        let digits = Array("0123456789abcdef")
        fingerprint = String(SHA256.hash(data: serializer.serializedBytes).flatMap {
            [digits[Int($0 >> 4)], digits[Int($0 & 15)]]
        })
    }
}

/// `X509.Certificate`, for users of this module that do not import X509 themselves.
public typealias X509Certificate = Certificate
