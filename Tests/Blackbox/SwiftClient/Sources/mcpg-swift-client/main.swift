// mcpg-swift-client URL [KEY]
//
// Connects to an MCP server over Streamable HTTP with the official Swift SDK, lists the tools (following every
// cursor), calls `echo {"message":"hi from swift"}` and `admin_reset {}`, and prints one JSON summary on stdout.
// With KEY it sends `Authorization: Bearer KEY` on every request. Exit 0 when the summary was printed (a failed
// tool call is part of the summary, not a failure of the program), 1 when connecting or listing failed, 2 on
// usage errors. Diagnostics go to stderr.
import Foundation
import MCP

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// What the black-box test reads from stdout.
struct Summary: Encodable {
    /// One tools/call outcome: either a result or the JSON-RPC error the SDK reported.
    struct Call: Encodable {
        var ok: Bool
        var text: String?
        var isError: Bool?
        var correlationId: String?
        var errorCode: Int?
        var errorMessage: String?
    }

    var serverName: String
    var serverVersion: String
    var protocolVersion: String
    var tools: [String]
    var pages: Int
    var echo: Call
    var adminReset: Call
}

/// Calls one tool and turns the outcome into a summary entry.
func call(_ client: Client, _ name: String, _ arguments: [String: Value]) async -> Summary.Call {
    do {
        let context: RequestContext<CallTool.Result> = try await client.callTool(name: name, arguments: arguments)
        let result = try await context.value
        var texts: [String] = []
        for item in result.content {
            if case .text(let text, _, _) = item { texts.append(text) }
        }
        return Summary.Call(
            ok: true,
            text: texts.joined(separator: "\n"),
            isError: result.isError,
            correlationId: result._meta?["dev.mcpg/correlationId"]?.stringValue)
    } catch let error as MCPError {
        return Summary.Call(ok: false, errorCode: error.code, errorMessage: error.errorDescription ?? "\(error)")
    } catch {
        return Summary.Call(ok: false, errorMessage: "\(error)")
    }
}

func fail(_ message: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data("mcpg-swift-client: \(message)\n".utf8))
    exit(code)
}

let arguments = CommandLine.arguments
guard arguments.count == 2 || arguments.count == 3, let endpoint = URL(string: arguments[1]) else {
    fail("usage: mcpg-swift-client URL [KEY]", code: 2)
}
let key = arguments.count == 3 ? arguments[2] : nil

// SSE streaming is not supported by the SDK's URLSession transport on Linux; plain POST request/response is.
let transport = HTTPClientTransport(
    endpoint: endpoint,
    streaming: false,
    requestModifier: { request in
        guard let key else { return request }
        var request = request
        request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization")
        return request
    })
let client = Client(name: "mcpg-swift-client", version: "1.0.0")

do {
    let initialized = try await client.connect(transport: transport)
    var tools: [String] = []
    var pages = 0
    var cursor: String? = nil
    repeat {
        let page = try await client.listTools(cursor: cursor)
        tools += page.tools.map(\.name)
        cursor = page.nextCursor
        pages += 1
    } while cursor != nil && pages < 100
    let echo = await call(client, "echo", ["message": "hi from swift"])
    let reset = await call(client, "admin_reset", [:])
    let summary = Summary(
        serverName: initialized.serverInfo.name,
        serverVersion: initialized.serverInfo.version,
        protocolVersion: initialized.protocolVersion,
        tools: tools,
        pages: pages,
        echo: echo,
        adminReset: reset)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    FileHandle.standardOutput.write(try encoder.encode(summary) + Data("\n".utf8))
    await client.disconnect()
} catch {
    fail("\(error)")
}
