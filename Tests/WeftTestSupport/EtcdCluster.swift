import Foundation
import Glibc

/// Real etcd servers (Debian's etcd-server) for one test: one member or several, plain or
/// TLS, on free loopback ports, in a directory of their own. Every member is stopped by its
/// PID and its data removed when the test ends.
public final class EtcdCluster {
    public struct TLSFiles: Sendable {
        public let ca: String
        public let serverCertificate: String
        public let serverKey: String
        public let clientCertificate: String
        public let clientKey: String
    }

    public let directory: TemporaryDirectory
    public let tls: TLSFiles?
    public private(set) var endpoints: [String] = []
    private var processes: [ChildProcess] = []

    /// - Parameter serverNames: the subjectAltName of the server's certificate, with TLS.
    public init(members: Int = 1, tls useTLS: Bool = false, serverNames: String = "IP:127.0.0.1") throws {
        directory = try TemporaryDirectory()
        tls = useTLS ? try Self.makeCertificates(in: directory, serverNames: serverNames) : nil
        let scheme = useTLS ? "https" : "http"
        let ports = try (0..<(members * 2)).map { _ in try Self.freePort() }
        let names = (1...members).map { "m\($0)" }
        let peers = names.enumerated().map { "\($1)=http://127.0.0.1:\(ports[$0 * 2 + 1])" }.joined(separator: ",")
        let token = UUID().uuidString
        for (index, name) in names.enumerated() {
            let client = "\(scheme)://127.0.0.1:\(ports[index * 2])"
            let peer = "http://127.0.0.1:\(ports[index * 2 + 1])"
            var arguments = ["--name", name, "--data-dir", directory.file(name), "--listen-client-urls", client,
                             "--advertise-client-urls", client, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                             "--initial-cluster", peers, "--initial-cluster-state", "new", "--initial-cluster-token", token,
                             "--log-outputs", "stderr"]
            if let tls {
                arguments += ["--cert-file", tls.serverCertificate, "--key-file", tls.serverKey, "--client-cert-auth",
                              "--trusted-ca-file", tls.ca]
            }
            let log = directory.file("\(name).log")
            processes.append(try ChildProcess(["/usr/bin/etcd"] + arguments, output: .file(log), error: .file(log)))
            endpoints.append(client)
        }
        for name in names {
            let ready = try waitUntil(seconds: 20) {
                ((try? String(contentsOfFile: self.directory.file("\(name).log"), encoding: .utf8)) ?? "").contains("ready to serve client requests")
            }
            guard ready else {
                let log = (try? String(contentsOfFile: directory.file("\(name).log"), encoding: .utf8)) ?? ""
                throw Command.Failure(arguments: ["etcd", name], result: Command.Result(status: -1, stdout: "", stderr: String(log.suffix(2000))))
            }
        }
    }

    /// Stops one member (SIGSTOP): it neither answers nor dies, as a hung or cut-off host.
    public func stop(member index: Int) {
        processes[index].signal(SIGSTOP)
    }

    /// Lets a stopped member run again.
    public func resume(member index: Int) {
        processes[index].signal(SIGCONT)
    }

    /// Kills one member at once, as a crash would.
    public func kill(member index: Int) {
        processes[index].kill()
    }

    deinit {
        for process in processes { process.kill() }
    }

    /// A port the kernel says is free on loopback right now.
    static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        guard bound else { throw POSIXError(.EADDRINUSE) }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// A CA, a server certificate for 127.0.0.1 and a client certificate, with openssl.
    public static func makeCertificates(in directory: TemporaryDirectory, serverNames: String = "IP:127.0.0.1") throws -> TLSFiles {
        func file(_ name: String) -> String { directory.file(name) }
        try Command.must(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=weft-test-ca",
                          "-keyout", file("ca.key"), "-out", file("ca.crt")])
        try directory.write("server.ext", "subjectAltName=\(serverNames)\nextendedKeyUsage=serverAuth,clientAuth\n")
        try directory.write("client.ext", "extendedKeyUsage=clientAuth\n")
        for (name, subject) in [("server", "/CN=127.0.0.1"), ("client", "/CN=weft")] {
            try Command.must(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", file("\(name).key"),
                              "-out", file("\(name).csr")])
            try Command.must(["openssl", "x509", "-req", "-in", file("\(name).csr"), "-CA", file("ca.crt"), "-CAkey", file("ca.key"),
                              "-CAcreateserial", "-days", "1", "-extfile", file("\(name).ext"), "-out", file("\(name).crt")])
        }
        return TLSFiles(ca: file("ca.crt"), serverCertificate: file("server.crt"), serverKey: file("server.key"),
                        clientCertificate: file("client.crt"), clientKey: file("client.key"))
    }
}
