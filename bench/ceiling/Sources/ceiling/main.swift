#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHTTP1
import NIOPosix

// Usage: ceiling [PORT] [THREADS]. PORT 0 (default) picks a free port. Prints `listening on 127.0.0.1:PORT`
// on stdout once bound, then serves until killed.

/// A minimal MCP server over Streamable HTTP with canned answers: `initialize` (with a session id), 202 for
/// notifications, `tools/list` with one tool, and for anything else a tools/call result as mcpg returns it for the
/// mock backend's echo tool (mcpg adds the correlation id of the call's audit record under `_meta`). Answers carry
/// the request's own id, so it serves real MCP clients (the `mcp` backend) as well as wrk.
func answer(id: Substring, method: Substring) -> String? {
    switch method {
    case "initialize":
        return #"{"jsonrpc":"2.0","id":"# + id + #","result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"#
            + #""serverInfo":{"name":"ceiling","version":"1"}}}"#
    case "tools/list":
        return #"{"jsonrpc":"2.0","id":"# + id + #","result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}}]}}"#
    default:
        if method.hasPrefix("notifications/") { return nil }
        return #"{"jsonrpc":"2.0","id":"# + id + #","result":{"content":[{"type":"text","text":"hello"}],"#
            + #""_meta":{"dev.mcpg/correlationId":"459416d6ad5f05d2"}}}"#
    }
}

/// The raw JSON text after `"key":` up to the next `,` or `}` (ids and method names; no full parse).
func member(_ key: String, in body: [UInt8]) -> Substring? {
    let needle = Array("\"\(key)\":".utf8)
    guard body.count >= needle.count else { return nil }
    for start in 0...(body.count - needle.count) where body[start..<start + needle.count].elementsEqual(needle) {
        var i = start + needle.count
        while i < body.count, body[i] == 0x20 { i += 1 }
        var j = i
        while j < body.count, body[j] != UInt8(ascii: ","), body[j] != UInt8(ascii: "}") { j += 1 }
        var value = String(decoding: body[i..<j], as: UTF8.self)[...]
        if value.first == "\"" && value.last == "\"" && key == "method" { value = value.dropFirst().dropLast() }
        return value
    }
    return nil
}

/// Reads each request to its end, then answers it (405 for anything but POST).
final class CannedHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var head: HTTPRequestHead?
    private var body: [UInt8] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = []
        case .body(let buffer):
            body += buffer.readableBytesView
        case .end:
            guard let head else { return }
            respond(context: context, head: head)
        }
    }

    func respond(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let post = head.method == .POST
        let method = member("method", in: body) ?? ""
        let reply = post ? answer(id: member("id", in: body) ?? "1", method: method) : nil
        var headers = HTTPHeaders()
        let status: HTTPResponseStatus = !post ? .methodNotAllowed : reply == nil ? .accepted : .ok
        if let reply {
            headers.add(name: "content-type", value: "application/json")
            headers.add(name: "content-length", value: String(reply.utf8.count))
            if method == "initialize" { headers.add(name: "mcp-session-id", value: "ceiling-session") }
        } else {
            headers.add(name: "content-length", value: "0")
        }
        if !head.isKeepAlive { headers.add(name: "connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
            promise: nil)
        if let reply { context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: reply)))), promise: nil) }
        let keepAlive = head.isKeepAlive
        // The future completes on this event loop, so the handler context may be used in the callback.
        context.write(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            if !keepAlive { context.close(promise: nil) }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }
}

let args = CommandLine.arguments
let port = args.count > 1 ? Int(args[1]) ?? 0 : 0
let threads = args.count > 2 ? Int(args[2]) ?? System.coreCount : System.coreCount
let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)

let channel = try await ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 256)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
            try channel.pipeline.syncOperations.addHandler(CannedHandler())
        }
    }
    .bind(host: "127.0.0.1", port: port)
    .get()

print("listening on 127.0.0.1:\(channel.localAddress?.port ?? port)")
fflush(nil)  // stdout is a pipe in bench/run: the line must arrive now
try await channel.closeFuture.get()
