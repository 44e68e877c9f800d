import FoundationEssentials
import HTTPTools
import MCPGConfig
import MCPGJSON
import OpenAPIKit
import OpenAPIKit30
import OpenAPIKitCompat

/// Reads an OpenAPI 3.0 or 3.1 document (JSON or YAML), checks it with OpenAPIKit (3.0 documents are converted
/// to 3.1) and returns it as JSON in its 3.1 form, for tool generation.
enum SpecLoader {
    /// - Throws: `HTTPToolsError` saying what is wrong, with OpenAPIKit's path into the document.
    static func load(_ bytes: [UInt8], source: String) throws -> JSON {
        let raw: JSON
        let first = bytes.first { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }
        do {
            raw = first == UInt8(ascii: "{") ? try JSON.parse(bytes, maxDepth: 512) : try yaml(bytes, source: source)
        } catch let e as HTTPToolsError {
            throw e
        } catch {
            throw HTTPToolsError("\(source): not JSON or YAML (\(error))")
        }
        guard let version = raw["openapi"]?.stringValue else {
            if raw["swagger"] != nil {
                throw HTTPToolsError("\(source): Swagger 2.0 is not supported; convert it to OpenAPI 3")
            }
            throw HTTPToolsError("\(source): no \"openapi\" version field: not an OpenAPI 3 document")
        }
        let data = Data(raw.serialized())
        let document: OpenAPIKit.OpenAPI.Document
        do {
            if version.hasPrefix("3.0") {
                document = try JSONDecoder().decode(OpenAPIKit30.OpenAPI.Document.self, from: data)
                    .convert(to: .v3_1_1)
            } else if version.hasPrefix("3.1") || version.hasPrefix("3.2") {
                document = try JSONDecoder().decode(OpenAPIKit.OpenAPI.Document.self, from: data)
            } else {
                throw HTTPToolsError("\(source): OpenAPI version \(version) is not 3.0 or 3.1")
            }
        } catch let e as HTTPToolsError {
            throw e
        } catch {
            throw HTTPToolsError("\(source): invalid OpenAPI document: \(OpenAPIKit.OpenAPI.Error(from: error).localizedDescription)")
        }
        let encoded: Data
        do {
            encoded = try JSONEncoder().encode(document)
        } catch {
            throw HTTPToolsError("\(source): cannot re-encode the document (\(error))")
        }
        do {
            // JSONEncoder does not keep the order of keys: put them back in the document's order, so tools are
            // listed (and schemas' properties shown) as the document has them, the same at every start.
            return ordered(try JSON.parse(Array(encoded), maxDepth: 512), like: raw)
        } catch {
            throw HTTPToolsError("\(source): \(error)")
        }
    }

    /// `value` with every object's members in the order of the same object in `model` (members `model` lacks,
    /// such as those the 3.0 to 3.1 conversion added, last in their own order).
    static func ordered(_ value: JSON, like model: JSON?) -> JSON {
        switch value {
        case .object(let o):
            guard let m = model?.objectValue else { return .object(JSONObject(o.map { JSONMember($0.key, ordered($0.value, like: nil)) })) }
            var members: [JSONMember] = []
            for key in m.keys where o[key] != nil { members.append(JSONMember(key, ordered(o[key]!, like: m[key]))) }
            for member in o where m[member.key] == nil { members.append(JSONMember(member.key, ordered(member.value, like: nil))) }
            return .object(JSONObject(members))
        case .array(let a):
            let m = model?.arrayValue
            return .array(a.enumerated().map { i, v in ordered(v, like: m.flatMap { i < $0.count ? $0[i] : nil }) })
        default:
            return value
        }
    }

    /// A YAML document as JSON, by the config file's parser (libyaml; anchors and aliases refused).
    static func yaml(_ bytes: [UInt8], source: String) throws -> JSON {
        var diagnostics: [ConfigDiagnostic] = []
        guard let node = YAMLParser.parse(bytes: bytes, file: source, diagnostics: &diagnostics),
            diagnostics.isEmpty
        else {
            throw HTTPToolsError("\(source): not JSON or YAML (\(diagnostics.first.map { "\($0)" } ?? "no YAML document"))")
        }
        let json = node.json(diagnostics: &diagnostics)
        if let d = diagnostics.first { throw HTTPToolsError("\(source): not JSON or YAML (\(d))") }
        return json
    }
}
