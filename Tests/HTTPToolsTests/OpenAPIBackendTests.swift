import Foundation
import MCPGJSON
import PluginKit
import Testing

@testable import OpenAPIBackendCore

let fixtures = HTTPTestServer.repoRoot.appendingPathComponent("Tests/Fixtures/openapi").path

func openAPIPlugin(_ config: String) throws -> OpenAPIBackend {
    try OpenAPIBackend(
        config: try JSONDecoder().decode(OpenAPIBackend.Config.self, from: Data(config.utf8)), host: .detached)
}

func openAPIError(_ config: String) -> String? {
    do {
        _ = try openAPIPlugin(config)
        return nil
    } catch let e as PluginError {
        return e.message
    } catch {
        return "\(error)"
    }
}

/// The `openapi` backend: tools from real documents (Tests/Fixtures/openapi), calls against
/// Tests/Upstreams/openapi_api.py on 127.0.0.1.
@Suite("openapi backend")
struct OpenAPIBackendTests {
    // TOOL-2, TOOL-3, TOOL-4: names, descriptions and input schemas from the Petstore (YAML, OpenAPI 3.0).
    @Test func petstoreOperationsBecomeTools() async throws {
        let plugin = try openAPIPlugin(#"{"spec_file": "\#(fixtures)/petstore.yaml"}"#)
        let tools = try await plugin.listTools()
        #expect(tools.map { $0["name"] } == ["listPets", "createPets", "showPetById"])
        let list = tools[0]
        #expect(list["description"] == "List all pets")
        #expect(list["inputSchema"]?["properties"]?["limit"]?["type"] == "integer")
        #expect(list["inputSchema"]?["properties"]?["limit"]?["description"] == "How many items to return at one time (max 100)")
        #expect(list["inputSchema"]?["required"] == nil)
        #expect(list["annotations"]?["readOnlyHint"] == true)
        let show = tools[2]
        #expect(show["inputSchema"]?["required"] == ["petId"])
        // The 200 answer is an array (Pets): no outputSchema, whose root must be an object.
        #expect(show["outputSchema"] == nil)
    }

    @Test func largeRealDocumentsBecomeOneToolPerOperation() async throws {
        let v1 = try openAPIPlugin(#"{"spec_file": "\#(fixtures)/airflow-2.10.5-v1.yaml", "server_url": "http://127.0.0.1:1/api/v1"}"#)
        let tools = try await v1.listTools()
        #expect(tools.count == 89)
        let names = tools.compactMap { $0["name"]?.stringValue }
        #expect(Set(names).count == 89)
        #expect(names.allSatisfy { !$0.isEmpty && $0.utf8.count <= 128 })
        let byName = Dictionary(uniqueKeysWithValues: tools.map { ($0["name"]!.stringValue!, $0) })
        let patch = try #require(byName["patch_pool"])
        #expect(patch["inputSchema"]?["required"] == ["pool_name", "body"])
        #expect(patch["inputSchema"]?["properties"]?["body"]?["properties"]?["slots"]?["type"] == "integer")
        #expect(patch["inputSchema"]?["properties"]?["update_mask"]?["type"] == "array")
        #expect(byName["get_pool"]?["outputSchema"]?["properties"]?["slots"]?["type"] == "integer")

        let v2 = try openAPIPlugin(#"{"spec_file": "\#(fixtures)/airflow-core-3.3.2-v2.yaml", "server_url": "http://127.0.0.1:1"}"#)
        let v2Tools = try await v2.listTools()
        #expect(v2Tools.count == 128)
        #expect(Set(v2Tools.compactMap { $0["name"]?.stringValue }).count == 128)
        for tool in v2Tools {
            #expect(tool["inputSchema"]?["type"] == "object")
            if let out = tool["outputSchema"] { #expect(out["type"] == "object") }
        }
    }

    @Test func includeAndExcludeByNameAndTag() async throws {
        func names(_ extra: String) throws -> [String] {
            let p = try openAPIPlugin(#"{"spec_file": "\#(fixtures)/airflow-2.10.5-v1.yaml", "server_url": "http://h/api/v1", \#(extra)}"#)
            return p.owner.cache.get()!.map(\.name)
        }
        #expect(try names(#""include": ["*_pool*"]"#).sorted() == ["delete_pool", "get_pool", "get_pools", "patch_pool", "post_pool"])
        #expect(try names(#""include_tags": ["Pool"], "exclude": ["delete_*"]"#).sorted() == ["get_pool", "get_pools", "patch_pool", "post_pool"])
        #expect(try names(#""exclude_tags": ["DAG", "DAGRun", "TaskInstance"]"#).count < 89)
        #expect(try names(#""include": ["no_such_*"]"#).isEmpty)
    }

    @Test func badDocumentsAreRefusedWithTheReason() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("openapi-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func write(_ name: String, _ text: String) throws -> String {
            let path = dir.appendingPathComponent(name).path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let swagger = try write("swagger.json", #"{"swagger": "2.0", "info": {"title": "x", "version": "1"}, "paths": {}}"#)
        #expect(openAPIError(#"{"spec_file": "\#(swagger)"}"#)?.contains("Swagger 2.0 is not supported") == true)
        let broken = try write("broken.yaml", "openapi: 3.0.0\ninfo: [\n")
        #expect(openAPIError(#"{"spec_file": "\#(broken)"}"#)?.contains("not JSON or YAML") == true)
        let noInfo = try write("noinfo.yaml", "openapi: 3.0.3\npaths: {}\n")
        #expect(openAPIError(#"{"spec_file": "\#(noInfo)"}"#)?.contains("invalid OpenAPI document") == true)
        let relative = try write("relative.yaml", "openapi: 3.1.0\ninfo: {title: t, version: '1'}\nservers: [{url: /api}]\npaths: {}\n")
        #expect(openAPIError(#"{"spec_file": "\#(relative)"}"#)?.contains("set server_url") == true)
        #expect(openAPIError(#"{"spec_file": "/nonexistent/spec.yaml"}"#)?.contains("cannot read file") == true)
        #expect(openAPIError(#"{}"#)?.contains("exactly one of spec_file and spec_url") == true)
    }

    @Test func callsGoThroughTheHTTPMachinery() async throws {
        let server = try await HTTPTestServer.start(script: "Tests/Upstreams/openapi_api.py")
        let pets = try openAPIPlugin(#"{"spec_file": "\#(fixtures)/petstore.yaml", "server_url": "\#(server.base)/v1"}"#)
        func call(_ p: OpenAPIBackend, _ name: String, _ args: JSON) async throws -> JSON {
            try await PluginExport.run(p, op: "call_tool", request: ["name": .string(name), "arguments": args])
        }
        let listed = try await call(pets, "listPets", ["limit": 2])
        #expect(try JSON.parse(listed["content"]?[0]?["text"]?.stringValue ?? "").arrayValue?.count == 2)
        let shown = try await call(pets, "showPetById", ["petId": "3"])
        #expect(try JSON.parse(shown["content"]?[0]?["text"]?.stringValue ?? "")[0]?["name"] == "Nemo")
        let missing = try await call(pets, "showPetById", ["petId": "../admin"])
        #expect(missing["isError"] == true)
        #expect(missing["content"]?[0]?["text"]?.stringValue?.contains("no pet ../admin") == true)
        #expect(try await call(pets, "createPets", [:])["isError"] == nil)
        do {
            _ = try await call(pets, "listPets", ["limit": "two"])
            Issue.record("a string limit was accepted")
        } catch let e as PluginError {
            #expect(e.code == -32602)
        }

        let airflow = try openAPIPlugin(
            #"{"spec_file": "\#(fixtures)/airflow-2.10.5-v1.yaml", "server_url": "\#(server.base)/api/v1", "include_tags": ["Pool"]}"#)
        let pool = try await call(airflow, "get_pool", ["pool_name": "default pool"])
        #expect(pool["structuredContent"]?["name"] == "default pool")
        #expect(pool["structuredContent"]?["slots"] == 4)
        let patched = try await call(
            airflow, "patch_pool", ["pool_name": "p", "update_mask": ["slots", "description"], "body": ["slots": 9, "description": "d"]])
        #expect(patched["structuredContent"]?["slots"] == 9)
        #expect(patched["structuredContent"]?["echo_query"] == "update_mask=slots&update_mask=description")

        // spec_url: fetched on first use.
        let remote = try openAPIPlugin(#"{"spec_url": "\#(server.base)/spec.yaml", "server_url": "\#(server.base)/v1"}"#)
        #expect(try await remote.listTools().count == 3)
    }
}
