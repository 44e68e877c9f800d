import MCPGJSON
import Testing

@testable import RegoEngine

private func loadError(_ text: String) -> RegoError? {
    do {
        _ = try RegoPolicy(modules: [(name: "p.rego", text: text)])
        return nil
    } catch {
        return error
    }
}

@Test func parseErrorNamesFileLineAndColumn() {
    let e = loadError("package t\nimport rego.v1\n\nallow if {\n    input.x ==\n}\n")
    #expect(e?.file == "p.rego")
    #expect(e?.pos == SourcePos(line: 5, col: 15))
    #expect(e?.message == "unexpected end of line")
}

@Test func unsupportedConstructsAreNamed() {
    let head = loadError("package t\nimport rego.v1\na.b.c := 1\n")
    #expect(head?.pos == SourcePos(line: 3, col: 1))
    #expect(head?.message.hasPrefix("unsupported: rule head with a dotted name") == true)
    let imp = loadError("package t\nimport rego.v1\nimport foo.bar\n")
    #expect(imp?.message == "unsupported: import of foo.bar")
    #expect(imp?.pos == SourcePos(line: 3, col: 1))
    let fn = loadError("package t\nimport rego.v1\nx := http.send({})\n")
    #expect(fn?.message == "unsupported: unknown function http.send")
    #expect(fn?.pos == SourcePos(line: 3, col: 6))
    let with = loadError("package t\nimport rego.v1\nf(x) := 1\nx if { f(1) with f as 2 }\n")
    #expect(with?.message.hasPrefix("unsupported: `with`") == true)
}

@Test func unsafeVariableIsALoadError() {
    let e = loadError("package t\nimport rego.v1\nx := y\n")
    #expect(e?.message == "var y is unsafe")
    #expect(e?.pos == SourcePos(line: 3, col: 1))
    let inBody = loadError("package t\nimport rego.v1\nx if {\n    z > 1\n}\n")
    #expect(inBody?.message == "var z is unsafe")
    #expect(inBody?.pos == SourcePos(line: 4, col: 5))
}

@Test func lexerErrorsHavePositions() {
    #expect(loadError("package t\nx := \"open\n")?.pos == SourcePos(line: 2, col: 6))
    #expect(loadError("package t\nx := 1 ^ 2\n")?.pos == SourcePos(line: 2, col: 8))
}

@Test func wrongArityIsALoadError() {
    let e = loadError("package t\nimport rego.v1\nx := count(1, 2)\n")
    #expect(e?.message == "count: expects 1 arguments, got 2")
}
