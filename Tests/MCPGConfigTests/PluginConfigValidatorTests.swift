import MCPGConfig
import MCPGJSON
import Testing

@Suite struct PluginConfigValidatorTests {
    /// Parses a config whose only identity entry is `entry` (YAML lines at indent 4) and validates it.
    static func problems(_ entry: String, schema: JSON) throws -> [String] {
        let text = """
            mcpg: 1
            plugins: { trusted_keys: [./keys/plugins.pub] }
            policy: [{ plugin: rules }]
            audit: { ledger: ./l, signing_key: ./keys/audit.key }
            identity:
              - plugin: p
            \(entry)
            """
        let config = try ConfigLoader.parse(text, file: "c.yaml", directory: Fixtures.configDir)
        return PluginConfigValidator.validate(config.identity[0], schema: schema, pluginName: "p").map(\.description)
    }

    @Test("an absent config block is validated as {} and reported at the entry")
    func absentBlock() throws {
        let p = try Self.problems("", schema: ["type": "object", "required": ["url"]])
        #expect(p == ["c.yaml:6:5: error: plugin \"p\" config: missing required key \"url\""])
    }

    @Test("a schema that allows anything, and one that forbids everything")
    func booleanSchemas() throws {
        #expect(try Self.problems("    config: { a: 1 }", schema: true).isEmpty)
        let found = try Self.problems("    config: { a: 1 }", schema: ["type": "object", "properties": ["a": false]])
        #expect(found == ["c.yaml:7:18: error: plugin \"p\" config: no value is allowed here"])
    }

    @Test("additionalProperties as a schema checks the extra values")
    func additionalSchema() throws {
        let schema: JSON = ["type": "object", "additionalProperties": ["type": "integer"]]
        let found = try Self.problems("    config: { a: 1, b: x }", schema: schema)
        #expect(found == ["c.yaml:7:24: error: plugin \"p\" config: expected an integer, found a string"])
    }

    @Test("patternProperties and $ref into definitions")
    func patternsAndRefs() throws {
        let schema: JSON = [
            "type": "object", "additionalProperties": false,
            "patternProperties": ["^x-": ["$ref": "#/definitions/port"]],
            "definitions": ["port": ["type": "integer", "minimum": 1, "maximum": 65535]],
        ]
        let found = try Self.problems("    config: { x-a: 80, x-b: 0, y: 1 }", schema: schema)
        #expect(
            found == [
                "c.yaml:7:29: error: plugin \"p\" config: must be at least 1, found 0",
                "c.yaml:7:32: error: plugin \"p\" config: unknown key \"y\"",
            ])
    }

    @Test("a schema with a bad pattern or a dangling $ref is reported at the plugin name, once")
    func badSchema() throws {
        let schema: JSON = [
            "type": "object",
            "properties": ["a": ["pattern": "(unclosed"], "b": ["pattern": "(unclosed"], "c": ["$ref": "#/nope"]],
        ]
        let p = try Self.problems("    config: { a: x, b: y, c: z }", schema: schema)
        let prefix = "c.yaml:6:13: error: plugin \"p\" config: the plugin's schema is invalid: "
        #expect(
            p == [
                prefix + "the pattern \"(unclosed\" is not a valid regular expression",
                prefix + "cannot resolve $ref \"#/nope\"",
            ])
    }

    @Test("a cyclic $ref stops at the depth limit instead of recursing forever")
    func cyclicRef() throws {
        let schema: JSON = ["$ref": "#"]
        let p = try Self.problems("    config: { a: 1 }", schema: schema)
        #expect(p.count == 1)
        #expect(p.first?.contains("nesting deeper than") == true)
    }

    @Test("anyOf passes when one branch fits; lists constants when none does")
    func anyOf() throws {
        let schema: JSON = [
            "type": "object",
            "properties": [
                "mode": ["anyOf": [["const": "fast"], ["const": "safe"]]],
                "n": ["anyOf": [["type": "integer"], ["type": "string", "maxLength": 2]]],
            ],
        ]
        #expect(try Self.problems("    config: { mode: safe, n: 3 }", schema: schema).isEmpty)
        let found = try Self.problems("    config: { mode: quick, n: abc }", schema: schema)
        #expect(
            found == [
                "c.yaml:7:21: error: plugin \"p\" config: invalid value; expected one of: fast, safe",
                "c.yaml:7:31: error: plugin \"p\" config: must be at most 2 characters long",
            ])
    }

    @Test("string values are never echoed in messages (they may be secrets)")
    func noEcho() throws {
        let schema: JSON = ["type": "object", "properties": ["token": ["type": "string", "pattern": "^tok_"]]]
        let p = try Self.problems("    config: { token: sk-secret-value }", schema: schema)
        #expect(p.count == 1)
        #expect(p.allSatisfy { !$0.contains("sk-secret-value") })
    }

    @Test("integers written as 2.0 count as integers; 1 equals 1.0 in enum and const")
    func numbers() throws {
        let schema: JSON = [
            "type": "object",
            "properties": ["a": ["type": "integer"], "b": ["enum": [1, 2]], "c": ["const": 2.0]],
        ]
        #expect(try Self.problems("    config: { a: 2.0, b: 1.0, c: 2 }", schema: schema).isEmpty)
    }
}
