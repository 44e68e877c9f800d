import Testing

@testable import MCPGConfig

@Suite struct StringFormatTests {
    @Test(
        "listen addresses that parse",
        arguments: [
            ("127.0.0.1:8080", "127.0.0.1", 8080), ("0.0.0.0:0", "0.0.0.0", 0), ("localhost:65535", "localhost", 65535),
            ("[::1]:8080", "::1", 8080), ("[::]:443", "::", 443), ("[fe80::1%eth0]:80", "fe80::1%eth0", 80),
            ("[::ffff:10.0.0.1]:1", "::ffff:10.0.0.1", 1), ("[1:2:3:4:5:6:7:8]:9", "1:2:3:4:5:6:7:8", 9),
            ("gw-1.internal.example:8443", "gw-1.internal.example", 8443),
        ])
    func goodListen(text: String, host: String, port: Int) throws {
        let address = try StringFormat.parseListen(text).get()
        #expect(address.host == host)
        #expect(address.port == port)
    }

    @Test(
        "listen addresses that are refused, with the reason",
        arguments: [
            ("127.0.0.1", "expected HOST:PORT, e.g. \"127.0.0.1:8080\""),
            (":8080", "missing host; use \"0.0.0.0\" or \"[::]\" to listen on all interfaces"),
            ("127.0.0.1:", "the port must be a number from 0 to 65535"),
            ("127.0.0.1:65536", "the port must be a number from 0 to 65535"),
            ("127.0.0.1:http", "the port must be a number from 0 to 65535"),
            ("::1:8080", "an IPv6 address goes in brackets, e.g. \"[::1]:8080\""),
            ("[::1]8080", "expected \":PORT\" after \"]\""),
            ("[::1:8080", "missing \"]\" after the IPv6 address"),
            ("[1::2::3]:80", "\"1::2::3\" is not an IPv6 address"),
            ("[1:2:3:4:5:6:7:8:9]:80", "\"1:2:3:4:5:6:7:8:9\" is not an IPv6 address"),
            ("[gggg::1]:80", "\"gggg::1\" is not an IPv6 address"),
            ("256.0.0.1:80", "\"256.0.0.1\" is not an IPv4 address"),
            ("10.0.1:80", "\"10.0.1\" is not an IPv4 address"),
            ("bad_host:80", "\"bad_host\" is not a valid host name"),
            ("-x.example:80", "\"-x.example\" is not a valid host name"),
        ])
    func badListen(text: String, reason: String) {
        guard case .failure(let error) = StringFormat.parseListen(text) else {
            Issue.record("\(text) accepted")
            return
        }
        #expect(error.text == reason)
    }

    @Test(
        "origins",
        arguments: [
            ("http://localhost:6274", true), ("https://app.example.com", true), ("HTTPS://App.Example.com:1", true),
            ("http://[::1]:3000", true), ("http://127.0.0.1", true), ("http://localhost:6274/", false),
            ("http://a.example/path", false), ("ws://example.com", false), ("*", false), ("null", false),
            ("http://", false), ("http://host:99999", false), ("http://[zz]:1", false),
        ])
    func origins(text: String, valid: Bool) {
        #expect((StringFormat.origin.problem(with: text, noun: "origin", directory: "/") == nil) == valid)
    }

    @Test("URL paths start with a slash and hold no query, fragment or space")
    func urlPaths() {
        let check = { (s: String) in StringFormat.urlPath.problem(with: s, noun: "path", directory: "/") }
        #expect(check("/mcp") == nil)
        #expect(check("/") == nil)
        #expect(check("/a/b-c_d.e~f") == nil)
        #expect(check("mcp") == "invalid path \"mcp\": must start with \"/\"")
        #expect(check("/mcp?x=1") == "invalid path \"/mcp?x=1\": must not contain \"?\"")
        #expect(check("/m cp") == "invalid path \"/m cp\": must not contain \" \"")
    }

    @Test("names are [a-z0-9_-]+")
    func names() {
        #expect(StringFormat.isName("apikey"))
        #expect(StringFormat.isName("my_plugin-2"))
        #expect(!StringFormat.isName(""))
        #expect(!StringFormat.isName("ApiKey"))
        #expect(!StringFormat.isName("a.b"))
        #expect(!StringFormat.isName("é"))
    }

    @Test("minisign public keys: 56 base64 characters decoding to an Ed25519 key")
    func publicKeys() {
        #expect(TrustedKey.isPublicKey("RWSqAVS1rkYjOedXns9VkQnS5bN8jmeb78QJeCaaeDcYkL/jVFGNU/Mw"))
        #expect(!TrustedKey.isPublicKey("RWSqAVS1rkYjOedXns9VkQnS5bN8jmeb78QJeCaaeDcYkL/jVFGNU/M"))
        #expect(!TrustedKey.isPublicKey("RWSqAVS1rkYjOedXns9VkQnS5bN8jmeb78QJeCaaeDcYkL/jVFGNU/M!"))
        // Valid base64 of the right length but not "Ed" + key id + key.
        #expect(!TrustedKey.isPublicKey(String(repeating: "A", count: 56)))
        #expect(TrustedKey.base64Decode("aGVsbG8=") == Array("hello".utf8))
    }

    @Test("suggestions for typos, and none for unrelated words")
    func suggestions() {
        let keys = ["mcpg", "server", "plugins", "identity", "policy", "transforms", "backends", "audit", "sinks"]
        #expect(Suggestion.closest(to: "polcy", in: keys) == "policy")
        #expect(Suggestion.closest(to: "Policy", in: keys) == "policy")
        #expect(Suggestion.closest(to: "backend", in: keys) == "backends")
        #expect(Suggestion.closest(to: "idnetity", in: keys) == "identity")
        #expect(Suggestion.closest(to: "logging", in: keys) == nil)
        #expect(Suggestion.closest(to: "x", in: keys) == nil)
    }

    @Test("paths resolve lexically against a base directory")
    func paths() {
        #expect(FileSystem.absolute("./a/../b/./c", base: "/etc/mcpg") == "/etc/mcpg/b/c")
        #expect(FileSystem.absolute("/abs//x/", base: "/ignored") == "/abs/x")
        #expect(FileSystem.absolute("../../..", base: "/a") == "/")
        #expect(FileSystem.directory(of: "/a/b/c.yaml") == "/a/b")
        #expect(FileSystem.directory(of: "/c.yaml") == "/")
    }
}
