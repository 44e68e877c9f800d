import ArgumentParser
import MCPGLoader

#if canImport(Glibc)
import Glibc
#endif

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a working development config, keys and an example policy into a directory.",
        discussion: """
            Creates DIR/mcpg.yaml, an audit signing key (DIR/keys/audit.key, .pub) and a fresh API key, which is \
            printed once (only its SHA-256 is stored). The config serves http://127.0.0.1:8080/mcp with the mock \
            backend: callers with the API key are admins; anyone else on loopback is anonymous and may only call \
            `echo`. Then run: mcpg serve --config DIR/mcpg.yaml
            """)

    @Argument(help: "Directory to write into (created if missing).")
    var dir: String = "."

    @Option(name: .long, help: "Plugin directory. Default: lib/mcpg/plugins next to this mcpg's bin/ directory.")
    var plugins: String?

    @Option(name: .long, help: "Trusted plugin signing key (a .pub file or RW… key text). Default: keys/dev-plugin.pub next to this mcpg's bin/ directory.")
    var trustedKey: String?

    @Option(name: .long, help: "Address to listen on.")
    var listen: String = "127.0.0.1:8080"

    @Flag(name: .long, help: "Overwrite an existing DIR/mcpg.yaml and keys.")
    var force = false

    func run() throws {
        let prefix = parentDirectory(of: parentDirectory(of: executablePath()))
        let pluginDir = plugins ?? prefix + "/lib/mcpg/plugins"
        let trusted = trustedKey ?? prefix + "/keys/dev-plugin.pub"
        if !trusted.hasPrefix("RW") && !fileExists(trusted) {
            printError("error: trusted plugin key \(trusted) not found; pass --trusted-key with the key the plugins are signed with")
            throw ExitCode(1)
        }
        let configPath = dir + "/mcpg.yaml"
        if fileExists(configPath) && !force {
            printError("error: \(configPath) exists; pass --force to overwrite it")
            throw ExitCode(1)
        }
        do {
            try makeDirectories(dir + "/keys")
            try makeDirectories(dir + "/data")
            let audit = MinisignSecretKey.generate()
            try writeFile(dir + "/keys/audit.key", audit.secretKeyFileText(), mode: 0o600, overwrite: force)
            try writeFile(dir + "/keys/audit.pub", audit.publicKeyFileText(), overwrite: force)

            var g = SystemRandomNumberGenerator()
            let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
            let apiKey = "mcpg_" + String((0..<40).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &g)] })
            let hash = sha256Hex(Array(apiKey.utf8))
            let absolute: (String) -> String = { $0.hasPrefix("/") || $0.hasPrefix("RW") ? $0 : currentDirectory() + "/" + $0 }
            try writeFile(configPath, Self.template(listen: listen, plugins: absolute(pluginDir),
                                                    trustedKey: absolute(trusted), keyHash: hash),
                          overwrite: force)
            print("wrote \(configPath), \(dir)/keys/audit.key and \(dir)/keys/audit.pub")
            print("api key: \(apiKey)")
            print("(shown once; only its SHA-256 is in the config)")
            print("next: mcpg serve --config \(configPath)")
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }

    static func template(listen: String, plugins: String, trustedKey: String, keyHash: String) -> String {
        """
        # Written by `mcpg init`. Reference: `mcpg config reference`. Paths are relative to this file.
        mcpg: 1
        server:
          http:
            listen: "\(listen)"
            path: /mcp
        plugins:
          dir: \(plugins)
          trusted_keys: ["\(trustedKey)"]
        identity:
          - plugin: apikey
            config:
              keys:
                - { id: admin, sha256: "\(keyHash)", groups: [admins] }
          - plugin: anonymous          # only ever accepted from loopback peers
        policy:
          - plugin: rules
            config:
              rules:
                - { id: everyone-echo, effect: allow, principals: ["*"], tools: [echo] }
                - { id: admins-all, effect: allow, groups: [admins], tools: ["*"] }
        backends:
          demo:
            plugin: mock
            config:
              tools:
                - name: echo
                  description: Echo a message back.
                  inputSchema:
                    type: object
                    properties: { message: { type: string } }
                    required: [message]
                  result: { text: "{{message}}" }
                - name: admin_whoami
                  description: Admins only.
                  inputSchema: { type: object }
                  result: { text: "you are an admin" }
        audit:
          ledger: data/audit.ledger
          signing_key: keys/audit.key
        sinks:
          - plugin: jsonl
            config: { path: data/audit.jsonl }

        """
    }
}

func currentDirectory() -> String {
    var buf = [CChar](repeating: 0, count: 4096)
    guard getcwd(&buf, buf.count) != nil else { return "." }
    return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
