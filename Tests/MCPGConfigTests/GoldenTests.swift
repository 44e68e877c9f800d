import FoundationEssentials
import MCPGConfig
import MCPGJSON
import Testing

/// Each `Tests/Fixtures/config/NAME.yaml` is loaded the way boot does it (config, then every plugin `config`
/// block against `schemas/<plugin>.json`); the diagnostics must equal `NAME.expected` line for line.
/// `$FIXTURES` in an expected file stands for the fixture directory's absolute path.
@Suite struct GoldenTests {
    /// Diagnostics for one fixture, one per line, with the fixture directory replaced by `$FIXTURES`.
    static func diagnostics(for name: String) -> String {
        let text = Fixtures.read("\(Fixtures.configDir)/\(name).yaml") ?? ""
        var lines: [String]
        do {
            let config = try ConfigLoader.parse(text, file: "\(name).yaml", directory: Fixtures.configDir)
            var found: [ConfigDiagnostic] = []
            for (_, ref) in config.allPluginRefs {
                if let schema = Fixtures.pluginSchemas[ref.plugin] {
                    found += PluginConfigValidator.validate(ref, schema: schema, pluginName: ref.plugin)
                }
            }
            lines = found.map(\.description)
        } catch {
            lines = error.diagnostics.map(\.description)
        }
        return lines.map { $0.replacing(Fixtures.configDir, with: "$FIXTURES") }.joined(separator: "\n")
    }

    @Test("every golden config has its expected diagnostics file")
    func everyFixtureHasExpectations() {
        #expect(Fixtures.goldenNames.count >= 15)
        for name in Fixtures.goldenNames {
            #expect(Fixtures.read("\(Fixtures.configDir)/\(name).expected") != nil, "missing \(name).expected")
        }
    }

    @Test("diagnostics equal the golden file", arguments: Fixtures.goldenNames)
    func golden(name: String) throws {
        let expected = try #require(Fixtures.read("\(Fixtures.configDir)/\(name).expected"))
        let actual = Self.diagnostics(for: name)
        // To review changed output: MCPG_GOLDEN_OUT=/tmp/golden swift test …, then diff against the fixtures.
        if let out = ProcessInfo.processInfo.environment["MCPG_GOLDEN_OUT"] {
            try? FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: "\(out)/\(name).expected", contents: Data((actual + "\n").utf8))
        }
        #expect(actual == expected.trimmingSuffixNewlines(), "\(name).yaml")
    }
}

extension String {
    func trimmingSuffixNewlines() -> String {
        var s = self
        while s.hasSuffix("\n") { s.removeLast() }
        return s
    }
}
