import CMCPGPlugin
import MCPGJSON

/// A verified, mapped plugin: its descriptor plus what was checked to get it.
///
/// `@unchecked Sendable` is safe: `descriptor` points at the plugin's static descriptor, which the plugin never
/// changes after returning it, and the image is never unloaded (RTLD_NODELETE, no dlclose).
public struct LoadedPlugin: @unchecked Sendable, CustomStringConvertible {
    /// Name from the descriptor (equal to the signed trusted comment's).
    public let name: String
    /// Version from the descriptor (equal to the signed trusted comment's).
    public let version: String
    /// `mcpg_kind` raw value, 1...5.
    public let kind: UInt32
    /// The descriptor's `abi_version` (major in the high 16 bits).
    public let abiVersion: UInt32
    /// The plugin's config schema, a JSON object.
    public let configSchema: JSON
    /// The file it was read from.
    public let path: String
    /// SHA-256 (hex) of the exact bytes that were verified and mapped.
    public let sha256: String
    /// Key id (minisign's hex form) of the trusted key that signed it.
    public let signerKeyID: String
    /// The static descriptor inside the mapped image.
    public let descriptor: UnsafePointer<mcpg_plugin>

    /// The kind as config names it ("identity", "policy", "transform", "backend", "sink").
    public var kindName: String { kindNames[Int(kind)] ?? "kind \(kind)" }

    /// `"<major>.<minor>"`.
    public var abiString: String { "\(abiVersion >> 16).\(abiVersion & 0xFFFF)" }

    /// Refuses the plugin when it is not of the kind the config section that uses it needs.
    /// - Parameter kindName: "identity", "policy", "transform", "backend" or "sink".
    /// - Throws: `LoaderError.kindMismatch` naming the file.
    public func require(kind kindName: String) throws(LoaderError) {
        guard kindName == self.kindName else {
            throw LoaderError(
                .kindMismatch, "\(path): plugin \(name) is a \(self.kindName) plugin, cannot be used as \(kindName)")
        }
    }

    /// One line: name, version, kind.
    public var description: String { "\(name) \(version) (\(kindName), \(path))" }
}

private let kindNames: [Int: String] = [1: "identity", 2: "policy", 3: "transform", 4: "backend", 5: "sink"]

/// What `PluginLoader.verifyFile` checked without mapping the file.
public struct VerifiedPluginFile: Sendable, Equatable {
    /// The plugin file.
    public let path: String
    /// Name, version and ABI major pinned by the signed trusted comment.
    public let pin: PluginPin
    /// SHA-256 (hex) of the verified bytes.
    public let sha256: String
    /// Key id (minisign's hex form) of the trusted key that signed it.
    public let signerKeyID: String
    /// Size in bytes.
    public let size: Int
    /// True for a prehashed (`ED`) signature.
    public let prehashed: Bool
}
