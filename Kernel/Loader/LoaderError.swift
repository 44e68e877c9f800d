/// Why a plugin, key or signature was refused. Every message names the file it is about, e.g.
/// `plugins/rules.so: signature does not match the file (tampered or wrong signature)`.
///
/// Two errors are equal when their codes are equal; the message is for people.
public struct LoaderError: Error, Sendable, CustomStringConvertible, Equatable {
    /// What went wrong, as a value callers can switch on. New codes may be added in any release.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        fileprivate enum Value: String, Sendable {
            case notFound, unsigned, badSignature, untrustedKey, malformedSignature, malformedKey, encryptedKey
            case badTrustedComment, notELF, memfdFailed, dlopenFailed, noEntrySymbol, badMagic, abiMismatch
            case badDescriptor, nameMismatch, versionMismatch, kindMismatch, createFailed, ioError
        }
        fileprivate let value: Value
        fileprivate init(_ value: Value) { self.value = value }

        /// The file (plugin, signature or key) does not exist or cannot be opened.
        public static let notFound = Code(.notFound)
        /// The plugin has no `<file>.minisig` next to it.
        public static let unsigned = Code(.unsigned)
        /// The signature (or the signature over the trusted comment) does not verify: the file was changed.
        public static let badSignature = Code(.badSignature)
        /// The signature was made by a key that is not among the trusted keys.
        public static let untrustedKey = Code(.untrustedKey)
        /// The `.minisig` file is not in minisign's format.
        public static let malformedSignature = Code(.malformedSignature)
        /// A public or secret key is not in minisign's format, or its checksum is wrong.
        public static let malformedKey = Code(.malformedKey)
        /// A password-protected (scrypt) minisign secret key; mcpg only reads unencrypted ones.
        public static let encryptedKey = Code(.encryptedKey)
        /// The signature's trusted comment does not pin a plugin (`mcpg-plugin name=… version=… abi=…`).
        public static let badTrustedComment = Code(.badTrustedComment)
        /// The file is not a 64-bit ELF shared object for this machine.
        public static let notELF = Code(.notELF)
        /// `memfd_create`, writing or sealing the in-memory copy failed.
        public static let memfdFailed = Code(.memfdFailed)
        /// `dlopen` refused the verified bytes (missing library, or exec mappings of memfds are forbidden).
        public static let dlopenFailed = Code(.dlopenFailed)
        /// The shared object exports no `mcpg_plugin_v1`.
        public static let noEntrySymbol = Code(.noEntrySymbol)
        /// The entry point returned NULL or a descriptor without the `MCPG` magic.
        public static let badMagic = Code(.badMagic)
        /// The plugin was built for another major version of the plugin ABI.
        public static let abiMismatch = Code(.abiMismatch)
        /// The descriptor is inconsistent: too small, unknown kind, missing name, functions or config schema.
        public static let badDescriptor = Code(.badDescriptor)
        /// The plugin's name differs from the signed trusted comment or from the name it was loaded as.
        public static let nameMismatch = Code(.nameMismatch)
        /// The plugin's version differs from the signed trusted comment.
        public static let versionMismatch = Code(.versionMismatch)
        /// The plugin is of another kind than the config section that uses it.
        public static let kindMismatch = Code(.kindMismatch)
        /// The plugin's `create` refused its config.
        public static let createFailed = Code(.createFailed)
        /// Reading or writing a file failed.
        public static let ioError = Code(.ioError)

        /// The code's name, e.g. `badSignature`.
        public var description: String { value.rawValue }
    }

    /// What went wrong.
    public let code: Code
    /// One line for an operator; names the file.
    public let message: String
    /// Where in mcpg the error was made (for bug reports).
    public let fileID: String
    /// Line in `fileID`.
    public let line: Int

    /// Makes an error; `message` should start with the file it is about.
    public init(_ code: Code, _ message: String, fileID: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message
        self.fileID = fileID
        self.line = line
    }

    /// The message.
    public var description: String { message }

    /// Equality is by code.
    public static func == (a: LoaderError, b: LoaderError) -> Bool { a.code == b.code }
}
