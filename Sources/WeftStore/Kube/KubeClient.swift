import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import WeftCore

/// What went wrong with the Kubernetes API, each saying what to do.
public enum KubeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The configuration cannot work (a missing file, a bad kubeconfig).
    case misconfigured(String)
    /// The server cannot be reached, or failed; retried.
    case unavailable(String)
    /// RBAC refused the verb on the resource: names both.
    case forbidden(verb: String, resource: String, message: String)
    /// The watch's resourceVersion is too old (410 Gone): list again.
    case expired
    case notFound(String)
    /// The server refused the request for another reason.
    case rejected(status: Int, message: String)

    public var description: String {
        switch self {
        case .misconfigured(let text): text
        case .unavailable(let text): "the Kubernetes API is unavailable: \(text)"
        case .forbidden(let verb, let resource, let message):
            "the Kubernetes API refused \(verb) on \(resource) (403): \(message); grant it to the daemon's account, as kube-flannel.yml's ClusterRole does (nodes: get, list, watch; nodes/status: patch; pods: get)"
        case .expired: "the watch's resourceVersion is too old (410 Gone); listing again"
        case .notFound(let what): "\(what) does not exist in the Kubernetes API"
        case .rejected(let status, let message): "the Kubernetes API refused the request (HTTP \(status)): \(message)"
        }
    }
}

/// One event of a watch of Nodes.
public enum KubeNodeEvent: Sendable, Equatable {
    case added(KubeNode)
    case modified(KubeNode)
    case deleted(KubeNode)
    /// A bookmark: nothing changed up to this resourceVersion.
    case bookmark(resourceVersion: String)
}

/// Where a watch is in its response: used by its one consumer only, one call at a time.
private final class WatchCursor: @unchecked Sendable {
    var body: HTTPClientResponse.Body.AsyncIterator?
    var pending: [UInt8] = []
}

/// The calls flanneld's subnet manager makes, over HTTPS with the connection's credentials:
/// get, list and watch Nodes, a strategic-merge patch of a Node's status, and get a Pod.
public final class KubeClient: Sendable {
    public let connection: KubeConnection
    private let http: HTTPClient

    public init(_ connection: KubeConnection) throws(KubeError) {
        self.connection = connection
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(5), read: nil)
        var tls = TLSConfiguration.makeClientConfiguration()
        do {
            if let ca = connection.caPEM {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(ca.utf8)))
            }
            if let certificate = connection.clientCertificatePEM {
                tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(certificate.utf8)).map { .certificate($0) }
            }
            if let key = connection.clientKeyPEM {
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(key.utf8), format: .pem))
            }
        } catch {
            throw KubeError.misconfigured("the certificates or key of \(connection.source) are not PEM: \(error)")
        }
        configuration.tlsConfiguration = tls
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    deinit {
        try? http.syncShutdown()
    }

    // MARK: Nodes

    public func node(_ name: String) async throws -> KubeNode {
        try KubeNode(json: try await call("GET", "/api/v1/nodes/\(name)", verb: "get", resource: "nodes"))
    }

    /// Every Node, and the list's resourceVersion to watch from.
    public func nodes() async throws -> (nodes: [KubeNode], resourceVersion: String) {
        let list = try await call("GET", "/api/v1/nodes", verb: "list", resource: "nodes")
        guard case .array(let items)? = list.member("items")?.value else { throw KubeError.rejected(status: 200, message: "a NodeList without items") }
        let version: String = if case .object(let metadata)? = list.member("metadata")?.value, case .string(let text)? = metadata["resourceVersion"] { text } else { "" }
        return (try items.map { try KubeNode(json: $0) }, version)
    }

    /// Watches Nodes from `resourceVersion`, with bookmarks; ends when the server closes the
    /// stream (it does every few minutes), throws `.expired` for a 410. Read in the consumer's
    /// own task, as the store's watches are: nothing waits for a thread of the concurrency pool.
    public func watchNodes(from resourceVersion: String, timeoutSeconds: Int = 300) -> AsyncThrowingStream<KubeNodeEvent, any Error> {
        let path = "/api/v1/nodes?watch=true&allowWatchBookmarks=true&resourceVersion=\(resourceVersion)&timeoutSeconds=\(timeoutSeconds)"
        let cursor = WatchCursor()
        return AsyncThrowingStream(unfolding: { [self] in
            if cursor.body == nil {
                let response = try await execute("GET", path, body: nil, contentType: nil, timeout: .seconds(Int64(timeoutSeconds + 30)))
                guard response.status == .ok else {
                    let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
                    throw error(status: Int(response.status.code), body: body, verb: "watch", resource: "nodes")
                }
                cursor.body = response.body.makeAsyncIterator()
            }
            while true {
                if let newline = cursor.pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = Array(cursor.pending[..<newline])
                    cursor.pending.removeSubrange(...newline)
                    if let event = try Self.event(line) { return event }
                    continue
                }
                guard let chunk = try await cursor.body?.next() else { return nil }
                cursor.pending += chunk.readableBytesView
            }
        })
    }

    /// One line of a watch.
    static func event(_ line: [UInt8]) throws -> KubeNodeEvent? {
        guard !line.isEmpty else { return nil }
        let document = try JSONValue.parse(Data(line))
        guard case .string(let type)? = document.member("type")?.value, let object = document.member("object")?.value else {
            throw KubeError.rejected(status: 200, message: "a watch event without type and object")
        }
        switch type {
        case "ADDED": return .added(try KubeNode(json: object))
        case "MODIFIED": return .modified(try KubeNode(json: object))
        case "DELETED": return .deleted(try KubeNode(json: object))
        case "BOOKMARK":
            let version: String = if case .object(let metadata)? = object.member("metadata")?.value, case .string(let text)? = metadata["resourceVersion"] { text } else { "" }
            return .bookmark(resourceVersion: version)
        case "ERROR":
            if case .integer(410)? = object.member("code")?.value { throw KubeError.expired }
            let message: String = if case .string(let text)? = object.member("message")?.value { text } else { "\(object.serialized())" }
            throw KubeError.rejected(status: 0, message: message)
        default:
            return nil
        }
    }

    /// A strategic-merge patch of `nodes/<name>/status`, as flanneld sends its annotations and its condition.
    @discardableResult
    public func patchNodeStatus(_ name: String, _ patch: JSONValue) async throws -> KubeNode {
        try KubeNode(json: try await call("PATCH", "/api/v1/nodes/\(name)/status", body: patch.serialized(),
                                          contentType: "application/strategic-merge-patch+json", verb: "patch", resource: "nodes/status"))
    }

    /// The node a pod runs on (`spec.nodeName`): how flanneld finds its Node from POD_NAME and POD_NAMESPACE.
    public func nodeName(ofPod name: String, namespace: String) async throws -> String {
        let pod = try await call("GET", "/api/v1/namespaces/\(namespace)/pods/\(name)", verb: "get", resource: "pods")
        guard case .object(let spec)? = pod.member("spec")?.value, case .string(let node)? = spec["nodeName"], !node.isEmpty else {
            throw KubeError.misconfigured("pod \(namespace)/\(name) has no spec.nodeName yet; set NODE_NAME instead")
        }
        return node
    }

    // MARK: Requests

    private func call(_ method: String, _ path: String, body: String? = nil, contentType: String? = nil, verb: String, resource: String) async throws -> JSONValue {
        let response = try await execute(method, path, body: body, contentType: contentType, timeout: .seconds(30))
        let text = String(buffer: try await response.body.collect(upTo: 64 << 20))
        guard (200..<300).contains(Int(response.status.code)) else {
            throw error(status: Int(response.status.code), body: text, verb: verb, resource: resource)
        }
        return try JSONValue.parse(text)
    }

    private func execute(_ method: String, _ path: String, body: String?, contentType: String?, timeout: TimeAmount) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: connection.server.trimmingSuffix("/") + path)
        request.method = HTTPMethod(rawValue: method)
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "weft/\(WeftVersion.current)")
        if let token = try bearerToken() { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType ?? "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        do {
            return try await http.execute(request, timeout: timeout)
        } catch {
            throw KubeError.unavailable("\(method) \(connection.server)\(path.prefix { $0 != "?" }): \(error)")
        }
    }

    private func bearerToken() throws(KubeError) -> String? {
        if let file = connection.tokenFile {
            do {
                return try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            } catch {
                throw KubeError.misconfigured("the token file \(file) of \(connection.source) cannot be read: \(error.localizedDescription)")
            }
        }
        return connection.token
    }

    private func error(status: Int, body: String, verb: String, resource: String) -> KubeError {
        let message: String = if case .string(let text)? = (try? JSONValue.parse(body))?.member("message")?.value { text } else { String(body.prefix(500)) }
        switch status {
        case 401: return .rejected(status: 401, message: "\(message); the credentials of \(connection.source) are not accepted (an expired token or certificate?)")
        case 403: return .forbidden(verb: verb, resource: resource, message: message)
        case 404: return .notFound(message)
        case 410: return .expired
        case 500...: return .unavailable("HTTP \(status): \(message)")
        default: return .rejected(status: status, message: message)
        }
    }
}
