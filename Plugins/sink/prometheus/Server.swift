import NIOCore
import NIOHTTP1
import NIOPosix

/// The scrape endpoint: HTTP/1.1 on its own one-thread event loop group. `GET` (or `HEAD`) on `path` answers the
/// text that `render` returns; any other path is 404, another method on `path` 405.
final class ScrapeServer: Sendable {
    let group: MultiThreadedEventLoopGroup
    let channel: any Channel

    /// Binds `host:port` before returning.
    /// - Throws: `PluginError`-ready text when the address does not parse or cannot be bound (e.g. in use).
    init(host: String, port: Int, path: String, render: @escaping @Sendable () -> String) throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.pipeline.addHandler(ScrapeHandler(path: path, render: render))
                }
            }
            .childChannelOption(.maxMessagesPerRead, value: 1)
        do {
            channel = try bootstrap.bind(host: host, port: port).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
        self.group = group
    }

    /// The bound port (useful when the config asked for port 0).
    var port: Int { channel.localAddress?.port ?? 0 }

    deinit {
        channel.close(promise: nil)
        group.shutdownGracefully { _ in }
    }
}

/// Answers one scrape per request; keeps the connection open when the client asks for keep-alive.
final class ScrapeHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: used only on its channel's event loop.
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let path: String
    let render: @Sendable () -> String
    private var head: HTTPRequestHead?

    init(path: String, render: @escaping @Sendable () -> String) {
        self.path = path
        self.render = render
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let h = head else { return }
            head = nil
            respond(context: context, request: h)
        }
    }

    private func respond(context: ChannelHandlerContext, request: HTTPRequestHead) {
        let target = request.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        var status = HTTPResponseStatus.ok
        var body = ""
        var headers = HTTPHeaders()
        if target != path {
            status = .notFound
            body = "not found; metrics are at \(path)\n"
        } else if request.method != .GET && request.method != .HEAD {
            status = .methodNotAllowed
            body = "method not allowed\n"
            headers.add(name: "allow", value: "GET, HEAD")
        } else {
            body = render()
        }
        let bytes = context.channel.allocator.buffer(string: body)
        headers.add(
            name: "content-type",
            value: status == .ok ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8")
        headers.add(name: "content-length", value: String(bytes.readableBytes))
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))),
                      promise: nil)
        if request.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(bytes))), promise: nil) }
        let done = context.writeAndFlushPromise()
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        if !keepAlive {
            let channel = context.channel
            done.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

extension ChannelHandlerContext {
    fileprivate func writeAndFlushPromise() -> EventLoopPromise<Void> { eventLoop.makePromise() }
}
