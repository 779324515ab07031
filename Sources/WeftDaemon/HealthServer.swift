import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// `/healthz`, `/readyz` and `/metrics` over HTTP/1.1 (SwiftNIO), on an event loop of its
/// own so neither the daemon nor a crowd of clients can stall the other. A client gets
/// `requestTimeout` for its whole request, however slowly it trickles in, and none at all
/// beyond `maxConnections` open at once (closed as soon as accepted): the descriptors a
/// client can hold are bounded, whatever it does. Each connection is also closed after
/// `idleTimeout` without a byte, and after its response. IPv4 or IPv6, on the address
/// `--healthz-ip` names (flanneld's meaning).
public final class HealthServer: Service, Sendable {
    public typealias Responder = @Sendable (_ path: String) -> (status: Int, contentType: String, body: String)

    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    private let logger: Logger
    public let port: Int

    /// Binds at once, so a port already in use fails the daemon's start, not later.
    public init(address: String, port: Int, logger: Logger, idleTimeout: TimeAmount = .seconds(5),
                requestTimeout: TimeAmount = .seconds(5), maxConnections: Int = 256, responder: @escaping Responder) throws {
        self.logger = logger
        guard (try? SocketAddress(ipAddress: address, port: 0)) != nil else {
            throw DaemonError("--healthz-ip \(address): not an IPv4 or IPv6 address")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let open = OpenConnections(limit: maxConnections)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                guard open.admit(channel) else { return channel.close() }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(HealthRequestHandler(responder: responder, requestTimeout: requestTimeout))
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

/// The connections open now: past the limit, a new one is refused.
private final class OpenConnections: Sendable {
    private let count = Mutex(0)
    private let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    /// Counts the connection in until it closes; false when the limit is reached.
    func admit(_ channel: any Channel) -> Bool {
        let admitted = count.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
        if admitted { channel.closeFuture.whenComplete { _ in self.count.withLock { $0 -= 1 } } }
        return admitted
    }
}

/// One connection: answers each GET with the responder's page, then closes; an idle
/// connection, or one whose request is not complete by its deadline, is closed.
private final class HealthRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let responder: HealthServer.Responder
    private let requestTimeout: TimeAmount
    private var request: HTTPRequestHead?
    private var deadline: Scheduled<Void>?

    init(responder: @escaping HealthServer.Responder, requestTimeout: TimeAmount) {
        self.responder = responder
        self.requestTimeout = requestTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: requestTimeout) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
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
