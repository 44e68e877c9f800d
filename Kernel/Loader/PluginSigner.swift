/// Signs plugin files for the loader: a minisign signature whose trusted comment pins name, version and ABI.
public enum PluginSigner {
    /// Signs `file` with `key` and writes `<file>.minisig`.
    /// - Parameters:
    ///   - pin: what the signature pins. When nil, it is read from the plugin's own descriptor by mapping the file
    ///     WITHOUT verification (this runs the plugin's code: the signer vouches for the file anyway).
    /// - Returns: the signature's path and the pin it carries.
    /// - Throws: `LoaderError` naming the file.
    @discardableResult
    public static func sign(file: String, key: MinisignSecretKey, pin: PluginPin? = nil) throws(LoaderError)
        -> (signaturePath: String, pin: PluginPin)
    {
        let bytes = try FileIO.read(file)
        try withRawBytes(bytes) { (b) throws(LoaderError) in try checkELF(b, path: file) }
        let pin = if let pin { pin } else { try PluginLoader.inspectUnverified(path: file) }
        guard PluginPin.isValidName(pin.name) else {
            throw LoaderError(.badTrustedComment, "\(file): \"\(pin.name)\" is not a plugin name (use [a-z0-9_-]+)")
        }
        guard PluginPin.isValidVersion(pin.version) else {
            throw LoaderError(.badTrustedComment, "\(file): \"\(pin.version)\" is not a version (no spaces)")
        }
        let text = try key.sign(
            bytes, trustedComment: pin.trustedComment,
            untrustedComment: "mcpg plugin signature from key \(key.publicKey.keyIDHex)")
        let sigPath = "\(file).minisig"
        try FileIO.write(sigPath, Array(text.utf8))
        return (sigPath, pin)
    }
}
