/// An http(s) URL split into origin and path, enough to address an MCP endpoint and to resolve the endpoint
/// the 2024-11-05 SSE transport announces, without pulling in Foundation's URL parsing.
struct HTTPEndpoint: Sendable, Equatable, CustomStringConvertible {
    /// `http` or `https`, lowercased.
    let scheme: String
    /// `host[:port]` as written.
    let authority: String
    /// Path and query, starting with `/`.
    let pathAndQuery: String

    var origin: String { scheme + "://" + authority }
    var description: String { origin + pathAndQuery }
    var isHTTPS: Bool { scheme == "https" }

    /// Parses an absolute http(s) URL with a host, no credentials and no fragment.
    /// - Throws: `MCPConfigError` saying what is wrong.
    init(_ text: String) throws {
        guard let sep = text.firstRange(of: "://") else {
            throw MCPConfigError("url \"\(text)\" is not an http(s) URL with a host")
        }
        let scheme = text[..<sep.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else {
            throw MCPConfigError("url \"\(text)\" is not an http(s) URL with a host")
        }
        let rest = text[sep.upperBound...]
        let pathStart = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let authority = String(rest[..<pathStart])
        guard !authority.isEmpty, !authority.hasPrefix(":") else {
            throw MCPConfigError("url \"\(text)\" is not an http(s) URL with a host")
        }
        guard !authority.contains("@") else {
            throw MCPConfigError("url must not carry credentials: use bearer_token_file, bearer_token_env or headers")
        }
        guard !authority.contains(where: { $0 == " " || $0 == "\\" }),
            !text.utf8.contains(where: { $0 < 0x21 || $0 == 0x7F })
        else { throw MCPConfigError("url \"\(text)\" contains spaces or control characters") }
        var path = String(rest[pathStart...])
        guard !path.contains("#") else { throw MCPConfigError("url \"\(text)\" must not have a fragment") }
        if path.isEmpty || path.hasPrefix("?") { path = "/" + path }
        self.scheme = scheme
        self.authority = authority
        self.pathAndQuery = path
    }

    private init(scheme: String, authority: String, pathAndQuery: String) {
        self.scheme = scheme
        self.authority = authority
        self.pathAndQuery = pathAndQuery
    }

    /// Resolves a reference (absolute URL, absolute path or relative path) against this URL. An absolute URL
    /// must have the same origin: the SSE stream must not send our credentials to another host.
    func resolve(_ reference: String) throws -> HTTPEndpoint {
        let ref = reference.trimmingWhitespace()
        if ref.contains("://") {
            let other = try HTTPEndpoint(ref)
            guard other.origin.lowercased() == origin.lowercased() else {
                throw MCPConfigError("the SSE endpoint names another origin (\(other.origin)); refused")
            }
            return other
        }
        guard !ref.hasPrefix("//") else { throw MCPConfigError("the SSE endpoint names another origin; refused") }
        guard !ref.utf8.contains(where: { $0 < 0x21 || $0 == 0x7F }) else {
            throw MCPConfigError("the SSE endpoint contains spaces or control characters")
        }
        if ref.hasPrefix("/") { return HTTPEndpoint(scheme: scheme, authority: authority, pathAndQuery: ref) }
        let basePath = pathAndQuery.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
        let dir = basePath[...(basePath.lastIndex(of: "/") ?? basePath.startIndex)]
        return HTTPEndpoint(scheme: scheme, authority: authority, pathAndQuery: String(dir) + ref)
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces, tabs and line breaks.
    func trimmingWhitespace() -> String {
        let ws: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !ws($0) }), let last = lastIndex(where: { !ws($0) }) else { return "" }
        return String(self[first...last])
    }
}
