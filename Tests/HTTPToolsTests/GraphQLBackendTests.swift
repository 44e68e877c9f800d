import Foundation
import MCPGJSON
import PluginKit
import Testing

@testable import GraphQLBackendCore

func graphQLPlugin(_ config: String) throws -> GraphQLBackend {
    try GraphQLBackend(
        config: try JSONDecoder().decode(GraphQLBackend.Config.self, from: Data(config.utf8)), host: .detached)
}

func call(_ plugin: GraphQLBackend, _ name: String, _ arguments: JSON) async throws -> JSON {
    try await PluginExport.run(plugin, op: "call_tool", request: ["name": .string(name), "arguments": arguments])
}

/// The `graphql` backend against Tests/Upstreams/graphql_api.py (graphql-core) on 127.0.0.1.
@Suite("graphql backend against a local GraphQL server")
struct GraphQLBackendTests {
    static func server() async throws -> HTTPTestServer {
        try await HTTPTestServer.start(["--token", "gql-secret-token"], script: "Tests/Upstreams/graphql_api.py")
    }

    @Test func variableDefinitionsBecomeTheInputSchema() throws {
        let vars = try GraphQLVariable.parse(
            "query Q($id: ID!, $n: Int = 3, $tags: [String!]!, $f: Float, $in: BookInput!) { x }")
        #expect(vars.map(\.name) == ["id", "n", "tags", "f", "in"])
        #expect(vars.map(\.required) == [true, false, true, false, true])
        #expect(vars[2].schema == ["type": "array", "items": ["type": "string"]])
        #expect(vars[3].schema == ["type": "number"])
        #expect(vars[4].schema == [:])
        #expect(try GraphQLVariable.parse("{ hello }").isEmpty)
        #expect(throws: (any Error).self) { try GraphQLVariable.parse("query Q($id: ID!") }
    }

    @Test func configuredOperationsRunWithVariablesAndReportErrors() async throws {
        let server = try await Self.server()
        setenv("GRAPHQL_TEST_TOKEN", "gql-secret-token", 1)
        let plugin = try graphQLPlugin(
            #"""
            {"endpoint": "\#(server.base)/graphql", "auth": {"type": "bearer", "token_env": "GRAPHQL_TEST_TOKEN"},
             "operations": [
               {"name": "book", "description": "One book", "query": "query Book($id: ID!) { book(id: $id) { id title author { name } } }"},
               {"name": "hello", "query": "query($name: String) { hello(name: $name) }",
                "outputSchema": {"type": "object", "properties": {"hello": {"type": "string"}}, "required": ["hello"]}},
               {"name": "add", "query": "mutation Add($input: BookInput!) { addBook(input: $input) { id title genre } }",
                "variables": {"input": {"type": "object", "required": ["title", "genre"]}}}
             ]}
            """#)
        let tools = try await plugin.listTools()
        #expect(tools.map { $0["name"] } == ["book", "hello", "add"])
        #expect(tools[0]["inputSchema"] == ["type": "object", "properties": ["id": ["type": "string"]], "required": ["id"], "additionalProperties": false])
        #expect(tools[1]["outputSchema"]?["required"] == ["hello"])

        let book = try await call(plugin, "book", ["id": "1"])
        #expect(book["isError"] == nil)
        #expect(book["structuredContent"] == ["book": ["id": "1", "title": "Dune", "author": ["name": "Ada"]]])
        #expect(try await call(plugin, "hello", ["name": "mcp"])["structuredContent"] == ["hello": "hello mcp"])

        let missing = try await call(plugin, "book", ["id": "99"])
        #expect(missing["isError"] == true)
        #expect(missing["content"]?[0]?["text"] == "GraphQL errors: no book with id 99 (at book)")

        let added = try await call(plugin, "add", ["input": ["title": "Solaris", "genre": "FICTION"]])
        #expect(added["structuredContent"]?["addBook"]?["title"] == "Solaris")
        let badEnum = try await call(plugin, "add", ["input": ["title": "X", "genre": "POETRY"]])
        #expect(badEnum["isError"] == true)
        #expect(badEnum["content"]?[0]?["text"]?.stringValue?.contains("POETRY") == true)

        do {
            _ = try await call(plugin, "book", [:])
            Issue.record("missing variable accepted")
        } catch let e as PluginError {
            #expect(e.code == -32602 && e.message.contains("\"id\""))
        }
    }

    @Test func wrongCredentialsAreAToolErrorWithoutTheSecret() async throws {
        let server = try await Self.server()
        setenv("GRAPHQL_TEST_BAD_TOKEN", "not-the-token-123", 1)
        let plugin = try graphQLPlugin(
            #"""
            {"endpoint": "\#(server.base)/graphql", "auth": {"type": "bearer", "token_env": "GRAPHQL_TEST_BAD_TOKEN"},
             "operations": [{"name": "hello", "query": "{ hello }"}]}
            """#)
        let r = try await call(plugin, "hello", [:])
        #expect(r["isError"] == true)
        #expect(r["content"]?[0]?["text"] == "GraphQL errors: unauthorized")
    }

    @Test func introspectionMakesOneToolPerQueryAndMutationField() async throws {
        let server = try await Self.server()
        setenv("GRAPHQL_TEST_TOKEN", "gql-secret-token", 1)
        let plugin = try graphQLPlugin(
            #"""
            {"endpoint": "\#(server.base)/graphql", "auth": {"type": "bearer", "token_env": "GRAPHQL_TEST_TOKEN"},
             "introspect": true, "exclude": ["hel*"]}
            """#)
        let tools = try await plugin.listTools()
        let byName = Dictionary(uniqueKeysWithValues: tools.map { ($0["name"]!.stringValue!, $0) })
        #expect(Set(byName.keys) == ["book", "books", "addBook"])
        #expect(byName["book"]?["description"] == "One book by id.")
        #expect(byName["book"]?["inputSchema"]?["required"] == ["id"])
        #expect(byName["books"]?["inputSchema"]?["properties"]?["genre"] == ["type": "string", "enum": ["FICTION", "SCIENCE"]])
        #expect(byName["books"]?["inputSchema"]?["required"] == nil)
        let input = byName["addBook"]?["inputSchema"]?["properties"]?["input"]
        #expect(input?["required"] == ["title", "genre"])
        #expect(input?["properties"]?["year"] == ["type": "integer"])

        let books = try await call(plugin, "books", ["genre": "SCIENCE"])
        let list = try #require(books["structuredContent"]?["books"]?.arrayValue)
        #expect(list.count == 1)
        #expect(list[0]["title"] == "Cosmos")
        // Depth 2: the author's scalar fields are selected, the author's books (a third level) are not.
        #expect(list[0]["author"] == ["name": "Ada"])
        let added = try await call(plugin, "addBook", ["input": ["title": "Ubik", "genre": "FICTION", "year": 1969]])
        #expect(added["structuredContent"]?["addBook"]?["year"] == 1969)
        do {
            _ = try await call(plugin, "books", ["genre": "POETRY"])
            Issue.record("a value outside the enum was accepted")
        } catch let e as PluginError {
            #expect(e.code == -32602)
        }
    }

    @Test func unreachableIntrospectionFailsTheListAndBadConfigIsRefused() async throws {
        let server = try await Self.server()
        let port = server.port
        server.stop()
        let plugin = try graphQLPlugin(#"{"endpoint": "http://127.0.0.1:\#(port)/graphql", "introspect": true, "retries": 0}"#)
        await #expect(throws: PluginError.self) { _ = try await plugin.listTools() }
        #expect(throws: PluginError.self) { _ = try graphQLPlugin(#"{"endpoint": "http://h/graphql"}"#) }
        #expect(throws: PluginError.self) { _ = try graphQLPlugin(#"{"endpoint": "ftp://h/", "introspect": true}"#) }
        #expect(throws: PluginError.self) {
            _ = try graphQLPlugin(#"{"endpoint": "http://h/", "operations": [{"name": "a", "query": "{ a }", "variables": {"x": {}}}]}"#)
        }
    }
}
