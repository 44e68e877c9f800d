import MCPGJSON
import Testing

@testable import MCPGConfig

@Suite struct YAMLParserTests {
    static func parse(_ text: String) -> (YAMLNode?, [ConfigDiagnostic]) {
        var diagnostics: [ConfigDiagnostic] = []
        let node = YAMLParser.parse(text, file: "t.yaml", diagnostics: &diagnostics)
        return (node, diagnostics)
    }

    @Test(
        "plain scalars resolve by YAML 1.1 rules",
        arguments: [
            ("", YAMLScalar.Value.null), ("~", .null), ("null", .null), ("NULL", .null),
            ("true", .bool(true)), ("yes", .bool(true)), ("On", .bool(true)), ("NO", .bool(false)),
            ("off", .bool(false)), ("y", .string("y")), ("n", .string("n")),
            ("0", .int(0)), ("42", .int(42)), ("-17", .int(-17)), ("+3", .int(3)), ("1_000", .int(1000)),
            ("0x1F", .int(31)), ("0b101", .int(5)), ("017", .int(15)), ("08", .string("08")),
            ("1:30", .int(90)), ("-1:00:00", .int(-3600)), ("1:60", .string("1:60")),
            ("9223372036854775807", .int(.max)), ("-9223372036854775808", .int(.min)),
            ("9223372036854775808", .string("9223372036854775808")),
            ("1.5", .float(1.5)), ("-0.25", .float(-0.25)), ("1.", .float(1)), (".5", .float(0.5)),
            ("6.02e+23", .float(6.02e23)), ("1.0e3", .float(1000)), ("1e3", .string("1e3")),
            (".inf", .float(.infinity)), ("-.Inf", .float(-.infinity)),
            ("127.0.0.1:8080", .string("127.0.0.1:8080")), ("1.2.3", .string("1.2.3")), ("RWQ", .string("RWQ")),
            ("-", .string("-")), (".", .string(".")), ("0x", .string("0x")),
        ])
    func resolve(text: String, expected: YAMLScalar.Value) {
        #expect(YAMLScalar.resolve(plain: text) == expected)
    }

    @Test("NaN resolves to a float NaN")
    func nan() {
        guard case .float(let d) = YAMLScalar.resolve(plain: ".nan") else {
            Issue.record("not a float")
            return
        }
        #expect(d.isNaN)
    }

    @Test("quoted and block scalars are strings; explicit tags apply")
    func quotedAndTagged() throws {
        let (node, diagnostics) = Self.parse(
            """
            a: "42"
            b: 'yes'
            c: |
              12
            d: !!str 7
            e: !!int "7"
            f: !!float 2
            g: !!bool maybe
            """)
        #expect(diagnostics.map(\.description) == ["t.yaml:8:4: error: \"maybe\" is not a valid !!bool"])
        let root = try #require(node)
        #expect(root["a"]?.scalar?.value == .string("42"))
        #expect(root["b"]?.scalar?.value == .string("yes"))
        #expect(root["c"]?.scalar?.value == .string("12\n"))
        #expect(root["d"]?.scalar?.value == .string("7"))
        #expect(root["e"]?.scalar?.value == .int(7))
        #expect(root["f"]?.scalar?.value == .float(2))
    }

    @Test("every node keeps its 1-based line and column")
    func locations() throws {
        let (node, diagnostics) = Self.parse(
            """
            # comment
            top:
              list:
                - one
                - { k: "v" }
              héé: [1, 2]
            """)
        #expect(diagnostics.isEmpty)
        let root = try #require(node)
        let top = try #require(root.pair(forKey: "top"))
        #expect(top.key.location == SourceLocation(file: "t.yaml", line: 2, column: 1))
        let list = try #require(top.value["list"]?.items)
        #expect(list[0].location.lineColumn == "4:7")
        #expect(list[1].location.lineColumn == "5:7")
        #expect(list[1]["k"]?.location.lineColumn == "5:12")
        // Columns count characters, not bytes.
        #expect(top.value["héé"]?.items?[1].location.lineColumn == "6:12")
    }

    @Test("a syntax error is reported with libyaml's reason and position")
    func syntaxError() {
        let (node, diagnostics) = Self.parse("a: [1, 2\nb: 3\n")
        #expect(node == nil)
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.message.hasPrefix("YAML syntax error: ") == true)
    }

    @Test("nesting deeper than the limit is refused, not a stack overflow")
    func deepNesting() {
        let depth = YAMLParser.maxDepth + 10
        let text = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        let (_, diagnostics) = Self.parse(text)
        #expect(diagnostics.map(\.message) == ["nesting deeper than \(YAMLParser.maxDepth) levels"])
    }

    @Test("YAML converts to JSON; duplicates and non-finite numbers are reported")
    func toJSON() throws {
        let (node, _) = Self.parse("a: 1\nb: [x, 2.5, ~, true]\na: 2\nc: .inf\n? [k]\n: v\n")
        var diagnostics: [ConfigDiagnostic] = []
        let json = try #require(node).json(context: "ctx: ", diagnostics: &diagnostics)
        #expect(json == ["a": 1, "b": ["x", 2.5, nil, true], "c": nil])
        #expect(
            diagnostics.map(\.description) == [
                "t.yaml:3:1: error: ctx: duplicate key \"a\" (first defined at 1:1)",
                "t.yaml:4:4: error: ctx: .inf cannot be represented in JSON",
                "t.yaml:5:3: error: ctx: a key must be a scalar, found a sequence",
            ])
    }
}

/// Plugins point at the value their config problem is about with a JSON pointer; the diagnostic lands there.
@Suite struct PointerTests {
    @Test func pointersNameNodesAndPlaceMessages() throws {
        let (node, diagnostics) = YAMLParserTests.parse("""
            tools:
              - name: a
                steps:
                  - call: x
                  - { set: { v: 1 } }
              - name: "b/c~d"
            "b/c~d": 3
            """)
        #expect(diagnostics.isEmpty)
        let root = try #require(node)
        #expect(root.node(atPointer: "/tools/0/steps/1/set/v")?.location.line == 5)
        #expect(root.node(atPointer: "/tools/0/steps/0/call")?.location.line == 4)
        #expect(root.node(atPointer: "/b~1c~0d")?.location.line == 7)
        #expect(root.node(atPointer: "/tools/2") == nil)
        #expect(root.node(atPointer: "/tools/x") == nil)
        #expect(root.node(atPointer: "")?.location.line == 1)

        let ref = PluginRef(plugin: "pipeline", config: [:], location: SourceLocation(file: "t.yaml", line: 20, column: 3),
                            pluginLocation: SourceLocation(file: "t.yaml", line: 20, column: 11), configNode: root, path: "backends.p")
        let placed = ref.configDiagnostic(pluginMessage: "/tools/0/steps/0/call: no tool \"x\"", prefix: "p: ")
        #expect(placed.location.line == 4)
        #expect(placed.message == "p: /tools/0/steps/0/call: no tool \"x\"")
        // No pointer, or one that names nothing: at the config block.
        #expect(ref.configDiagnostic(pluginMessage: "bad", prefix: "").location.line == 1)
        #expect(ref.configDiagnostic(pluginMessage: "/nope/3: bad", prefix: "").location.line == 1)
    }
}
