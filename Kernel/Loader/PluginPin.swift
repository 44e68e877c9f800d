import CMCPGPlugin

/// What a plugin signature's trusted comment pins: `mcpg-plugin name=<name> version=<version> abi=<major>`.
///
/// The trusted comment is covered by the signature, so the loader can check the descriptor against it: a signed
/// `rules 1.2.0` cannot be passed off as another plugin or version. Tokens are separated by spaces or tabs; unknown
/// `key=value` tokens are ignored so later versions can add fields.
public struct PluginPin: Sendable, Equatable, CustomStringConvertible {
    /// The plugin's name (`plugin: <name>` in config).
    public var name: String
    /// The plugin's version.
    public var version: String
    /// The plugin ABI major version the plugin was built for.
    public var abiMajor: UInt32

    /// A pin; `abiMajor` defaults to the ABI this mcpg speaks.
    public init(name: String, version: String, abiMajor: UInt32 = MCPG_ABI_MAJOR) {
        self.name = name
        self.version = version
        self.abiMajor = abiMajor
    }

    /// Parses a trusted comment; nil when it is not an `mcpg-plugin` comment with name, version and abi.
    public init?(trustedComment: String) {
        let tokens = trustedComment.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard tokens.first == "mcpg-plugin" else { return nil }
        var fields: [Substring: Substring] = [:]
        for t in tokens.dropFirst() {
            guard let eq = t.firstIndex(of: "=") else { return nil }
            fields[t[..<eq]] = t[t.index(after: eq)...]
        }
        guard let name = fields["name"], let version = fields["version"], let abi = fields["abi"].flatMap({ UInt32($0) }),
            !name.isEmpty, !version.isEmpty
        else { return nil }
        self.init(name: String(name), version: String(version), abiMajor: abi)
    }

    /// The trusted comment that pins this plugin.
    public var trustedComment: String { "mcpg-plugin name=\(name) version=\(version) abi=\(abiMajor)" }

    /// `trustedComment`.
    public var description: String { trustedComment }

    /// True for a name config can use: `[a-z0-9_-]+`.
    static func isValidName(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F || $0 == 0x2D }
    }

    /// True for a version that fits in a one-token trusted comment.
    static func isValidVersion(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }
}
