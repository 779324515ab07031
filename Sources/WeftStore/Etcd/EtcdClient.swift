import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL
import Synchronization
import WeftCore

/// How to reach an etcd cluster: flanneld's `--etcd-*` settings.
public struct EtcdConnection: Sendable, Equatable {
    public var endpoints: [String]
    public var caFile: String?
    public var certFile: String?
    public var keyFile: String?
    public var username: String?
    public var password: String?

    public init(endpoints: [String], caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil,
                username: String? = nil, password: String? = nil) {
        self.endpoints = endpoints
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
        self.username = username
        self.password = password
    }
}

/// Printed, logged or dumped, a connection never shows its password.
extension EtcdConnection: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        var parts = ["endpoints \(endpoints.joined(separator: ","))"]
        for (flag, path) in [("cafile", caFile), ("certfile", certFile), ("keyfile", keyFile)] {
            if let path { parts.append("--etcd-\(flag) \(path)") }
        }
        if let username { parts.append("user \(username)") }
        if password != nil { parts.append("password (hidden)") }
        return "etcd " + parts.joined(separator: ", ")
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(self, children: ["endpoints": endpoints, "caFile": caFile as Any, "certFile": certFile as Any, "keyFile": keyFile as Any,
                                "username": username as Any, "password": password == nil ? "none" : "(hidden)"])
    }
}

/// etcd's v3 JSON gateway over HTTP(S): several endpoints tried in turn (a failed one is
/// skipped until the others fail too), TLS with a CA and a client certificate, and
/// username/password authentication with a token renewed when etcd rejects it.
final class EtcdClient: Sendable {
    let connection: EtcdConnection
    private let http: HTTPClient
    private let preferred = Mutex(0)
    private let token = Mutex<String?>(nil)

    init(_ connection: EtcdConnection) throws {
        guard !connection.endpoints.isEmpty else { throw StoreError.unavailable(location: "etcd", reason: "no --etcd-endpoints given") }
        self.connection = connection
        http = try EtcdHTTPClients.client(for: connection)
    }

    /// POSTs a gateway call and returns the decoded JSON object. Connection failures move on
    /// to the next endpoint; when every endpoint failed the error says so.
    func call(_ path: String, _ body: Data) async throws -> [String: JSONValue] {
        try await withFailover { endpoint in
            let response = try await post(endpoint, path, body)
            let data = Data((try await response.body.collect(upTo: 64 << 20)).readableBytesView)
            if response.status == .unauthorized || EtcdRequestError.grpcCode(of: data) == EtcdRequestError.unauthenticated {
                token.withLock { $0 = nil }
                let retry = try await post(endpoint, path, body)
                return try decode(retry.status.code, Data((try await retry.body.collect(upTo: 64 << 20)).readableBytesView), path)
            }
            return try decode(response.status.code, data, path)
        }
    }

    /// Opens a streaming call (watch) on the first endpoint that answers.
    func stream(_ path: String, _ body: Data) async throws -> HTTPClientResponse {
        try await withFailover { endpoint in
            let response = try await post(endpoint, path, body, timeout: .hours(24 * 365))
            guard response.status == .ok else {
                let data = Data((try await response.body.collect(upTo: 1 << 20)).readableBytesView)
                throw EtcdRequestError(path: path, status: Int(response.status.code), code: EtcdRequestError.grpcCode(of: data),
                                       message: String(decoding: data, as: UTF8.self))
            }
            return response
        }
    }

    /// Tries `operation` on each endpoint, starting with the one that answered last. An
    /// answer that says no (`EtcdRequestError`) ends it; a connection failure moves on.
    private func withFailover<T>(_ operation: (String) async throws -> T) async throws -> T {
        var failures: [String] = []
        var misconfigurations: [String] = []
        let count = connection.endpoints.count
        let first = preferred.withLock { $0 }
        for attempt in 0..<count {
            let index = (first + attempt) % count
            do {
                let result = try await operation(connection.endpoints[index])
                preferred.withLock { $0 = index }
                return result
            } catch let error as EtcdRequestError where error.code == EtcdRequestError.unavailable {
                // A member cut off from its cluster says so (we require a leader): try another.
                failures.append("\(connection.endpoints[index]): \(error.message)")
            } catch let error as EtcdRequestError {
                throw error
            } catch {
                if let problem = EtcdTLSProblem.explain(error, endpoint: connection.endpoints[index], caFile: connection.caFile) {
                    misconfigurations.append(problem)
                }
                failures.append("\(connection.endpoints[index]): \(error)")
            }
        }
        // Every endpoint refused us for the configuration's sake: no retry will change that.
        if misconfigurations.count == count {
            throw StoreError.misconfigured(location: location, reason: misconfigurations.joined(separator: "; "))
        }
        throw StoreError.unavailable(location: location, reason: failures.joined(separator: "; "))
    }

    var location: String { "etcd " + connection.endpoints.joined(separator: ",") }

    private func post(_ endpoint: String, _ path: String, _ body: Data, authenticate: Bool = true,
                      timeout: TimeAmount = .seconds(10)) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: endpoint.trimmingSuffix("/") + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        // etcd's require-leader metadata (what its Go client's WithRequireLeader sends): a
        // member with no leader (cut off from the rest, quorum or not) refuses at once, and
        // ends the watch streams it serves within a few election timeouts, rather than
        // answering from a copy that no longer moves.
        request.headers.add(name: "Grpc-Metadata-hasleader", value: "true")
        if authenticate, let credentials = try await authToken(endpoint) {
            request.headers.add(name: "Authorization", value: credentials)
        }
        request.body = .bytes(ByteBuffer(bytes: body))
        return try await http.execute(request, timeout: timeout)
    }

    /// The auth token for username/password, fetched once and again when it lapses.
    private func authToken(_ endpoint: String) async throws -> String? {
        guard let username = connection.username else { return nil }
        if let current = token.withLock({ $0 }) { return current }
        let body = EtcdMessages.body(["name": .string(username), "password": .string(connection.password ?? "")])
        let response = try await post(endpoint, "/v3/auth/authenticate", body, authenticate: false)
        let data = Data((try await response.body.collect(upTo: 1 << 20)).readableBytesView)
        guard response.status == .ok, case .string(let fresh)? = try EtcdMessages.object(data)["token"] else {
            throw EtcdRequestError(path: "/v3/auth/authenticate", status: Int(response.status.code), code: EtcdRequestError.grpcCode(of: data),
                                   message: "etcd refused user \(username): \(String(decoding: data, as: UTF8.self)); check --etcd-username and --etcd-password")
        }
        token.withLock { $0 = fresh }
        return fresh
    }

    private func decode(_ status: UInt, _ data: Data, _ path: String) throws -> [String: JSONValue] {
        guard status == 200 else {
            throw EtcdRequestError(path: path, status: Int(status), code: EtcdRequestError.grpcCode(of: data),
                                   message: String(decoding: data, as: UTF8.self))
        }
        return try EtcdMessages.object(data)
    }
}


/// etcd answered, and said no: not a connectivity problem, so no failover. Callers decide
/// by the gateway's gRPC status code, never by the message's words.
struct EtcdRequestError: Error, CustomStringConvertible {
    let path: String
    let status: Int
    /// The gRPC status code the gateway reports (`{"code":5,...}`), when it gave one.
    let code: Int?
    let message: String
    var description: String { "etcd \(path) answered \(status): \(message)" }

    /// gRPC's NOT_FOUND: a lease that is gone, say.
    static let notFound = 5
    /// gRPC's UNAVAILABLE: "etcdserver: no leader", from a member cut off from its cluster.
    static let unavailable = 14
    /// gRPC's UNAUTHENTICATED: an expired or unknown auth token.
    static let unauthenticated = 16

    static func grpcCode(of body: Data) -> Int? {
        guard case .object(let members)? = try? JSONValue.parse(body), case .integer(let code)? = members["code"] else { return nil }
        return Int(code)
    }
}

/// One HTTP client per TLS setup, for the life of the process (a client must be shut
/// down before it is freed; a process-wide one never is).
enum EtcdHTTPClients {
    private static let clients = Mutex<[String: HTTPClient]>([:])

    static func client(for connection: EtcdConnection) throws -> HTTPClient {
        let key = [connection.caFile, connection.certFile, connection.keyFile].map { $0 ?? "-" }.joined(separator: "|")
        if let existing = clients.withLock({ $0[key] }) { return existing }
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(3), read: nil)
        if connection.caFile != nil || connection.certFile != nil {
            var tls = TLSConfiguration.makeClientConfiguration()
            // Each file is read now, so a bad one is named at start with its flag.
            func read<T>(_ flag: String, _ path: String, _ load: (String) throws -> T) throws(StoreError) -> T {
                do {
                    return try load(path)
                } catch {
                    throw StoreError.misconfigured(location: "etcd", reason: "--\(flag) \(path): cannot be read as a PEM file (\(error)); check the path, its mode and its contents")
                }
            }
            if let ca = connection.caFile {
                _ = try read("etcd-cafile", ca) { try NIOSSLCertificate.fromPEMFile($0) }
                tls.trustRoots = .file(ca)
            }
            if let cert = connection.certFile {
                tls.certificateChain = try read("etcd-certfile", cert) { try NIOSSLCertificate.fromPEMFile($0) }.map { .certificate($0) }
            }
            if let key = connection.keyFile {
                tls.privateKey = .privateKey(try read("etcd-keyfile", key) { try NIOSSLPrivateKey(file: $0, format: .pem) })
            }
            configuration.tlsConfiguration = tls
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        clients.withLock { $0[key] = client }
        return client
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String { hasSuffix(suffix) ? String(dropLast(suffix.count)) : self }
}
