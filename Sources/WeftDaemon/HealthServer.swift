import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// `/healthz`, `/readyz` and `/metrics` over HTTP/1.1 (SwiftNIO), on an event loop of its
/// own so neither the daemon nor a crowd of clients can stall the other: any number of
/// connections at once, each closed after `idleTimeout` without a complete request, and after
/// its response. IPv4 or IPv6, on the address `--healthz-ip` names (flanneld's meaning).
public final class HealthServer: Service, Sendable {
    public typealias Responder = @Sendable (_ path: String) -> (status: Int, contentType: String, body: String)

    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    private let logger: Logger
    public let port: Int

    /// Binds at once, so a port already in use fails the daemon's start, not later.
    public init(address: String, port: Int, logger: Logger, idleTimeout: TimeAmount = .seconds(5),
                responder: @escaping Responder) throws {
        self.logger = logger
        guard (try? SocketAddress(ipAddress: address, port: 0)) != nil else {
            throw DaemonError("--healthz-ip \(address): not an IPv4 or IPv6 address")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(HealthRequestHandler(responder: responder))
                }
            }
        do {
            channel = try bootstrap.bind(host: address, port: port).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw DaemonError("cannot serve health checks on \(address):\(port): \(error); choose another --healthz-port")
        }
        self.group = group
        self.port = channel.localAddress?.port ?? port
    }

    public func run() async throws {
        await untilShutdown()
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

/// One connection: answers each GET with the responder's page, then closes; an idle
/// connection is closed.
private final class HealthRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let responder: HealthServer.Responder
    private var request: HTTPRequestHead?

    init(responder: @escaping HealthServer.Responder) {
        self.responder = responder
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let request else { return }
            self.request = nil
            let (status, contentType, body) = request.method == .GET ? responder(String(request.uri.prefix { $0 != "?" }))
                : (405, "text/plain", "only GET\n")
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: contentType)
            headers.add(name: "Content-Length", value: "\(body.utf8.count)")
            headers.add(name: "Connection", value: "close")
            let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
