import FoundationEssentials
import MCPGConfig
import MCPGJSON
import Testing

@Suite struct ConfigSchemaTests {
    @Test("the JSON Schema declares 2020-12 and a property for every top-level key")
    func jsonSchemaShape() throws {
        let schema = ConfigSchema.jsonSchema
        #expect(schema["$schema"] == "https://json-schema.org/draft/2020-12/schema")
        #expect(schema["type"] == "object")
        #expect(schema["additionalProperties"] == false)
        let properties = try #require(schema["properties"]?.objectValue)
        let topLevel = try #require(ConfigSchema.root.fields).map(\.name)
        #expect(properties.keys == topLevel)
        for key in ["mcpg", "server", "plugins", "identity", "policy", "transforms", "backends", "audit", "sinks"] {
            #expect(properties[key] != nil, "no property \(key)")
            #expect(properties[key]?["description"]?.stringValue?.isEmpty == false, "\(key) has no description")
        }
        #expect(schema["required"] == ["mcpg", "plugins", "identity", "policy", "audit"])
        #expect(properties["mcpg"]?["const"] == 1)
        #expect(schema["properties"]?["server"]?["properties"]?["page_size"]?["default"] == 100)
        #expect(schema["properties"]?["log"]?["properties"]?["level"]?["enum"]?.arrayValue?.count == 7)
    }

    @Test("plugin references are one $defs entry that every chain refers to")
    func pluginRefDefinition() throws {
        let schema = ConfigSchema.jsonSchema
        let ref = try #require(schema["$defs"]?["pluginRef"])
        #expect(ref["required"] == ["plugin"])
        #expect(ref["properties"]?["plugin"]?["pattern"] == "^[a-z0-9_-]+$")
        #expect(ref["properties"]?["config"]?["type"] == "object")
        for chain in ["identity", "policy", "transforms", "sinks"] {
            #expect(schema["properties"]?[chain]?["items"]?["$ref"] == "#/$defs/pluginRef")
        }
        #expect(schema["properties"]?["identity"]?["minItems"] == 1)
        // A backend entry is a plugin reference plus how its catalog joins the gateway's.
        #expect(schema["properties"]?["backends"]?["additionalProperties"]?["$ref"] == "#/$defs/backendRef")
        let backend = try #require(schema["$defs"]?["backendRef"])
        #expect(backend["properties"]?["plugin"] == ref["properties"]?["plugin"])
        #expect(backend["properties"]?["prefix"]?["pattern"] == "^[a-z0-9_-]+$")
        #expect(backend["properties"]?["unavailable"]?["enum"] == ["start", "refuse"])
        #expect(backend["additionalProperties"] == false)
        #expect(schema["properties"]?["backends"]?["propertyNames"]?["pattern"] == "^[a-z0-9_-]+$")
    }

    @Test("every $ref in the JSON Schema resolves")
    func refsResolve() {
        let schema = ConfigSchema.jsonSchema
        var refs: [String] = []
        func walk(_ j: JSON) {
            switch j {
            case .object(let o):
                for m in o {
                    if m.key == "$ref", let s = m.value.stringValue { refs.append(s) } else { walk(m.value) }
                }
            case .array(let a): a.forEach(walk)
            default: break
            }
        }
        walk(schema)
        #expect(!refs.isEmpty)
        for r in refs {
            let name = String(r.dropFirst("#/$defs/".count))
            #expect(r.hasPrefix("#/$defs/") && schema["$defs"]?[name] != nil, "dangling \(r)")
        }
    }

    @Test("the JSON Schema serialises and parses back unchanged")
    func jsonRoundTrip() throws {
        let schema = ConfigSchema.jsonSchema
        #expect(try JSON.parse(schema.text) == schema)
    }

    @Test("docs/config.md is the current generated reference (regenerate with `mcpg config reference`)")
    func docsAreCurrent() throws {
        let path = Fixtures.packageRoot + "/docs/config.md"
        if ProcessInfo.processInfo.environment["MCPG_UPDATE_DOCS"] == "1" {
            _ = FileManager.default.createFile(atPath: path, contents: Data(ConfigSchema.markdownReference().utf8))
        }
        let onDisk = try #require(Fixtures.read(path), "docs/config.md is missing")
        let generated = ConfigSchema.markdownReference()
        #expect(onDisk == generated, "docs/config.md is stale: write `mcpg config reference` output to it")
    }

    @Test("the reference documents every key of the schema with its default")
    func referenceCoversSchema() throws {
        let text = ConfigSchema.markdownReference()
        func paths(_ fields: [SchemaField], _ prefix: String) -> [String] {
            fields.flatMap { f -> [String] in
                let p = prefix + f.name
                if case .object(let children) = f.node.kind, f.node.definitionName == nil {
                    return [p] + paths(children, p + ".")
                }
                return [p]
            }
        }
        for path in paths(try #require(ConfigSchema.root.fields), "") {
            #expect(text.contains("### `\(path)`"), "\(path) undocumented")
        }
        #expect(text.contains("### `plugin`") && text.contains("### `config`"))
        #expect(text.contains("default `127.0.0.1:8080`"))
        #expect(text.contains("default `4194304`"))
        #expect(text.contains(ConfigSchema.example))
    }

    @Test("the example in the reference is a valid config, plugin blocks included")
    func exampleIsValid() throws {
        let config = try ConfigLoader.parse(ConfigSchema.example, file: "example.yaml", directory: Fixtures.configDir)
        #expect(config.identity.count == 2)
        #expect(config.backends.map(\.name) == ["demo"])
        for (_, ref) in config.allPluginRefs {
            let schema = try #require(Fixtures.pluginSchemas[ref.plugin], "no sample schema for \(ref.plugin)")
            #expect(PluginConfigValidator.validate(ref, schema: schema, pluginName: ref.plugin).isEmpty)
        }
    }
}
