import Foundation
import CWeftShell
import Glibc
import WeftBench

/// Small UDP datagrams in batches of `sendmmsg`, from several sockets (flows), as fast as they go
/// or at a fixed rate: a generator that is not the bottleneck, where iperf3 pays a system call per
/// datagram.
struct PacketGenerator {
    let destination: String
    let port: UInt16
    let flows: Int
    let size: Int
    static let batch = 32

    /// Sends for `seconds`; at `rate` packets a second when given, sleeping between batches.
    /// Returns the datagrams the kernel took.
    func send(seconds: Double, rate: Double?) throws -> UInt64 {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, destination, &address.sin_addr) == 1 else { throw BenchError("\(destination) is no IPv4 address") }
        let sockets = try (0..<flows).map { _ in try Self.connectedSocket(to: address) }
        defer { sockets.forEach { close($0) } }
        let payload = [UInt8](repeating: 0x5a, count: size)
        var sent: UInt64 = 0
        let pacing = rate.map { PacingSchedule(rate: $0, batch: Self.batch) }
        let start = Self.now()
        var batches = 0
        try payload.withUnsafeBytes { buffer in
            while Self.now() - start < seconds {
                if let pacing {
                    Self.sleep(until: start + pacing.offset(ofBatch: batches))
                }
                let count = weft_send_copies(sockets[batches % sockets.count], buffer.baseAddress, size, UInt32(Self.batch))
                if count < 0 && errno != ENOBUFS && errno != EAGAIN && errno != ECONNREFUSED {
                    throw BenchError("sendmmsg to \(destination):\(port): \(String(cString: strerror(errno)))")
                }
                sent += UInt64(max(count, 0))
                batches += 1
            }
        }
        return sent
    }

    private static func connectedSocket(to address: sockaddr_in) throws -> Int32 {
        let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard descriptor >= 0 else { throw BenchError("socket: \(String(cString: strerror(errno)))") }
        var address = address
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw BenchError("connect: \(String(cString: strerror(errno)))") }
        return descriptor
    }

    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    private static func sleep(until deadline: Double) {
        var time = timespec(tv_sec: Int(deadline), tv_nsec: Int((deadline - deadline.rounded(.down)) * 1e9))
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &time, nil) == EINTR {}
    }
}

/// Counts the datagrams that arrive on a port, with `recvmmsg`, until `seconds` pass with the
/// first datagram's arrival as the start, or `idle` seconds pass with none.
struct PacketSink {
    let port: UInt16

    func receive(seconds: Double, idle: Double = 5) throws -> (packets: UInt64, seconds: Double) {
        let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard descriptor >= 0 else { throw BenchError("socket: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var buffer: Int32 = 16 << 20
        setsockopt(descriptor, SOL_SOCKET, SO_RCVBUFFORCE, &buffer, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw BenchError("bind to port \(port): \(String(cString: strerror(errno)))") }
        let batch = 64, slot = 2048
        var storage = [UInt8](repeating: 0, count: batch * slot)
        var packets: UInt64 = 0
        var first: Double?
        let opened = PacketGenerator.now()
        try storage.withUnsafeMutableBytes { slots in
            while true {
                let now = PacketGenerator.now()
                if let first, now - first >= seconds { break }
                if first == nil, now - opened >= idle { break }
                let count = weft_receive_batch(descriptor, slots.baseAddress, slot, UInt32(batch))
                if count < 0 {
                    if errno == EAGAIN || errno == EINTR { continue }
                    throw BenchError("recvmmsg: \(String(cString: strerror(errno)))")
                }
                if first == nil { first = PacketGenerator.now() }
                packets += UInt64(count)
            }
        }
        return (packets, first.map { min(PacketGenerator.now() - $0, seconds) } ?? 0)
    }
}
