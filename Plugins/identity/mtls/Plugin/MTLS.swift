import ClientCertificates
import FoundationEssentials
import MCPGJSON
import PluginKit
import X509

/// Authenticates callers by their TLS client certificate (the `tls` member of `authenticate`, which the HTTP
/// front fills on HTTPS connections).
///
/// The chain is verified against the plugin's own `ca_file` (RFC 5280 path validation: signatures, validity,
/// CA constraints), so it works whether or not the front verified it; without `ca_file` only chains the front
/// verified (`server.http.tls.client_ca_file`) are accepted. Revoked certificates (CRL files signed by a CA in
/// `ca_file`, or `revoked_serials`) are refused, as are expired, not yet valid and unknown-CA ones. The
/// principal id comes from the first of `principal_from` the leaf has (subject CN, SAN email, DNS name or URI,
/// or the whole subject); groups from its OUs and/or `group_map`. No certificate → abstain, so a later plugin
/// (an API key, a bearer token) may authenticate the caller. `ca_file` and the CRLs are re-read when they change.
struct MTLS: IdentityPlugin {
    struct Config: Decodable, Sendable {
        var ca_file: String?
        var principal_from: [String]?
        var groups_from_ou: Bool?
        var group_map: [String: [String]]?
        var tenant_from_o: Bool?
        var crl_files: [String]?
        var revoked_serials: [String]?
        var reload_interval_s: Double?
    }
    static let name = "mtls"
    static let version = "1.0.0"
    static let sources = ["cn", "san_email", "san_dns", "san_uri", "subject"]
    static var configSchema: JSON {
        [
            "type": "object", "additionalProperties": false,
            "properties": [
                "ca_file": [
                    "type": "string", "format": "path",
                    "description": .string(
                        "CA certificates (PEM) client certificates must chain to. Absent: only chains the HTTP "
                            + "front verified (`server.http.tls.client_ca_file`) are accepted."),
                ],
                "principal_from": [
                    "type": "array", "minItems": 1,
                    "items": ["enum": .array(sources.map { .string($0) })],
                    "description": .string(
                        "Where the principal id comes from, the first the certificate has: `cn` (subject common "
                            + "name), `san_email`, `san_dns`, `san_uri` (first subjectAltName of that type), "
                            + "`subject` (the RFC 4514 subject). Default `[cn]`."),
                ],
                "groups_from_ou": [
                    "type": "boolean", "description": "Each subject OU is a group. Default true.",
                ],
                "group_map": [
                    "type": "object", "additionalProperties": ["type": "array", "items": ["type": "string"]],
                    "description": .string(
                        "More groups by principal id or OU: `{\"alice\": [admins], \"Payments\": [pci]}`."),
                ],
                "tenant_from_o": [
                    "type": "boolean", "description": "The subject's first O (organization) is the tenant. Default false.",
                ],
                "crl_files": [
                    "type": "array", "items": ["type": "string", "format": "path"],
                    "description": .string(
                        "CRLs (PEM or DER), each signed by a CA in `ca_file`; certificates they list are refused."),
                ],
                "revoked_serials": [
                    "type": "array", "items": ["type": "string"],
                    "description": "Serial numbers (hex, `:` allowed) refused whoever issued them.",
                ],
                "reload_interval_s": [
                    "type": "number", "minimum": 0, "maximum": 86400,
                    "description": "Seconds between looks at `ca_file` and `crl_files` for changes (0: never). Default 5.",
                ],
            ],
        ]
    }

    let trust: Reloadable<ChainVerifier>
    let hasOwnCA: Bool
    let principalFrom: [String]
    let groupsFromOU: Bool
    let groupMap: [String: [String]]
    let tenantFromO: Bool

    init(config: Config, host: Host) throws {
        func bad(_ m: String) -> PluginError { PluginError(code: -32602, "mtls: \(m)") }
        principalFrom = config.principal_from ?? ["cn"]
        guard !principalFrom.isEmpty else { throw bad("principal_from must not be empty") }
        for s in principalFrom where !Self.sources.contains(s) {
            throw bad("principal_from: unknown source \"\(s)\" (\(Self.sources.joined(separator: ", ")))")
        }
        let crls = config.crl_files ?? []
        if !crls.isEmpty && config.ca_file == nil { throw bad("crl_files need ca_file (their signatures are checked against it)") }
        let interval = config.reload_interval_s ?? 5
        guard interval.isFinite, (0...86400).contains(interval) else { throw bad("reload_interval_s must be between 0 and 86400") }
        let serials = config.revoked_serials ?? []
        let caFile = config.ca_file
        do {
            trust = try Reloadable(
                files: (caFile.map { [$0] } ?? []) + crls, interval: .milliseconds(Int64(interval * 1000)),
                onReload: { result in
                    switch result {
                    case .success(let v): host.log(.notice, "mtls trust reloaded", ["mtls.version": "\(v)"])
                    case .failure(let e): host.log(.error, "mtls reload failed; keeping the previous trust", ["error": "\(e)"])
                    }
                },
                load: { try Self.loadTrust(caFile: caFile, crls: crls, serials: serials) })
        } catch {
            throw bad("\(error)")
        }
        hasOwnCA = caFile != nil
        groupsFromOU = config.groups_from_ou ?? true
        groupMap = config.group_map ?? [:]
        tenantFromO = config.tenant_from_o ?? false
    }

    static func loadTrust(caFile: String?, crls: [String], serials: [String]) throws -> ChainVerifier {
        var roots: [Certificate] = []
        if let caFile { roots = try PEMBundle.certificates(file: caFile) }
        var revocations = try Revocations(serials: serials)
        for path in crls {
            guard let bytes = FileBytes.read(path) else { throw CertificateError("\(path): cannot read the file") }
            try revocations.addCRL(bytes, issuers: roots, what: path)
        }
        return ChainVerifier(roots: roots, revocations: revocations)
    }

    func authenticate(_ request: AuthenticateRequest) async throws -> AuthenticateResult {
        guard let tls = request.tls, !tls.certificates.isEmpty else {
            return .abstain(reason: "no client certificate")
        }
        var presented: [Certificate] = []
        for (i, pem) in tls.certificates.enumerated() {
            do { presented += try PEMBundle.certificates(pem: pem, what: "certificate \(i + 1)") } catch {
                return .reject(reason: "client certificate unusable: \(error.message)")
            }
        }
        let verifier = trust.current.value
        let leaf = presented[0]
        if hasOwnCA {
            if case .failure(let why) = await verifier.verify(presented) { return .reject(reason: why.description) }
        } else {
            guard tls.verified else {
                return .reject(reason: "client certificate not verified (no ca_file, and the TLS layer has no client CA)")
            }
            let now = Date()
            if now > leaf.notValidAfter { return .reject(reason: ChainFailure.expired.description) }
            if now < leaf.notValidBefore { return .reject(reason: ChainFailure.notYetValid.description) }
            for cert in presented where verifier.revocations.isRevoked(cert) {
                return .reject(reason: ChainFailure.revoked(serial: Revocations.hex(cert.serialNumber.bytes)).description)
            }
        }
        let names: CertificateNames
        do { names = try CertificateNames(leaf) } catch { return .reject(reason: "client certificate unusable: \(error.message)") }
        guard let id = principalID(names) else {
            return .reject(reason: "client certificate has no \(principalFrom.joined(separator: " or "))")
        }
        var groups: [String] = []
        func add(_ gs: [String]) { for g in gs where !groups.contains(g) { groups.append(g) } }
        if groupsFromOU { add(names.organizationalUnits) }
        add(groupMap[id] ?? [])
        for ou in names.organizationalUnits { add(groupMap[ou] ?? []) }
        var attributes: JSONObject = [
            "subject": .string(names.subject), "issuer": .string(names.issuer), "serial": .string(names.serial),
            "fingerprint_sha256": .string(names.fingerprint),
        ]
        if !names.dnsNames.isEmpty { attributes["san_dns"] = .array(names.dnsNames.map { .string($0) }) }
        if !names.emails.isEmpty { attributes["san_email"] = .array(names.emails.map { .string($0) }) }
        let principal = Principal(id: id, groups: groups, tenant: tenantFromO ? names.organizations.first : nil,
                                  attributes: attributes)
        return .authenticated(principal, reason: "client certificate \(names.serial) of \(id)")
    }

    func principalID(_ n: CertificateNames) -> String? {
        for source in principalFrom {
            let v: String?
            switch source {
            case "cn": v = n.commonName
            case "san_email": v = n.emails.first
            case "san_dns": v = n.dnsNames.first
            case "san_uri": v = n.uris.first
            default: v = n.subject
            }
            if let v, !v.isEmpty { return v }
        }
        return nil
    }
}

@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { PluginExport.descriptor(for: MTLS.self) }
