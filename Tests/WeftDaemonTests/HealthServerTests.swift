import Foundation
import Glibc
import Logging
import Testing
import WeftDaemon
import WeftTestSupport

/// The health server as a crowd of clients, idle and slow ones among them, meets it.
@Suite("The health and metrics server")
struct HealthServerTests {
    static func serve(_ address: String, idle: Int64 = 5, requestTimeout: Int64 = 5, maxConnections: Int = 256) throws -> (HealthServer, Task<Void, any Error>) {
        let server = try HealthServer(address: address, port: 0, logger: Logger(label: "test"), idleTimeout: .seconds(idle),
                                      requestTimeout: .seconds(requestTimeout), maxConnections: maxConnections) { path in
            path == "/healthz" ? (200, "text/plain", "ok\n") : (404, "text/plain", "no such page\n")
        }
        return (server, Task { try await server.run() })
    }

    /// A TCP connection of the test's own, to `address` (IPv4 or IPv6) and `port`.
    final class Client {
        let descriptor: Int32

        init(_ address: String, _ port: Int) throws {
            let six = address.contains(":")
            descriptor = socket(six ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var timeout = timeval(tv_sec: 3, tv_usec: 0)
            setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let connected: Int32
            if six {
                var target = sockaddr_in6()
                target.sin6_family = sa_family_t(AF_INET6)
                target.sin6_port = in_port_t(UInt16(port).bigEndian)
                inet_pton(AF_INET6, address, &target.sin6_addr)
                connected = withUnsafePointer(to: &target) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
                }
            } else {
                var target = sockaddr_in()
                target.sin_family = sa_family_t(AF_INET)
                target.sin_port = in_port_t(UInt16(port).bigEndian)
                inet_pton(AF_INET, address, &target.sin_addr)
                connected = withUnsafePointer(to: &target) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
            }
            guard descriptor >= 0, connected == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        }

        deinit { close(descriptor) }

        func send(_ text: String) {
            _ = text.withCString { Glibc.send(descriptor, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        }

        /// Everything until the server closes (or 3 s pass).
        func receiveAll() -> String {
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = recv(descriptor, &buffer, buffer.count, 0)
                guard count > 0 else { break }
                received += buffer.prefix(count)
            }
            return String(decoding: received, as: UTF8.self)
        }

        func get(_ path: String) -> String {
            send("GET \(path) HTTP/1.1\r\nHost: test\r\n\r\n")
            return receiveAll()
        }
    }

    @Test("200 idle connections: /healthz still answers within a second")
    func manyIdleClients() throws {
        let (server, task) = try Self.serve("127.0.0.1")
        defer { task.cancel() }
        let idle = try (0..<200).map { _ in try Client("127.0.0.1", server.port) }
        let start = ContinuousClock.now
        let response = try Client("127.0.0.1", server.port).get("/healthz")
        let elapsed = ContinuousClock.now - start
        #expect(response.hasPrefix("HTTP/1.1 200 OK"), "\(response)")
        #expect(response.hasSuffix("\r\n\r\nok\n"))
        #expect(elapsed < .seconds(1), "\(elapsed)")
        #expect(try Client("127.0.0.1", server.port).get("/nope").hasPrefix("HTTP/1.1 404"))
        withExtendedLifetime(idle) {}
    }

    @Test("An idle client and a slow one are closed after the idle timeout")
    func idleAndSlowClientsAreClosed() throws {
        let (server, task) = try Self.serve("127.0.0.1", idle: 1)
        defer { task.cancel() }
        let idle = try Client("127.0.0.1", server.port)
        let slow = try Client("127.0.0.1", server.port)
        slow.send("GET /heal")
        let start = ContinuousClock.now
        #expect(idle.receiveAll().isEmpty)
        #expect(slow.receiveAll().isEmpty)
        let elapsed = ContinuousClock.now - start
        #expect(elapsed < .milliseconds(2500), "closed after the 1 s idle timeout, not the client's 3 s one: \(elapsed)")
    }

    @Test("A client that trickles its request a byte at a time, each within the idle timeout, is closed at the request's deadline")
    func aTricklingClientIsClosedAtTheDeadline() throws {
        let (server, task) = try Self.serve("127.0.0.1", idle: 2, requestTimeout: 1)
        defer { task.cancel() }
        let slow = try Client("127.0.0.1", server.port)
        let start = ContinuousClock.now
        var closed = false
        for byte in "GET /healthz HTTP/1.1\r\nHost: test\r\n" {
            slow.send(String(byte))
            Thread.sleep(forTimeInterval: 0.25)
            var probe: UInt8 = 0
            if recv(slow.descriptor, &probe, 1, Int32(MSG_DONTWAIT)) == 0 { closed = true; break }
        }
        let elapsed = ContinuousClock.now - start
        #expect(closed, "still open after \(elapsed)")
        #expect(elapsed < .milliseconds(2000), "closed at the 1 s deadline, though every byte came within the 2 s idle timeout: \(elapsed)")
    }

    @Test("Past the connection limit a client is closed at once; the server answers again once connections free up")
    func connectionsPastTheLimitAreRefused() throws {
        let (server, task) = try Self.serve("127.0.0.1", idle: 1, requestTimeout: 1, maxConnections: 8)
        defer { task.cancel() }
        let held = try (0..<8).map { _ in try Client("127.0.0.1", server.port) }
        Thread.sleep(forTimeInterval: 0.2)
        #expect(try Client("127.0.0.1", server.port).get("/healthz").isEmpty, "the ninth is closed unanswered")
        // The held ones reach their deadline; then a client is served again.
        #expect(try waitUntil(seconds: 4) { try Client("127.0.0.1", server.port).get("/healthz").hasPrefix("HTTP/1.1 200 OK") })
        withExtendedLifetime(held) {}
    }

    @Test("IPv6: --healthz-ip ::1 serves there; a bad address is named")
    func ipv6() throws {
        let (server, task) = try Self.serve("::1")
        defer { task.cancel() }
        #expect(try Client("::1", server.port).get("/healthz").hasPrefix("HTTP/1.1 200 OK"))
        #expect(throws: DaemonError.self) { try Self.serve("not-an-address") }
    }
}
