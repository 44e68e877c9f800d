import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import MCPGConfig
import MCPGJSON
import Testing

@Suite struct GatewayConfigTests {
    static func loadFixture(_ name: String) throws -> GatewayConfig {
        let text = try #require(Fixtures.read("\(Fixtures.configDir)/\(name).yaml"))
        return try ConfigLoader.parse(text, file: "\(name).yaml", directory: Fixtures.configDir)
    }

    @Test("a full config builds with every value, paths absolute, keys read")
    func fullConfig() throws {
        let config = try Self.loadFixture("valid-full")
        let dir = Fixtures.configDir
        let http = try #require(config.server.http)
        #expect(http.host == "::1")
        #expect(http.port == 8443)
        #expect(http.listen == "[::1]:8443")
        #expect(http.path == "/gateway/mcp")
        #expect(http.allowedOrigins == ["http://localhost:6274", "https://app.example.com:8443"])
        #expect(http.maxBodyBytes == 1_048_576)
        #expect(http.sessionIdleTimeoutSeconds == 600)
        #expect(http.maxSessions == 500)
        #expect(config.server.pageSize == 50)
        #expect(config.server.callTimeoutMs == 15_000)
        #expect(config.log == LogConfig(level: .debug, format: .json))
        #expect(config.plugins.dir == dir + "/plugins")
        let key = "RWSqAVS1rkYjOedXns9VkQnS5bN8jmeb78QJeCaaeDcYkL/jVFGNU/Mw"
        #expect(config.plugins.trustedKeys == [key, key])
        #expect(config.identity.map(\.plugin) == ["apikey", "anonymous"])
        #expect(config.identity[0].config["header"] == "x-api-key")
        #expect(config.identity[0].config["keys"]?[0]?["groups"] == ["eng", "ops"])
        #expect(config.identity[1].config == [:])
        #expect(config.identity[1].configNode == nil)
        #expect(config.identity[0].path == "identity[0]")
        #expect(config.policy[0].config["rules"]?[0]?["weight"] == .double(0.5))
        #expect(config.policyMode == .first)
        #expect(config.transforms.map(\.plugin) == ["redact"])
        #expect(config.backends.map(\.name) == ["demo", "second-one"])
        #expect(config.backends[0].ref.path == "backends.demo")
        #expect(config.backends[0].ref.config == ["tools": [["name": "echo"]]])
        #expect(config.audit.ledger == dir + "/data/audit.ledger")
        #expect(config.audit.signingKey == dir + "/keys/audit.key")
        #expect(config.audit.checkpointEvery == 1)
        #expect(config.audit.checkpointIntervalMs == 250)
        #expect(config.sinks[0].config == ["path": "-"])
    }

    @Test("plugin references keep the locations of the entry, the name and the config block")
    func pluginRefLocations() throws {
        let config = try Self.loadFixture("valid-full")
        let apikey = config.identity[0]
        #expect(apikey.location.lineColumn == "21:5")
        #expect(apikey.pluginLocation.lineColumn == "21:13")
        #expect(apikey.configNode?.location.lineColumn == "23:7")
        let anonymous = config.identity[1]
        #expect(anonymous.location.lineColumn == "28:5")
        #expect(anonymous.pluginLocation.lineColumn == "28:15")
        #expect(config.backends[1].location.lineColumn == "48:3")
        #expect(config.backends[1].ref.pluginLocation.lineColumn == "49:13")
        let d = apikey.diagnostic("plugin \"apikey\" is not in the plugin directory")
        #expect(d.description == "valid-full.yaml:21:13: error: plugin \"apikey\" is not in the plugin directory")
        #expect(anonymous.configDiagnostic("x").location.lineColumn == "28:5")
    }

    @Test("absent optional sections take their defaults")
    func defaults() throws {
        let config = try Self.loadFixture("valid-minimal")
        #expect(config.server.http == nil)
        #expect(config.server.pageSize == 100)
        #expect(config.server.callTimeoutMs == 30_000)
        #expect(config.log == LogConfig(level: .info, format: .text))
        #expect(config.plugins.dir == Fixtures.configDir + "/plugins")
        #expect(config.transforms.isEmpty && config.backends.isEmpty && config.sinks.isEmpty)
        #expect(config.audit.ledger == Fixtures.configDir + "/ledger.jsonl")
        #expect(config.audit.checkpointEvery == 1000)
        #expect(config.audit.checkpointIntervalMs == 1000)
        #expect(config.policyMode == .all)
    }

    @Test("chains.policy takes all or first and nothing else, reported at the value")
    func policyMode() throws {
        var text = try #require(Fixtures.read("\(Fixtures.configDir)/valid-minimal.yaml"))
        text += "chains:\n  policy: any\n"
        let line = text.split(separator: "\n", omittingEmptySubsequences: false).count - 1
        do {
            _ = try ConfigLoader.parse(text, file: "m.yaml", directory: Fixtures.configDir)
            Issue.record("an unknown chain mode was accepted")
        } catch {
            #expect(error.diagnostics.map(\.description).contains { $0.hasPrefix("m.yaml:\(line):11: error:") && $0.contains("any") })
        }
    }

    @Test("a secret file other users can access is refused at its line; the group may read it")
    func secretFilesArePrivate() throws {
        let dir = FileManager.default.temporaryDirectory.path + "/mcpg-secret-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir + "/keys", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = dir + "/keys/audit.key"
        _ = FileManager.default.createFile(
            atPath: key, contents: FileManager.default.contents(atPath: Fixtures.configDir + "/keys/audit.key"))
        _ = FileManager.default.createFile(
            atPath: dir + "/keys/plugins.pub",
            contents: FileManager.default.contents(atPath: Fixtures.configDir + "/keys/plugins.pub"))
        let text = try #require(Fixtures.read("\(Fixtures.configDir)/valid-minimal.yaml"))
        for mode: mode_t in [0o644, 0o604, 0o602] {
            _ = chmod(key, mode)
            do {
                _ = try ConfigLoader.parse(text, file: "m.yaml", directory: dir)
                Issue.record("a signing key at mode \(String(mode, radix: 8)) was accepted")
            } catch {
                #expect(error.diagnostics.map(\.description) == [
                    "m.yaml:10:16: error: file \"keys/audit.key\" holds a secret but other users can access it (mode "
                        + "0\(String(mode, radix: 8))); chmod 600 it, or 640 for the gateway's group",
                ])
            }
        }
        for mode: mode_t in [0o600, 0o640, 0o400] {
            _ = chmod(key, mode)
            #expect(throws: Never.self) { _ = try ConfigLoader.parse(text, file: "m.yaml", directory: dir) }
        }
    }

    @Test("an empty http mapping enables HTTP with the default address and path")
    func httpDefaults() throws {
        let text = try #require(Fixtures.read("\(Fixtures.configDir)/valid-minimal.yaml")) + "server: { http: {} }\n"
        let config = try ConfigLoader.parse(text, file: "x.yaml", directory: Fixtures.configDir)
        let http = try #require(config.server.http)
        #expect(http.host == "127.0.0.1" && http.port == 8080 && http.path == "/mcp")
        #expect(http.allowedOrigins.isEmpty)
        #expect(http.maxBodyBytes == 4_194_304)
        #expect(http.sessionIdleTimeoutSeconds == 1800)
        #expect(http.maxSessions == 10_000)
    }

    @Test("a config with many backends keeps every one, in file order, with its own config")
    func manyBackends() throws {
        var text = try #require(Fixtures.read("\(Fixtures.configDir)/valid-minimal.yaml")) + "backends:\n"
        for i in 0..<500 { text += "  b\(i): { plugin: mock, config: { tools: [{ name: t\(i) }] } }\n" }
        let config = try ConfigLoader.parse(text, file: "big.yaml", directory: Fixtures.configDir)
        #expect(config.backends.map(\.name) == (0..<500).map { "b\($0)" })
        #expect(config.backends[499].ref.config == ["tools": [["name": "t499"]]])
        #expect(config.backends[499].location.line == 12 + 499)
    }

    @Test("load(path:) reads a real file and resolves paths against its directory")
    func loadFromDisk() throws {
        let path = Fixtures.configDir + "/valid-minimal.yaml"
        let config = try ConfigLoader.load(path: path)
        #expect(config.file == path)
        #expect(config.audit.signingKey == Fixtures.configDir + "/keys/audit.key")
    }

    @Test("load(path:) reports a missing or unreadable file without line and column")
    func loadMissing() {
        let path = Fixtures.configDir + "/does-not-exist.yaml"
        #expect(
            throws: ConfigError([
                ConfigDiagnostic(SourceLocation(file: path, line: 0, column: 0), "config file not found")
            ])
        ) {
            try ConfigLoader.load(path: path)
        }
        do {
            _ = try ConfigLoader.load(path: Fixtures.configDir)
            Issue.record("a directory loaded as a config")
        } catch {
            #expect(error.description == "\(Fixtures.configDir): error: is a directory, not a config file")
        }
    }

    @Test("load(path:) reports invalid UTF-8 at its position")
    func invalidUTF8() throws {
        do {
            _ = try ConfigLoader.load(path: Fixtures.configDir + "/invalid-utf8.data")
            Issue.record("invalid UTF-8 accepted")
        } catch {
            let d = try #require(error.diagnostics.first)
            #expect(d.location.line == 3)
            #expect(d.message.hasPrefix("the file is not valid UTF-8"))
        }
    }

    @Test("diagnostics come sorted by position and print like compiler output")
    func errorFormatting() {
        let file = "a.yaml"
        let error = ConfigError([
            ConfigDiagnostic(SourceLocation(file: file, line: 9, column: 1), "b"),
            ConfigDiagnostic(SourceLocation(file: file, line: 2, column: 7), "a"),
        ])
        #expect(error.description == "a.yaml:2:7: error: a\na.yaml:9:1: error: b")
    }
}
