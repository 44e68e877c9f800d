import AsyncHTTPClient
import MCPGJSON
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// What both HTTP transports share for the life of the client: the HTTP client (its own connection pool on
/// the shared event loop group, keeping connections alive between calls), the static headers with the bearer
/// token, and the texts that must never appear in an error message.
final class HTTPConnection: Sendable {
    let http: HTTPClient
    let endpoint: HTTPEndpoint
    let headers: HTTPHeaders
    let secrets: [String]
    let connectTimeout: TimeAmount
    let requestTimeout: TimeAmount

    /// Largest JSON answer or SSE line read.
    static let maxBody = 64 << 20

    /// Reads the bearer token and TLS files and creates the HTTP client.
    /// - Throws: `MCPConfigError` naming the bad key.
    init(config: MCPClient.Config, environment: @Sendable (String) -> String?) throws {
        guard let url = config.url else { throw MCPConfigError("url is missing") }
        endpoint = try HTTPEndpoint(url)
        var headers = HTTPHeaders()
        var secrets: [String] = []
        for (name, value) in config.headers.sorted(by: { $0.key < $1.key }) {
            headers.replaceOrAdd(name: name, value: value)
            if value.utf8.count >= 8 { secrets.append(value) }
        }
        if let token = try Self.bearerToken(config, environment: environment) {
            headers.replaceOrAdd(name: "Authorization", value: "Bearer \(token)")
            secrets.append(token)
        }
        var tls: TLSConfiguration?
        if endpoint.isHTTPS {
            var t = TLSConfiguration.makeClientConfiguration()
            if let ca = config.tls?.caFile {
                let certificates: [NIOSSLCertificate]
                do {
                    certificates = try NIOSSLCertificate.fromPEMFile(ca)
                } catch {
                    throw MCPConfigError("tls.ca_file \(ca): cannot read PEM certificates (\(error))")
                }
                guard !certificates.isEmpty else { throw MCPConfigError("tls.ca_file \(ca): no certificate in file") }
                t.trustRoots = .certificates(certificates)
            }
            if let certFile = config.tls?.certFile, let keyFile = config.tls?.keyFile {
                do {
                    t.certificateChain = try NIOSSLCertificate.fromPEMFile(certFile).map { .certificate($0) }
                } catch {
                    throw MCPConfigError("tls.cert_file \(certFile): cannot read PEM certificates (\(error))")
                }
                guard !t.certificateChain.isEmpty else {
                    throw MCPConfigError("tls.cert_file \(certFile): no certificate in file")
                }
                do {
                    t.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
                } catch {
                    throw MCPConfigError("tls.key_file \(keyFile): cannot read a PEM private key")
                }
            }
            tls = t
        }
        var pool = HTTPClient.Configuration.ConnectionPool()
        // A refused connection must fail the call at once (-32004), not be retried until a deadline.
        pool.retryConnectionEstablishment = false
        // Every call in flight holds a connection for its answer stream (plus the GET stream): a small limit would
        // queue the next call, or a notifications/cancelled, behind long calls.
        pool.concurrentHTTP1ConnectionsPerHostSoftLimit = 512
        connectTimeout = .milliseconds(Int64(config.connectTimeoutMs))
        requestTimeout = .milliseconds(Int64(config.timeoutMs))
        let httpConfig = HTTPClient.Configuration(
            tlsConfiguration: tls,
            // A redirect would carry the Authorization header wherever it points.
            redirectConfiguration: .disallow,
            // No read timeout: an SSE stream may be quiet for long; the client's deadlines bound each request.
            timeout: .init(connect: connectTimeout, read: nil),
            connectionPool: pool,
            decompression: .disabled)
        self.headers = headers
        self.secrets = secrets
        // Created last: nothing may throw after it exists, or it would be released without a shutdown.
        http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: httpConfig)
    }

    private let isShutDown = MutexBox(false)

    deinit {
        if !isShutDown.withLock({ $0 }) { http.shutdown { _ in } }
    }

    func shutdown() async {
        let first = isShutDown.withLock { s -> Bool in
            defer { s = true }
            return !s
        }
        if first { try? await http.shutdown() }
    }

    /// The bearer token from the file or environment variable named in config, if any.
    static func bearerToken(_ config: MCPClient.Config, environment: (String) -> String?) throws -> String? {
        var token: String
        if let file = config.bearerTokenFile {
            guard let bytes = readFile(file) else {
                throw MCPConfigError("bearer_token_file \(file): cannot read file")
            }
            token = String(decoding: bytes, as: UTF8.self)
        } else if let name = config.bearerTokenEnv {
            guard let value = environment(name) else {
                throw MCPConfigError("bearer_token_env: environment variable \(name) is not set")
            }
            token = value
        } else {
            return nil
        }
        token = token.trimmingWhitespace()
        guard !token.isEmpty else { throw MCPConfigError("bearer token is empty") }
        guard !token.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            throw MCPConfigError("bearer token contains control characters")
        }
        return token
    }

    /// A failure message for an error thrown by the HTTP client, without credentials.
    func describe(_ error: any Error) -> TransportError {
        if let e = error as? TransportError { return e }
        var lost = false
        var text: String
        if let e = error as? HTTPClientError {
            switch e {
            case .deadlineExceeded, .readTimeout, .connectTimeout, .tlsHandshakeTimeout, .getConnectionFromPoolTimeout:
                text = "upstream did not answer in time"
                lost = e == .connectTimeout || e == .tlsHandshakeTimeout
            case .remoteConnectionClosed:
                text = "upstream closed the connection"
                lost = true
            case .cancelled:
                text = "request cancelled"
            default:
                text = "HTTP request failed: \(e)"
            }
        } else if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            text = "TLS failure: \(error)"
            lost = true
        } else if let e = error as? NIOConnectionError {
            lost = true
            if e.connectionErrors.contains(where: { ($0.error as? IOError)?.errnoCode == ECONNREFUSED }) {
                text = "connection refused (\(e.host):\(e.port))"
            } else if let first = e.connectionErrors.first {
                text = "connection failed (\(first.error))"
            } else if let dns = e.dnsAAAAError ?? e.dnsAError {
                text = "host not resolved (\(dns))"
            } else {
                text = "connection failed"
            }
        } else if let e = error as? IOError {
            lost = true
            text = e.errnoCode == ECONNREFUSED ? "connection refused" : "connection failed (\(e))"
        } else if error is CancellationError {
            text = "request cancelled"
        } else {
            text = "HTTP request failed: \(error)"
            lost = true
        }
        return TransportError(message: scrub(text), connectionLost: lost)
    }

    /// Removes credentials from a message that may quote server or library text.
    func scrub(_ message: String) -> String {
        var m = message
        for secret in secrets where m.contains(secret) {
            m = m.split(separator: secret, omittingEmptySubsequences: false).joined(separator: "[redacted]")
        }
        return m
    }

    /// Reads an SSE body, calling `onEvent` for each event until the body ends.
    static func readEvents(
        _ body: HTTPClientResponse.Body, _ onEvent: (SSEEvent) throws -> Void
    ) async throws {
        var parser = SSEParser(maxLine: maxBody)
        for try await chunk in body {
            for event in try parser.feed(chunk.readableBytesView) { try onEvent(event) }
        }
        for event in try parser.feed([0x0A, 0x0A]) { try onEvent(event) }
    }

    /// Parses one message from an SSE event's data or a JSON body; nil (logged by the caller) if it is not one.
    static func message(_ bytes: some Collection<UInt8>) -> JSON? {
        guard let m = try? JSON.parse(bytes), case .object = m else { return nil }
        return m
    }
}
