import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import MCPGJSON

/// Paths of the package and of the config fixtures, found from this file's location.
enum Fixtures {
    /// The package root (three levels above this file).
    static let packageRoot: String = {
        var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }()

    /// `Tests/Fixtures/config`. Git keeps files at mode 0644, and a signing key open to other users is a config
    /// error, so the fixture key is made private first.
    static let configDir: String = {
        let dir = packageRoot + "/Tests/Fixtures/config"
        _ = chmod(dir + "/keys/audit.key", 0o600)
        return dir
    }()

    static func read(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The names (without `.yaml`) of the golden config files.
    static let goldenNames: [String] = {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: configDir)) ?? []
        return entries.filter { $0.hasSuffix(".yaml") }.map { String($0.dropLast(5)) }.sorted()
    }()

    /// The sample plugin schemas, by plugin name (`schemas/<name>.json`).
    static let pluginSchemas: [String: JSON] = {
        let dir = configDir + "/schemas"
        var out: [String: JSON] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where entry.hasSuffix(".json") {
            if let text = read(dir + "/" + entry), let json = try? JSON.parse(text) {
                out[String(entry.dropLast(5))] = json
            }
        }
        return out
    }()
}
