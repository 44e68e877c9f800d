import CSodium
import MCPGFrames
import MCPGJSON

/// One tool the gateway exposes, with the backend that serves it.
public struct CatalogTool: Sendable {
    public var name: String
    public var backend: String
    /// The MCP `Tool` object as the backend described it (relayed untouched, TOOL-2).
    public var tool: JSON
}

/// Which tool belongs to which backend. Immutable; a refresh builds a new one with a new generation.
public struct Catalog: Sendable {
    public let tools: [CatalogTool]
    let index: [String: Int]
    public let generation: UInt32

    /// Builds the catalog from each backend's `list_tools` answer, in backend order.
    /// - Throws: `CatalogError` for a tool without a valid name or a name two backends both serve.
    public init(backends: [(name: String, tools: [JSON])], generation: UInt32 = 1) throws(CatalogError) {
        var tools: [CatalogTool] = []
        var index: [String: Int] = [:]
        for b in backends {
            for t in b.tools {
                guard let name = t["name"]?.stringValue, !name.isEmpty else {
                    throw CatalogError(message: "backend \(b.name) listed a tool without a name")
                }
                guard case .object = t["inputSchema"] ?? .null else {
                    throw CatalogError(message: "backend \(b.name): tool \(name) has no inputSchema object (TOOL-3)")
                }
                if let other = index[name] {
                    throw CatalogError(
                        message: "tool \(name) is served by both backend \(tools[other].backend) and backend \(b.name)")
                }
                index[name] = tools.count
                tools.append(CatalogTool(name: name, backend: b.name, tool: t))
            }
        }
        self.tools = tools
        self.index = index
        self.generation = generation
    }

    public func tool(named name: String) -> CatalogTool? { index[name].map { tools[$0] } }
}

public struct CatalogError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Gateway-owned pagination cursors (GW-4, PAGE-1/2): an offset and the catalog generation, authenticated with
/// a per-process HMAC key so a client cannot forge, edit or carry one over from another gateway process.
struct CursorCodec: Sendable {
    let key: [UInt8]

    init() {
        _ = sodium_init()
        var k = [UInt8](repeating: 0, count: Int(crypto_auth_hmacsha256_KEYBYTES))
        randombytes_buf(&k, k.count)
        key = k
    }

    private func mac(_ body: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(crypto_auth_hmacsha256_BYTES))
        crypto_auth_hmacsha256(&out, body, UInt64(body.count), key)
        return Array(out.prefix(12))
    }

    func encode(offset: Int, generation: UInt32) -> String {
        var body: [UInt8] = []
        for v in [UInt32(offset), generation] {
            body.append(contentsOf: [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)])
        }
        return hexEncode(body + mac(body))
    }

    /// The offset encoded in `cursor`, or nil when the cursor is not one of ours or is for another catalog.
    func decode(_ cursor: String, generation: UInt32) -> Int? {
        guard let raw = hexDecode(cursor), raw.count == 20 else { return nil }
        let body = Array(raw.prefix(8))
        let tag = Array(raw.suffix(12))
        guard sodium_memcmp(tag, mac(body), 12) == 0 else { return nil }
        func u32(_ i: Int) -> UInt32 {
            UInt32(body[i]) << 24 | UInt32(body[i + 1]) << 16 | UInt32(body[i + 2]) << 8 | UInt32(body[i + 3])
        }
        guard u32(4) == generation else { return nil }
        return Int(u32(0))
    }
}

func hexEncode(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 2)
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 0xF)])
    }
    return String(decoding: out, as: UTF8.self)
}

func hexDecode(_ s: String) -> [UInt8]? {
    let u = Array(s.utf8)
    guard u.count % 2 == 0 else { return nil }
    func nib(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        default: return nil
        }
    }
    var out: [UInt8] = []
    out.reserveCapacity(u.count / 2)
    var i = 0
    while i < u.count {
        guard let h = nib(u[i]), let l = nib(u[i + 1]) else { return nil }
        out.append(h << 4 | l)
        i += 2
    }
    return out
}
