import Logging
import MCPGRouter
import NIOCore
import NIOSSL
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// TLS settings of the HTTP front (`server.http.tls`).
public struct TLSFrontConfig: Sendable {
    /// Whether clients are asked for a certificate, and whether one is required.
    public enum ClientAuth: String, Sendable {
        case none, optional, required
    }
    public var certFile: String
    public var keyFile: String
    public var clientAuth: ClientAuth
    public var clientCAFile: String?
    /// How often the files are looked at for changes; zero turns reloading off.
    public var reloadInterval: Duration

    public init(certFile: String, keyFile: String, clientAuth: ClientAuth = .none, clientCAFile: String? = nil,
                reloadInterval: Duration = .seconds(5)) {
        self.certFile = certFile
        self.keyFile = keyFile
        self.clientAuth = clientAuth
        self.clientCAFile = clientCAFile
        self.reloadInterval = reloadInterval
    }
}

/// A TLS file that did not load: which one (`cert_file`, `key_file`, `client_ca_file`) and why.
public struct TLSFileError: Error, Sendable, CustomStringConvertible {
    /// The config key naming the file.
    public var key: String
    public var path: String
    public var reason: String
    public var description: String { "\(key) \(path): \(reason)" }
}

/// The server certificate, key and client CA of the HTTP front, as one NIOSSL context that is rebuilt when a
/// file changes. New connections take the current context; connections already open keep theirs. A file that
/// fails to load on reload leaves the previous context in use and is logged once per change.
public final class TLSCredentials: Sendable {
    public let config: TLSFrontConfig
    let logger: Logger
    let state: Mutex<State>

    struct State {
        var context: NIOSSLContext
        var stamps: [FileStamp]
        var failedStamps: [FileStamp]?
    }

    struct FileStamp: Equatable {
        var size: Int64
        var mtime: Int64
        var inode: UInt64
    }

    /// Loads every file now.
    /// - Throws: `TLSFileError` naming the file that did not load.
    public init(config: TLSFrontConfig, logger: Logger) throws(TLSFileError) {
        self.config = config
        self.logger = logger
        let stamps = Self.stamps(config)
        state = Mutex(State(context: try Self.makeContext(config), stamps: stamps, failedStamps: nil))
    }

    /// The context for a new connection.
    var context: NIOSSLContext { state.withLock { $0.context } }

    /// Rebuilds the context if a file changed since the last look. Returns true when a new context took effect.
    /// Runs file I/O: call it off the event loops.
    @discardableResult
    public func reloadIfChanged() -> Bool {
        let stamps = Self.stamps(config)
        let (seen, failed) = state.withLock { ($0.stamps, $0.failedStamps) }
        guard stamps != seen, stamps != failed else { return false }
        do throws(TLSFileError) {
            let context = try Self.makeContext(config)
            state.withLock {
                $0.context = context
                $0.stamps = stamps
                $0.failedStamps = nil
            }
            logger.notice("tls certificate reloaded", metadata: ["mcpg.tls.cert_file": "\(config.certFile)"])
            return true
        } catch {
            state.withLock { $0.failedStamps = stamps }
            logger.error("tls reload failed; keeping the previous certificate",
                         metadata: ["mcpg.tls.file": "\(error.path)", "mcpg.error": "\(error.reason)"])
            return false
        }
    }

    static func makeContext(_ config: TLSFrontConfig) throws(TLSFileError) -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        do { chain = try NIOSSLCertificate.fromPEMFile(config.certFile) } catch {
            throw TLSFileError(key: "cert_file", path: config.certFile, reason: "not a PEM certificate chain (\(error))")
        }
        guard !chain.isEmpty else {
            throw TLSFileError(key: "cert_file", path: config.certFile, reason: "no certificate in the file")
        }
        let key: NIOSSLPrivateKey
        do { key = try NIOSSLPrivateKey(file: config.keyFile, format: .pem) } catch {
            throw TLSFileError(key: "key_file", path: config.keyFile, reason: "not a PEM private key (\(error))")
        }
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv12
        if let ca = config.clientCAFile {
            let roots: [NIOSSLCertificate]
            do { roots = try NIOSSLCertificate.fromPEMFile(ca) } catch {
                throw TLSFileError(key: "client_ca_file", path: ca, reason: "not PEM certificates (\(error))")
            }
            guard !roots.isEmpty else {
                throw TLSFileError(key: "client_ca_file", path: ca, reason: "no certificate in the file")
            }
            tls.trustRoots = .certificates(roots)
            tls.sendCANameList = true
        } else {
            // Certificates are passed on unverified (see `handler()`): no system roots are needed.
            tls.trustRoots = .certificates([])
        }
        switch config.clientAuth {
        case .none: tls.certificateVerification = .none
        case .optional: tls.certificateVerification = .optionalVerification
        case .required: tls.certificateVerification = .noHostnameVerification
        }
        do { return try NIOSSLContext(configuration: tls) } catch {
            throw TLSFileError(key: "key_file", path: config.keyFile,
                               reason: "the key does not match the certificate, or is unusable (\(error))")
        }
    }

    static func stamps(_ config: TLSFrontConfig) -> [FileStamp] {
        ([config.certFile, config.keyFile] + (config.clientCAFile.map { [$0] } ?? [])).map { path in
            var st = stat()
            guard stat(path, &st) == 0 else { return FileStamp(size: -1, mtime: 0, inode: 0) }
            return FileStamp(size: Int64(st.st_size),
                             mtime: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec),
                             inode: UInt64(st.st_ino))
        }
    }

    /// Looks at the files every `reloadInterval` until cancelled.
    func watch() async {
        guard config.reloadInterval > .zero else { return }
        while !Task.isCancelled {
            do { try await Task.sleep(for: config.reloadInterval) } catch { return }
            reloadIfChanged()
        }
    }

    /// The TLS handler for a new connection, and the box its client certificate chain will be in once the
    /// handshake is done.
    func handler() throws -> (NIOSSLServerHandler, PeerChain) {
        let peer = PeerChain()
        let context = self.context
        switch (config.clientAuth, config.clientCAFile) {
        case (.none, _):
            return (NIOSSLServerHandler(context: context), peer)
        case (_, nil):
            // No CA at the TLS layer: any certificate is accepted here and passed on unverified; identity
            // plugins verify it against their own roots.
            peer.verified = false
            let handler = NIOSSLServerHandler(context: context, customVerificationCallback: { certs, promise in
                peer.certificates = certs
                promise.succeed(.certificateVerified)
            })
            return (handler, peer)
        case (_, _?):
            // BoringSSL verifies against the CA; the callback sees the verified chain, root first, and keeps
            // BoringSSL's verdict.
            peer.verified = true
            let handler = try (ObservingVerification.self as any VerificationObserver.Type).handler(
                context: context,
                observe: { cert in peer.chainRootFirst.append(cert) })
            return (handler, peer)
        }
    }
}

/// A server handler whose verification BoringSSL does, with a callback that only watches the chain go by.
///
/// NIOSSL's per-certificate callback is deprecated in favour of callbacks that replace BoringSSL's verification
/// entirely, which would mean verifying X.509 chains in the kernel. It is the only way to see the verified
/// chain (intermediates and root) while BoringSSL decides, so it is called through this protocol, which keeps
/// the deprecation in one place.
protocol VerificationObserver {
    static func handler(context: NIOSSLContext, observe: @escaping (NIOSSLCertificate) -> Void) throws
        -> NIOSSLServerHandler
}

enum ObservingVerification: VerificationObserver {
    @available(*, deprecated, message: "NIOSSLVerificationCallback; see VerificationObserver")
    static func handler(context: NIOSSLContext, observe: @escaping (NIOSSLCertificate) -> Void) throws
        -> NIOSSLServerHandler
    {
        try NIOSSLServerHandler(context: context, verificationCallback: { result, cert in
            observe(cert)
            return result
        })
    }
}

/// The client certificate chain of one TLS connection. Written by the TLS handler's verification callback
/// and read by the HTTP handler, both on the connection's event loop.
final class PeerChain: @unchecked Sendable {
    // Only touched on the owning channel's event loop (the NIOSSL callbacks and the HTTP handler run there).
    var certificates: [NIOSSLCertificate] = []
    var chainRootFirst: [NIOSSLCertificate] = []
    var verified = false
    var cachedPEM: [String]?

    /// What identity plugins get: the chain as PEM, leaf first.
    var clientTLS: ClientTLS {
        if let cachedPEM { return ClientTLS(certificates: cachedPEM, verified: verified && !cachedPEM.isEmpty) }
        let certs = certificates.isEmpty ? chainRootFirst.reversed() : certificates
        let pem = certs.compactMap { (try? $0.toDERBytes()).map(PEM.encode) }
        cachedPEM = pem
        return ClientTLS(certificates: pem, verified: verified && !pem.isEmpty)
    }
}

/// PEM encoding of DER certificates (RFC 7468).
enum PEM {
    static func encode(_ der: [UInt8]) -> String {
        let b64 = base64(der)
        var out = "-----BEGIN CERTIFICATE-----\n"
        var i = b64.startIndex
        while i < b64.endIndex {
            let j = b64.index(i, offsetBy: 64, limitedBy: b64.endIndex) ?? b64.endIndex
            out += b64[i..<j] + "\n"
            i = j
        }
        return out + "-----END CERTIFICATE-----\n"
    }

    static func base64(_ bytes: [UInt8]) -> String {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 2 < bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [table[Int(n >> 18 & 63)], table[Int(n >> 12 & 63)], table[Int(n >> 6 & 63)], table[Int(n & 63)]]
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let n = UInt32(bytes[i]) << 16
            out += [table[Int(n >> 18 & 63)], table[Int(n >> 12 & 63)], UInt8(ascii: "="), UInt8(ascii: "=")]
        } else if rest == 2 {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [table[Int(n >> 18 & 63)], table[Int(n >> 12 & 63)], table[Int(n >> 6 & 63)], UInt8(ascii: "=")]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
