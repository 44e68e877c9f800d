import MCPGFrames
import MCPGJSON
import MCPGRouter
import NIOCore
import NIOHTTP1
import Synchronization

/// The gateway as an OAuth protected resource (RFC 9728): its URL, where its metadata is, and the metadata.
struct ProtectedResource: Sendable {
    static let wellKnownPrefix = "/.well-known/oauth-protected-resource"

    /// The MCP endpoint's URL (the metadata's `resource`).
    var url: String
    /// Where the metadata is served: the path form (`<origin>/.well-known/oauth-protected-resource<path>`).
    var metadataURL: String
    /// The metadata document, or nil when no identity plugin publishes any.
    var document: JSON?
    /// Space-separated `scopes_supported`, the scope a bare 401 names (AUTH-4).
    var scope: String?

    init(config: HTTPFrontConfig, boundPort: Int) {
        if let u = config.publicURL {
            url = u
        } else {
            let host = config.host.contains(":") ? "[\(config.host)]" : config.host
            url = "\(config.scheme)://\(host):\(boundPort)\(config.path)"
        }
        // Origin and path of `url`: the well-known segment goes between them (RFC 9728 §3.1).
        let afterScheme = url.firstRange(of: "://").map(\.upperBound) ?? url.startIndex
        let slash = url[afterScheme...].firstIndex(of: "/") ?? url.endIndex
        var path = String(url[slash...])
        if path == "/" { path = "" }
        metadataURL = String(url[..<slash]) + Self.wellKnownPrefix + path
        if let m = config.resourceMetadata {
            var doc: JSONObject = ["resource": .string(url)]
            for member in m where member.key != "resource" { doc[member.key] = member.value }
            document = .object(doc)
            let scopes = doc["scopes_supported"]?.arrayValue?.compactMap(\.stringValue) ?? []
            scope = scopes.isEmpty ? nil : scopes.joined(separator: " ")
        }
    }
}

/// Holds the `ProtectedResource` once the front knows its port.
final class ProtectedResourceBox: Sendable {
    private let value = Mutex<ProtectedResource?>(nil)
    func set(_ r: ProtectedResource) { value.withLock { $0 = r } }
    var current: ProtectedResource? { value.withLock { $0 } }
}

/// An RFC 6750 `WWW-Authenticate: Bearer …` challenge.
enum BearerChallenge {
    /// `Bearer realm="mcpg", resource_metadata="…", error="…", scope="…", error_description="…"`: the members
    /// that apply, each a quoted-string. `resourceMetadata` is set only when the gateway publishes metadata.
    static func header(resourceMetadata: String?, challenge: AuthChallenge?, defaultScope: String?) -> String {
        var parts = ["realm=\"mcpg\""]
        if let resourceMetadata { parts.append("resource_metadata=" + quoted(resourceMetadata)) }
        if let c = challenge {
            parts.append("error=" + quoted(c.error))
            if let scope = c.scope ?? (c.error == "insufficient_scope" ? defaultScope : nil) {
                parts.append("scope=" + quoted(scope))
            }
            if let d = c.errorDescription { parts.append("error_description=" + quoted(d)) }
        } else if let defaultScope {
            // No credentials (or none a plugin recognised): no error code (RFC 6750 §3.1), but the scopes to ask
            // for (AUTH-4).
            parts.append("scope=" + quoted(defaultScope))
        }
        return "Bearer " + parts.joined(separator: ", ")
    }

    /// `s` as an HTTP quoted-string (RFC 9110 §5.6.4): `"` and `\` escaped with `\`; tabs become spaces; control
    /// characters and anything outside printable ASCII are dropped, so plugin text cannot break the header.
    static func quoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u.value {
            case 0x22, 0x5C: out += "\\" + String(u)
            case 0x09: out += " "
            case 0x20...0x7E: out.unicodeScalars.append(u)
            default: continue
            }
        }
        return out + "\""
    }
}

extension MCPHTTPHandler {
    /// 401 (or 403 for `insufficient_scope`, AUTH-5) with a Bearer challenge naming the metadata (AUTH-3).
    func unauthorized(context: ChannelHandlerContext, _ f: AuthenticationFailure) {
        let r = resource.current
        let published = r?.document != nil
        let header = BearerChallenge.header(
            resourceMetadata: published ? r?.metadataURL : nil, challenge: f.challenge,
            defaultScope: published ? r?.scope : nil)
        let forbidden = f.status == 403
        let error = forbidden
            ? RPCError(code: -32001, message: "Insufficient scope") : RPCError.unauthenticated
        let frame = Frame.errorResponse(id: nil, error: error.withCorrelation(f.correlationID))
        respond(context: context, status: forbidden ? .forbidden : .unauthorized,
                headers: [("www-authenticate", header)], json: frame.json)
    }

    /// RFC 9728 metadata at `/.well-known/oauth-protected-resource` and at the path form for the MCP endpoint
    /// (AUTH-2, AUTH-3); no authentication. 404 when no identity plugin publishes metadata.
    func protectedResourceMetadata(context: ChannelHandlerContext, head: HTTPRequestHead, path: String) {
        let suffix = path.dropFirst(ProtectedResource.wellKnownPrefix.count)
        guard suffix.isEmpty || suffix == config.path, let doc = resource.current?.document else {
            reject(context: context, .notFound, code: -32600, "Not found: the MCP endpoint is \(config.path)")
            return
        }
        guard head.method == .GET else {
            reject(context: context, .methodNotAllowed, code: -32600, "Method not allowed", headers: [("allow", "GET")])
            return
        }
        respond(context: context, status: .ok, headers: [("cache-control", "max-age=300")], json: doc)
    }
}
