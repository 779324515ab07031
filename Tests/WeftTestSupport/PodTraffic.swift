import Foundation
import WeftShell

/// Traffic between two network namespaces (pods), checked end to end by Python on both sides:
/// the bytes that arrive, their order, and their count.
public enum PodTraffic {
    /// What a checksummed transfer sent and received: "<bytes> <sha256>" from each side.
    public struct Transfer: Sendable {
        public let sent: String
        public let received: String
        public var intact: Bool { sent == received && !sent.isEmpty }
    }

    /// What a numbered UDP exchange delivered.
    public struct Datagrams: Sendable, Equatable {
        public let sent: Int
        public let received: Int
        /// Every datagram arrived after the one numbered before it (none overtook another).
        public let inOrder: Bool
        /// Sizes that arrived damaged or cut short.
        public let damaged: Int
    }

    /// `mebibytes` of TCP from `sender` to `address:port` in `receiver`: the same seeded bytes on
    /// both sides (1 MiB blocks, each the seeded block rotated by its index), SHA-256 on both.
    /// `mixed` interleaves 100-byte writes, sent at once (TCP_NODELAY), with the large ones, so
    /// single segments follow aggregates closely. Returns the transfer and the reorderings the
    /// sender's TCP detected (TcpExt TCPSACKReorder, TCPTSReorder and TCPRenoReorder: segments
    /// taken for lost that arrived late), which a loss alone does not raise. A sender that moves
    /// across CPUs reorders its own packets (a veth queues on the CPU that sends, and a TCP that
    /// an ACK wakes sends from wherever the ACK was taken), so `cpu` pins sender and receiver,
    /// and with them every softirq of the transfer, to one CPU.
    public static func checksummedTCP(from sender: String, to receiver: String, address: String, port: Int = 7001,
                                      mebibytes: Int = 1024, mixed: Bool = false, cpu: Int? = nil) throws -> (transfer: Transfer, reorderings: Int) {
        let data = """
            import hashlib, random, socket, sys, time
            block = random.Random(17).randbytes(1 << 20)
            def chunks():
                for i in range(\(mebibytes)):
                    k = (i * 4099) % len(block)
                    whole = block[k:] + block[:k]
                    if \(mixed ? "True" : "False"):
                        for j in range(0, len(whole), 1 << 16):
                            yield whole[j:j + 100]
                            yield whole[j + 100:j + (1 << 16)]
                    else:
                        yield whole
            """
        let receive = data + """

            server = socket.create_server(("\(address)", \(port)))
            connection, _ = server.accept()
            digest, total = hashlib.sha256(), 0
            while True:
                part = connection.recv(1 << 20)
                if not part:
                    break
                digest.update(part)
                total += len(part)
            print(total, digest.hexdigest())
            """
        let send = data + """

            for attempt in range(100):
                try:
                    connection = socket.create_connection(("\(address)", \(port)))
                    break
                except OSError:
                    time.sleep(0.1)
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            digest, total = hashlib.sha256(), 0
            for chunk in chunks():
                connection.sendall(chunk)
                digest.update(chunk)
                total += len(chunk)
            connection.close()
            print(total, digest.hexdigest())
            """
        let before = try reorderings(seenBy: sender)
        let pinned = cpu.map { ["taskset", "-c", "\($0)"] } ?? []
        let server = try ChildProcess(["ip", "netns", "exec", receiver] + pinned + ["python3", "-c", receive], output: .pipe, error: .pipe)
        let client = try Command.run(["ip", "netns", "exec", sender] + pinned + ["python3", "-c", send])
        if !client.succeeded { server.kill() }
        let received = String(decoding: server.collect().output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let after = try reorderings(seenBy: sender)
        return (Transfer(sent: client.stdout.trimmingCharacters(in: .whitespacesAndNewlines), received: received), after - before)
    }

    /// `count` numbered UDP datagrams from `sender` to `address:port` in `receiver`, their sizes
    /// cycling from 64 bytes up to `largest`, each filled with a pattern of its number.
    public static func numberedUDP(from sender: String, to receiver: String, address: String, port: Int = 7002,
                                   count: Int = 3000, largest: Int = 1422) throws -> Datagrams {
        let pattern = """
            def body(n):
                size = [64, \(largest), 300, \(largest) - 1, 64, 900][n % 6]
                return (n.to_bytes(4, "big") * (size // 4 + 1))[:size]
            """
        let receive = pattern + """

            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)
            s.bind(("\(address)", \(port)))
            s.settimeout(3)
            last, received, in_order, damaged = -1, 0, True, 0
            try:
                while True:
                    data = s.recv(65535)
                    n = int.from_bytes(data[:4], "big")
                    if data != body(n):
                        damaged += 1
                    if n <= last:
                        in_order = False
                    last = max(last, n)
                    received += 1
            except socket.timeout:
                pass
            print(received, in_order, damaged)
            """
        let send = pattern + """

            import socket, time
            time.sleep(0.5)
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for n in range(\(count)):
                s.sendto(body(n), ("\(address)", \(port)))
                if n % 50 == 49:
                    time.sleep(0.002)
            """
        let server = try ChildProcess(["ip", "netns", "exec", receiver, "python3", "-c", receive], output: .pipe, error: .pipe)
        let client = try Command.run(["ip", "netns", "exec", sender, "python3", "-c", send])
        if !client.succeeded { server.kill() }
        let fields = String(decoding: server.collect().output, as: UTF8.self).split(whereSeparator: \.isWhitespace)
        guard client.succeeded, fields.count == 3, let received = Int(fields[0]), let damaged = Int(fields[2]) else {
            throw Command.Failure(arguments: ["numbered UDP \(sender) -> \(receiver)"], result: client)
        }
        return Datagrams(sent: count, received: received, inOrder: fields[1] == "True", damaged: damaged)
    }

    /// Reorderings the TCP of a namespace has detected so far.
    public static func reorderings(seenBy namespace: String) throws -> Int {
        let counters = try tcpExtended(in: namespace)
        return ["TCPSACKReorder", "TCPTSReorder", "TCPRenoReorder"].reduce(0) { $0 + (counters[$1] ?? 0) }
    }

    /// The TcpExt counters of /proc/net/netstat in a namespace, by name.
    public static func tcpExtended(in namespace: String) throws -> [String: Int] {
        let netstat = try Command.must(["ip", "netns", "exec", namespace, "cat", "/proc/net/netstat"])
        let lines = netstat.split(separator: "\n").filter { $0.hasPrefix("TcpExt:") }
        guard lines.count == 2 else { return [:] }
        let names = lines[0].split(separator: " ").dropFirst(), values = lines[1].split(separator: " ").dropFirst()
        return Dictionary(zip(names.map(String.init), values.map { Int($0) ?? 0 }), uniquingKeysWith: { first, _ in first })
    }
}
