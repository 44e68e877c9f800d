import ArgumentParser
import Dispatch
import Logging
import MCPGConfig
import MCPGLoader
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `mcpg plugin …`: signing keys, plugin signatures, and checking plugin files before a gateway loads them.
struct PluginCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugin",
        abstract: "Create signing keys, sign plugins, and check plugin signatures.",
        discussion: """
            mcpg only loads a plugin (<name>.so) that has a minisign signature (<name>.so.minisig) made by one of \
            the keys in `plugins.trusted_keys`. The signature's trusted comment pins the plugin's name, version and \
            ABI, so a signed file cannot be passed off as another plugin.

            A typical flow:
              mcpg plugin keygen --out keys/plugins     # once; keep the .key file secret
              mcpg plugin sign plugins/rules.so --key keys/plugins.key
              mcpg plugin verify plugins --trusted-key keys/plugins.pub

            The files are minisign's: `minisign -Vm plugins/rules.so -p keys/plugins.pub` checks them too, and a \
            plugin signed with `minisign -S -t "mcpg-plugin name=rules version=1.2.0 abi=1"` loads in mcpg.
            """,
        subcommands: [Keygen.self, Sign.self, Verify.self, List.self]
    )

    /// Verifies the plugin file `target`, or every `*.so` in the directory `target`, without loading any of them.
    /// Prints one `OK` line per good plugin on stdout and one `error:` line per failure on stderr.
    /// - Parameters:
    ///   - trustedKeys: public keys (`RWQ…`) or paths of minisign `.pub` files.
    /// - Returns: the exit code: 0 when every plugin verified, 1 when any failed (or a key or path is unusable).
    static func verifyPlugins(at target: String, trustedKeys: [String]) -> Int32 {
        guard let keys = parseKeys(trustedKeys), let files = pluginFiles(at: target) else { return 1 }
        // Hashing is most of the work: every file at once, on every core; the lines come out in file order.
        let outcomes = Mutex<[Int: Result<String, LoaderError>]>([:])
        DispatchQueue.concurrentPerform(iterations: files.count) { i in
            let outcome = Result(catching: { () throws(LoaderError) in
                let v = try PluginLoader.verifyFile(path: files[i], trustedKeys: keys)
                return "OK \(files[i]): \(v.pin.name) \(v.pin.version) (ABI \(v.pin.abiMajor)) signed by \(v.signerKeyID), sha256 \(v.sha256)"
            })
            outcomes.withLock { $0[i] = outcome }
        }
        var failed = false
        for i in files.indices {
            switch outcomes.withLock({ $0[i] }) {
            case .success(let line)?: print(line)
            case .failure(let error)?:
                printProblem("error: \(error.message)")
                failed = true
            case nil:
                printProblem("error: \(files[i]): not verified")
                failed = true
            }
        }
        return failed ? 1 : 0
    }

    /// Loads every `*.so` in `directory` through the real loader (verify, then map) and prints a table: name, kind,
    /// version, ABI, signer key id, sha256. Loading runs each plugin's initialization code, after its signature
    /// checked out.
    /// - Returns: the exit code: 0 when every plugin loaded, 1 otherwise.
    static func listPlugins(in directory: String, trustedKeys: [String]) -> Int32 {
        guard let keys = parseKeys(trustedKeys), let files = pluginFiles(at: directory) else { return 1 }
        let quiet = Logger(label: "mcpg.plugin") { _ in SwiftLogNoOpLogHandler() }
        let loader = PluginLoader(directory: directory, trustedKeys: keys, logger: quiet)
        var rows: [[String]] = [["NAME", "KIND", "VERSION", "ABI", "SIGNER", "SHA256", "FILE"]]
        var failed = false
        for file in files {
            do throws(LoaderError) {
                let p = try loader.load(path: file)
                rows.append([p.name, p.kindName, p.version, p.abiString, p.signerKeyID, p.sha256, file])
            } catch {
                printProblem("error: \(error.message)")
                failed = true
            }
        }
        if rows.count > 1 {
            let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max() ?? 0 }
            for row in rows {
                let cells = row.enumerated().map { c, cell in
                    c == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[c] - cell.count)
                }
                print(cells.joined(separator: "  "))
            }
        }
        return failed ? 1 : 0
    }

    private static func parseKeys(_ texts: [String]) -> [MinisignPublicKey]? {
        var keys: [MinisignPublicKey] = []
        for t in texts {
            do throws(LoaderError) { keys.append(try MinisignPublicKey(keyOrFile: t)) } catch {
                printProblem("error: \(error.message)")
                return nil
            }
        }
        return keys
    }

    /// `target` itself when it is a file; the `*.so` files in it, sorted, when it is a directory.
    private static func pluginFiles(at target: String) -> [String]? {
        var st = stat()
        guard stat(target, &st) == 0 else {
            printProblem("error: \(target): \(String(cString: strerror(errno)))")
            return nil
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { return [target] }
        guard let d = opendir(target) else {
            printProblem("error: \(target): \(String(cString: strerror(errno)))")
            return nil
        }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasSuffix(".so") { names.append(name) }
        }
        guard !names.isEmpty else {
            printProblem("error: \(target): no plugin files (*.so) in this directory")
            return nil
        }
        let base = target.hasSuffix("/") ? String(target.dropLast()) : target
        return names.sorted().map { "\(base)/\($0)" }
    }
}

extension PluginCommand {
    struct Keygen: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an Ed25519 key pair for signing plugins (minisign format).",
            discussion: """
                Writes PREFIX.key (the secret key, mode 0600, not password-protected) and PREFIX.pub, and prints the \
                public key. Put the public key (or the .pub file's path) in `plugins.trusted_keys`; keep the secret \
                key off the gateway host. minisign reads both files (`minisign -S -s PREFIX.key`).
                """)

        @Option(name: .long, help: ArgumentHelp("Path prefix of the key files to write.", valueName: "PREFIX"))
        var out: String

        @Flag(name: .long, help: "Overwrite existing key files.")
        var force = false

        func run() throws {
            let pub = "\(out).pub"
            let sec = "\(out).key"
            if !force {
                for p in [pub, sec] where access(p, F_OK) == 0 {
                    printProblem("error: \(p): already exists; pass --force to overwrite it")
                    throw ExitCode(1)
                }
            }
            let key = MinisignSecretKey.generate()
            do throws(LoaderError) {
                try writeKeyFile(sec, key.secretKeyFileText(), mode: 0o600)
                try writeKeyFile(pub, key.publicKeyFileText(), mode: 0o644)
            } catch {
                printProblem("error: \(error.message)")
                throw ExitCode(1)
            }
            printProblem("wrote \(sec) (secret: keep it private) and \(pub); key id \(key.publicKey.keyIDHex)")
            print(key.publicKey.base64)
        }
    }

    struct Sign: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign a plugin file: writes FILE.minisig.",
            discussion: """
                The signature's trusted comment pins the plugin's name, version and ABI \
                ("mcpg-plugin name=… version=… abi=…"); the loader refuses a plugin whose descriptor disagrees. \
                Without --name/--version they are read from the plugin itself, which means loading it into this \
                process: only sign files you trust. With both flags the file is not loaded.
                """)

        @Argument(help: ArgumentHelp("The plugin shared object to sign.", valueName: "FILE"))
        var file: String

        @Option(name: .long, help: ArgumentHelp("Secret key file (from `mcpg plugin keygen` or `minisign -G -W`).",
                                                valueName: "KEY"))
        var key: String

        @Option(name: .long, help: "Plugin name to pin instead of reading it from the plugin (needs --version).")
        var name: String?

        @Option(name: .customLong("version"), help: "Plugin version to pin instead of reading it from the plugin (needs --name).")
        var pluginVersion: String?

        func validate() throws {
            if (name == nil) != (pluginVersion == nil) {
                throw ValidationError("give both --name and --version, or neither")
            }
        }

        func run() throws {
            do throws(LoaderError) {
                let secret = try MinisignSecretKey(contentsOfFile: key)
                let pin = name.map { PluginPin(name: $0, version: pluginVersion ?? "") }
                let (sigPath, pinned) = try PluginSigner.sign(file: file, key: secret, pin: pin)
                print("\(sigPath): signed \(pinned.name) \(pinned.version) (ABI \(pinned.abiMajor)) with key \(secret.publicKey.keyIDHex)")
            } catch {
                printProblem("error: \(error.message)")
                throw ExitCode(1)
            }
        }
    }

    /// Which keys `verify` and `list` trust, and where they look when no path is given.
    struct TrustOptions: ParsableArguments {
        @Option(name: .customLong("trusted-key"),
                help: ArgumentHelp("A trusted public key (RWQ…) or a minisign .pub file. Repeatable.", valueName: "KEY"))
        var trustedKeys: [String] = []

        @Option(name: .long, help: ArgumentHelp("Take the plugin directory and trusted keys from this config file.",
                                                valueName: "FILE"))
        var config: String?

        /// The path to check and the keys to trust: from `--config` (its `plugins` section) and/or the arguments;
        /// keys from both are trusted when both are given.
        func resolve(target: String?) throws -> (String, [String]) {
            var keys = trustedKeys
            var dir = target
            if let config {
                do throws(ConfigError) {
                    let c = try ConfigLoader.load(path: config)
                    keys += c.plugins.trustedKeys
                    dir = dir ?? c.plugins.dir
                } catch {
                    for d in error.diagnostics { printProblem(d.description) }
                    throw ExitCode(1)
                }
            }
            guard !keys.isEmpty else {
                printProblem("error: give --config FILE or at least one --trusted-key (a public key or a .pub file)")
                throw ExitCode(2)
            }
            guard let dir else {
                printProblem("error: give a plugin file or directory, or --config FILE")
                throw ExitCode(2)
            }
            return (dir, keys)
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check plugin signatures without loading the plugins.",
            discussion: """
                Checks the file, or every *.so in the directory: a .minisig exists, it was made by a trusted key, it \
                covers the exact bytes, its trusted comment pins a plugin for this mcpg's ABI, and the file is a \
                shared library for this machine. No plugin code runs. Prints one OK line per plugin; exits 1 naming \
                each failure.
                """)

        @Argument(help: ArgumentHelp("A plugin file or a directory of plugins (default: the config's plugins.dir).",
                                     valueName: "FILE|DIR"))
        var target: String?

        @OptionGroup var trust: TrustOptions

        func run() throws {
            let (dir, keys) = try trust.resolve(target: target)
            let code = PluginCommand.verifyPlugins(at: dir, trustedKeys: keys)
            if code != 0 { throw ExitCode(code) }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load the plugins in a directory and show name, kind, version, ABI, signer and sha256.",
            discussion: """
                Unlike `verify`, this loads each plugin the way the gateway does (after its signature checks out), \
                so it also catches a missing entry point, a wrong ABI or a descriptor that disagrees with its \
                signature.
                """)

        @Argument(help: ArgumentHelp("The plugin directory (default: the config's plugins.dir).", valueName: "DIR"))
        var directory: String?

        @OptionGroup var trust: TrustOptions

        func run() throws {
            let (dir, keys) = try trust.resolve(target: directory)
            let code = PluginCommand.listPlugins(in: dir, trustedKeys: keys)
            if code != 0 { throw ExitCode(code) }
        }
    }
}

/// Writes a key file atomically with `mode` from the start (0600 for secret keys).
private func writeKeyFile(_ path: String, _ text: String, mode: mode_t) throws(LoaderError) {
    let tmp = "\(path).tmp-\(getpid())"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    guard fd >= 0 else { throw LoaderError(.ioError, "\(path): cannot create: \(String(cString: strerror(errno)))") }
    let bytes = Array(text.utf8)
    var off = 0
    var failure: Int32 = 0
    while off < bytes.count {
        let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 {
            failure = errno
            break
        }
        off += n
    }
    if failure == 0 && fsync(fd) != 0 { failure = errno }
    close(fd)
    if failure == 0 && rename(tmp, path) != 0 { failure = errno }
    if failure != 0 {
        unlink(tmp)
        throw LoaderError(.ioError, "\(path): cannot write: \(String(cString: strerror(failure)))")
    }
}

/// One line to stderr.
private func printProblem(_ line: String) {
    var l = line
    l.append("\n")
    l.withUTF8 { b in _ = write(2, b.baseAddress, b.count) }
}
