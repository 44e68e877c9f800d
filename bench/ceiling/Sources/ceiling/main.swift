#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHTTP1
import NIOPosix

// Usage: ceiling [PORT] [THREADS]. PORT 0 (default) picks a free port. Prints `listening on 127.0.0.1:PORT`
// on stdout once bound, then serves until killed.

/// The answer to every POST: a tools/call result as mcpg returns it for the mock backend's echo tool.
/// (mcpg adds the correlation id of the call's audit record under `_meta`.)
let cannedBody =
    #"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello"}],"#
    + #""_meta":{"dev.mcpg/correlationId":"459416d6ad5f05d2"}}}"#

/// Reads each request to its end, then answers it with the canned response (405 for anything but POST).
final class CannedHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let body: ByteBuffer

    init(body: ByteBuffer) { self.body = body }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else {
            if case .end = unwrapInboundIn(data) { context.flush() }
            return
        }
        let post = head.method == .POST
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "content-length", value: post ? String(body.readableBytes) : "0")
        if !head.isKeepAlive { headers.add(name: "connection", value: "close") }
        let status: HTTPResponseStatus = post ? .ok : .methodNotAllowed
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
            promise: nil)
        if post { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
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
let body = ByteBuffer(string: cannedBody)

let channel = try await ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 256)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
            try channel.pipeline.syncOperations.addHandler(CannedHandler(body: body))
        }
    }
    .bind(host: "127.0.0.1", port: port)
    .get()

print("listening on 127.0.0.1:\(channel.localAddress?.port ?? port)")
fflush(nil)  // stdout is a pipe in bench/run: the line must arrive now
try await channel.closeFuture.get()
