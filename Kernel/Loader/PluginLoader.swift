import CMCPGPlugin
import Logging
import MCPGJSON
import Synchronization

/// Loads plugins the only way mcpg runs plugin code: read the file once, verify its minisign signature over those
/// bytes, map those same bytes (memfd + dlopen of /proc/self/fd/N), check the descriptor against the signed
/// trusted comment. Nothing is ever unloaded.
///
/// Checks, in order: file exists → `<file>.minisig` exists → signature parses → its key is trusted → it covers the
/// bytes → the comment signature covers the trusted comment → the comment pins a plugin for this ABI → ELF shared
/// object for this machine → memfd, seal, dlopen → `mcpg_plugin_v1` exists → magic → ABI major → struct size,
/// kind, name, version, functions → name and version equal the pinned ones → config schema is a JSON object.
///
/// Loading is for boot: calls are serialized process-wide and may take milliseconds; run it off event loops.
public struct PluginLoader: Sendable {
    /// The plugin directory (`plugins.dir`).
    public let directory: String
    /// Keys whose signatures are accepted (`plugins.trusted_keys`).
    public let trustedKeys: [MinisignPublicKey]
    let logger: Logger
    private let cache = NameCache()

    /// A loader for `<directory>/<name>.so` files signed by one of `trustedKeys`.
    public init(directory: String, trustedKeys: [MinisignPublicKey], logger: Logger) {
        self.directory = directory
        self.trustedKeys = trustedKeys
        self.logger = logger
    }

    /// Loads `<directory>/<name>.so`, whose descriptor must be named `name`. Each name is loaded once per loader;
    /// later calls return the same plugin. Failures are not cached.
    /// - Throws: `LoaderError` naming the file.
    public func load(name: String) throws(LoaderError) -> LoadedPlugin {
        if let hit = cache.get(name) { return hit }
        let path = directory.isEmpty ? "\(name).so" : directory.hasSuffix("/") ? "\(directory)\(name).so" : "\(directory)/\(name).so"
        guard PluginPin.isValidName(name) else {
            throw LoaderError(.notFound, "\(path): \"\(name)\" is not a plugin name (use [a-z0-9_-]+)")
        }
        let p = try load(path: path)
        guard p.name == name else {
            throw LoaderError(.nameMismatch, "\(path): plugin calls itself \"\(p.name)\", expected \"\(name)\"")
        }
        cache.put(name, p)
        return p
    }

    /// Loads the plugin file at `path` (its signature is `<path>.minisig`).
    /// - Throws: `LoaderError` naming the file.
    public func load(path: String) throws(LoaderError) -> LoadedPlugin {
        let bytes = try FileIO.read(path)
        let checked = try withRawBytes(bytes) { (b) throws(LoaderError) -> VerifiedPluginFile in
            try Self.verify(bytes: b, path: path, trustedKeys: trustedKeys)
        }
        let plugin = try withRawBytes(bytes) { (b) throws(LoaderError) -> LoadedPlugin in
            try Self.map(bytes: b, verified: checked)
        }
        logger.info(
            "plugin loaded",
            metadata: [
                "mcpg.plugin.name": "\(plugin.name)", "mcpg.plugin.version": "\(plugin.version)",
                "mcpg.plugin.kind": "\(plugin.kindName)", "mcpg.plugin.path": "\(path)",
                "mcpg.plugin.sha256": "\(plugin.sha256)", "mcpg.plugin.signer": "\(plugin.signerKeyID)",
            ])
        return plugin
    }

    /// Verifies a plugin file without mapping it (for `mcpg plugin verify`): the signature and trusted comment, that
    /// the file is an ELF shared object for this machine, and that its name is the one the signature pins
    /// (`<name>.so`, or `lib<name>.so` as SwiftPM builds it), since `load(name:)` looks for `<name>.so` and insists
    /// the plugin inside is `<name>`. No plugin code runs.
    /// - Throws: `LoaderError` naming the file.
    public static func verifyFile(path: String, trustedKeys: [MinisignPublicKey]) throws(LoaderError)
        -> VerifiedPluginFile
    {
        let bytes = try FileIO.read(path)
        let v = try withRawBytes(bytes) { (b) throws(LoaderError) -> VerifiedPluginFile in
            try verify(bytes: b, path: path, trustedKeys: trustedKeys)
        }
        let file = path.split(separator: "/").last.map(String.init) ?? path
        guard file == "\(v.pin.name).so" || file == "lib\(v.pin.name).so" else {
            throw LoaderError(
                .nameMismatch,
                "\(path): signature pins plugin \"\(v.pin.name)\", but the file is not named \(v.pin.name).so")
        }
        return v
    }

    /// Reads the descriptor of a plugin WITHOUT verifying any signature, by mapping the file the same way the
    /// loader does. This runs the plugin's code: only for a signer who trusts the file (`mcpg plugin sign`).
    /// - Throws: `LoaderError` naming the file when it is not a loadable plugin.
    public static func inspectUnverified(path: String) throws(LoaderError) -> PluginPin {
        let bytes = try FileIO.read(path)
        return try withRawBytes(bytes) { (b) throws(LoaderError) -> PluginPin in
            try checkELF(b, path: path)
            let d = try descriptor(bytes: b, path: path, imageName: "unverified")
            return PluginPin(name: String(cString: d.pointee.name), version: String(cString: d.pointee.version),
                             abiMajor: d.pointee.abi_version >> 16)
        }
    }

    // MARK: - Steps

    static func verify(bytes: UnsafeRawBufferPointer, path: String, trustedKeys: [MinisignPublicKey])
        throws(LoaderError) -> VerifiedPluginFile
    {
        let sigPath = "\(path).minisig"
        guard FileIO.exists(sigPath) else {
            throw LoaderError(.unsigned, "\(path): unsigned (no \(sigPath); sign it with `mcpg plugin sign`)")
        }
        let sigText = try FileIO.readText(sigPath)
        let verified = try Minisign.verify(bytes, signature: sigText, trustedKeys: trustedKeys, source: path)
        guard let pin = PluginPin(trustedComment: verified.trustedComment) else {
            throw LoaderError(
                .badTrustedComment,
                "\(path): the signature's trusted comment does not pin a plugin "
                    + "(expected \"mcpg-plugin name=<name> version=<version> abi=<major>\", got \"\(verified.trustedComment)\")")
        }
        guard pin.abiMajor == MCPG_ABI_MAJOR else {
            throw LoaderError(
                .abiMismatch, "\(path): signed as built for plugin ABI \(pin.abiMajor), this mcpg speaks \(MCPG_ABI_MAJOR)")
        }
        try checkELF(bytes, path: path)
        return VerifiedPluginFile(
            path: path, pin: pin, sha256: sha256Hex(UnsafeBufferPointer(start: bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), count: bytes.count)),
            signerKeyID: verified.keyID, size: bytes.count, prehashed: verified.prehashed)
    }

    static func map(bytes: UnsafeRawBufferPointer, verified: VerifiedPluginFile) throws(LoaderError) -> LoadedPlugin {
        let path = verified.path
        let d = try descriptor(bytes: bytes, path: path, imageName: verified.pin.name, sha256: verified.sha256)
        let name = String(cString: d.pointee.name)
        let version = String(cString: d.pointee.version)
        guard name == verified.pin.name else {
            throw LoaderError(
                .nameMismatch, "\(path): plugin calls itself \"\(name)\" but its signature pins \"\(verified.pin.name)\"")
        }
        guard version == verified.pin.version else {
            throw LoaderError(
                .versionMismatch,
                "\(path): plugin is version \(version) but its signature pins version \(verified.pin.version)")
        }
        let schemaText = String(cString: d.pointee.config_schema)
        let schema: JSON
        do {
            schema = try JSON.parse(schemaText)
        } catch {
            throw LoaderError(.badDescriptor, "\(path): config schema is not valid JSON: \(error)")
        }
        guard schema.objectValue != nil else {
            throw LoaderError(.badDescriptor, "\(path): config schema must be a JSON object, got \(schema.typeName)")
        }
        return LoadedPlugin(
            name: name, version: version, kind: d.pointee.kind, abiVersion: d.pointee.abi_version,
            configSchema: schema, path: path, sha256: verified.sha256, signerKeyID: verified.signerKeyID, descriptor: d)
    }

    /// Maps the bytes (or reuses an earlier mapping of identical bytes) and checks the descriptor's fixed part.
    static func descriptor(bytes: UnsafeRawBufferPointer, path: String, imageName: String, sha256: String? = nil)
        throws(LoaderError) -> UnsafePointer<mcpg_plugin>
    {
        let image: ImageHandle = try images.withLock { (m) throws(LoaderError) -> ImageHandle in
            if let sha256, let hit = m[sha256] { return hit }
            let h = try mapImage(bytes, name: imageName, path: path)
            if let sha256 { m[sha256] = h }
            return h
        }
        guard let sym = lookup(MCPG_PLUGIN_ENTRY_SYMBOL, in: image) else {
            throw LoaderError(
                .noEntrySymbol, "\(path): exports no \(MCPG_PLUGIN_ENTRY_SYMBOL) (not an mcpg plugin for ABI \(MCPG_ABI_MAJOR))")
        }
        typealias Entry = @convention(c) () -> UnsafeRawPointer?
        guard let raw = unsafeBitCast(sym, to: Entry.self)() else {
            throw LoaderError(.badMagic, "\(path): \(MCPG_PLUGIN_ENTRY_SYMBOL) returned no descriptor")
        }
        // Read only the three leading fields until magic, version and size say the rest is there.
        let magic = raw.load(fromByteOffset: 0, as: UInt32.self)
        guard magic == MCPG_PLUGIN_MAGIC else {
            throw LoaderError(.badMagic, "\(path): descriptor has a bad magic number (not an mcpg plugin)")
        }
        let abi = raw.load(fromByteOffset: 4, as: UInt32.self)
        guard abi >> 16 == MCPG_ABI_MAJOR else {
            throw LoaderError(.abiMismatch, "\(path): built for plugin ABI \(abi >> 16), this mcpg speaks \(MCPG_ABI_MAJOR)")
        }
        let size = raw.load(fromByteOffset: 8, as: UInt32.self)
        guard size >= MemoryLayout<mcpg_plugin>.size else {
            throw LoaderError(
                .badDescriptor, "\(path): descriptor is \(size) bytes, ABI \(MCPG_ABI_MAJOR).0 needs \(MemoryLayout<mcpg_plugin>.size)")
        }
        let d = raw.assumingMemoryBound(to: mcpg_plugin.self)
        guard (1...5).contains(d.pointee.kind) else {
            throw LoaderError(.badDescriptor, "\(path): descriptor has unknown kind \(d.pointee.kind)")
        }
        guard let n = d.pointee.name, PluginPin.isValidName(String(cString: n)) else {
            throw LoaderError(.badDescriptor, "\(path): descriptor has no valid name ([a-z0-9_-]+)")
        }
        guard let v = d.pointee.version, PluginPin.isValidVersion(String(cString: v)) else {
            throw LoaderError(.badDescriptor, "\(path): descriptor has no valid version")
        }
        guard d.pointee.config_schema != nil else {
            throw LoaderError(.badDescriptor, "\(path): descriptor has no config schema")
        }
        guard d.pointee.create != nil, d.pointee.handle != nil, d.pointee.destroy != nil else {
            throw LoaderError(.badDescriptor, "\(path): descriptor lacks create, destroy or handle")
        }
        return d
    }
}

/// Images mapped in this process, by SHA-256 of their bytes: identical bytes are mapped once. The lock also
/// serializes dlopen calls, which only happen at boot.
private let images = Mutex<[String: ImageHandle]>([:])

/// Per-loader plugins by name.
private final class NameCache: Sendable {
    private let m = Mutex<[String: LoadedPlugin]>([:])
    func get(_ name: String) -> LoadedPlugin? { m.withLock { $0[name] } }
    func put(_ name: String, _ p: LoadedPlugin) { m.withLock { $0[name] = p } }
}
