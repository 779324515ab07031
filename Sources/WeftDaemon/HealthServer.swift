import Foundation
import Glibc
import Logging
import ServiceLifecycle

/// `/healthz`, `/readyz` and `/metrics` over plain HTTP/1.1, one short request per
/// connection, served from a thread of its own so a slow scraper never blocks the daemon.
public final class HealthServer: Service, @unchecked Sendable {
    public typealias Responder = @Sendable (_ path: String) -> (status: Int, contentType: String, body: String)

    private let descriptor: Int32
    private let responder: Responder
    private let logger: Logger
    public let port: Int

    /// Binds at once, so a port already in use fails the daemon's start, not later.
    public init(address: String, port: Int, logger: Logger, responder: @escaping Responder) throws {
        self.responder = responder
        self.logger = logger
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw DaemonError("cannot open the health socket: \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, address, &socketAddress.sin_addr) == 1 else {
            close(descriptor)
            throw DaemonError("--healthz-ip \(address): not an IPv4 address")
        }
        let bound = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(descriptor, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw DaemonError("cannot serve health checks on \(address):\(port): \(reason); choose another --healthz-port")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        self.descriptor = descriptor
        self.port = Int(UInt16(bigEndian: actual.sin_port))
    }

    deinit { close(descriptor) }

    public func run() async throws {
        let thread = Thread { [self] in serve() }
        thread.start()
        await untilShutdown()
        shutdown(descriptor, Int32(SHUT_RDWR))
    }

    private func serve() {
        while true {
            let client = accept(descriptor, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(client, &buffer, buffer.count, 0)
            let request = count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : ""
            let parts = request.split(separator: " ", maxSplits: 2)
            let path = parts.count >= 2 && parts[0] == "GET" ? String(parts[1]) : ""
            let (status, contentType, body) = path.isEmpty ? (405, "text/plain", "only GET\n") : responder(path)
            let reason = [200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"][status] ?? "OK"
            let response = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
            _ = response.withCString { send(client, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            close(client)
        }
    }
}
