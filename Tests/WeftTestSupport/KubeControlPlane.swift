import Foundation
import Glibc

/// The real kube-apiserver and kube-controller-manager of `../shared/kube/` (Kubernetes
/// v1.36.2), started for one test on loopback as its README says: an etcd of the test's own,
/// a CA and certificates made with openssl, RBAC on, and the controller manager's `nodeipam`
/// controller giving each Node a podCIDR of 10.244.0.0/16. Both are stopped by their PIDs
/// when the test ends. Kubeconfigs for an admin and for a user bound to kube-flannel.yml's
/// ClusterRole only.
public final class KubeControlPlane {
    public static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../shared/kube").standardized.path
    public static var isAvailable: Bool { FileManager.default.fileExists(atPath: "\(folder)/kube-apiserver.gz") }
    public static let unavailable = "needs the real kube-apiserver and kube-controller-manager in ../shared/kube/"

    /// kube-flannel.yml's ClusterRole, exactly.
    nonisolated(unsafe) public static let flannelRules: [[String: Any]] = [
        ["apiGroups": [""], "resources": ["pods"], "verbs": ["get"]],
        ["apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]],
        ["apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch"]],
    ]

    /// One control plane at a time in a test run: each is the heaviest thing a test starts
    /// (an API server takes a core for seconds and 280 MB), and suites run side by side.
    public static let oneAtATime = DispatchSemaphore(value: 1)

    public let directory: TemporaryDirectory
    public let etcd: EtcdCluster
    public let url: String
    public var ca: String { directory.file("ca.crt") }
    /// A kubeconfig for `system:masters`.
    public var adminKubeconfig: String { directory.file("admin.kubeconfig") }
    /// A kubeconfig for user `weft`, bound to `flannelRules` only (by `grantFlannelRole`).
    public var flannelKubeconfig: String { directory.file("flannel.kubeconfig") }
    private var apiServer: ChildProcess?
    private var controllerManager: ChildProcess?
    private let apiServerBinary: String
    private let apiServerArguments: [String]

    /// - Parameters:
    ///   - address: where the API server listens (127.0.0.1, or an address on a test underlay it can bind).
    ///   - allocateNodeCIDRs: run the controller manager, which gives each Node a podCIDR; without it Nodes get none.
    ///   - watchCache: off, a watch reads etcd itself, so one from a compacted revision is refused at once (410 Gone).
    public init(address: String = "127.0.0.1", clusterCIDR: String = "10.244.0.0/16", nodeCIDRMaskSize: Int = 24, allocateNodeCIDRs: Bool = true,
                watchCache: Bool = true) throws {
        Self.oneAtATime.wait()
        var started = false
        defer { if !started { Self.oneAtATime.signal() } }
        directory = try TemporaryDirectory()
        etcd = try EtcdCluster()
        let port = try EtcdCluster.freePort()
        url = "https://\(address):\(port)"
        for name in ["kube-apiserver", "kube-controller-manager"] {
            try Command.must(["sh", "-c", "gunzip -c '\(Self.folder)/\(name).gz' > '\(directory.file(name))' && chmod +x '\(directory.file(name))'"])
        }
        apiServerBinary = directory.file("kube-apiserver")
        apiServerArguments = [
            "--etcd-servers=\(etcd.endpoints[0])", "--bind-address=\(address)", "--advertise-address=\(address)",
            "--secure-port=\(port)", "--tls-cert-file=\(directory.file("server.crt"))", "--tls-private-key-file=\(directory.file("server.key"))",
            "--client-ca-file=\(directory.file("ca.crt"))", "--service-account-issuer=https://kubernetes.default.svc",
            "--service-account-key-file=\(directory.file("sa.pub"))", "--service-account-signing-key-file=\(directory.file("sa.key"))",
            "--service-cluster-ip-range=10.96.0.0/16", "--authorization-mode=RBAC", "--allow-privileged=true",
        ] + (watchCache ? [] : ["--watch-cache=false"])
        // Fully initialised from here: a throw runs deinit, which gives the turn back.
        started = true
        try makeCertificates(serverAddresses: ["127.0.0.1", address])
        try startAPIServer()
        guard allocateNodeCIDRs else { return }
        let managerPort = try EtcdCluster.freePort()
        let managerLog = directory.file("kube-controller-manager.log")
        controllerManager = try ChildProcess([
            directory.file("kube-controller-manager"), "--kubeconfig=\(adminKubeconfig)", "--authentication-kubeconfig=\(adminKubeconfig)",
            "--authorization-kubeconfig=\(adminKubeconfig)", "--leader-elect=false", "--controllers=nodeipam", "--allocate-node-cidrs=true",
            "--cluster-cidr=\(clusterCIDR)", "--node-cidr-mask-size=\(nodeCIDRMaskSize)", "--service-cluster-ip-range=10.96.0.0/16",
            "--use-service-account-credentials=false", "--bind-address=127.0.0.1", "--secure-port=\(managerPort)",
        ], output: .file(managerLog), error: .file(managerLog))
    }

    deinit {
        controllerManager?.kill()
        apiServer?.kill()
        Self.oneAtATime.signal()
    }

    /// Starts the API server and waits until `/readyz` answers `ok`.
    public func startAPIServer() throws {
        let log = directory.file("kube-apiserver.log")
        apiServer = try ChildProcess([apiServerBinary] + apiServerArguments, output: .file(log), error: .file(log))
        let ready = try waitUntil(seconds: 60) { (try? self.admin(["GET", "/readyz"]))?.body == "ok" }
        guard ready else {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw Command.Failure(arguments: ["kube-apiserver"], result: Command.Result(status: -1, stdout: "", stderr: String(text.suffix(3000))))
        }
    }

    /// Writes keys of the test's own straight into the API server's etcd, so its revision moves
    /// on with nothing the API server serves changed.
    public func advanceStore(by count: Int = 5) throws {
        for index in 0..<count {
            let key = Data("/weft-test/\(index)".utf8).base64EncodedString()
            try Command.must(["curl", "-sS", "-X", "POST", "\(etcd.endpoints[0])/v3/kv/put", "-d", #"{"key":"\#(key)","value":"eA=="}"#])
        }
    }

    /// Compacts the API server's etcd at its current revision, as its own compactor does every few
    /// minutes: a watch resuming from before now is told 410 Gone. Returns the revision.
    @discardableResult
    public func compactStore() throws -> Int64 {
        let status = try Command.must(["curl", "-sS", "-X", "POST", "\(etcd.endpoints[0])/v3/kv/range", "-d", #"{"key":"AA=="}"#])
        guard let range = status.range(of: #""revision":""#), let revision = Int64(status[range.upperBound...].prefix { $0.isNumber }) else {
            throw Command.Failure(arguments: ["etcd range"], result: Command.Result(status: -1, stdout: status, stderr: ""))
        }
        try Command.must(["curl", "-sS", "-X", "POST", "\(etcd.endpoints[0])/v3/kv/compaction", "-d", #"{"revision":"\#(revision)","physical":true}"#])
        return revision
    }

    /// Kills the API server at once, as a crash or a restart does; `startAPIServer` brings it back.
    public func killAPIServer() {
        apiServer?.kill()
        apiServer = nil
    }

    public struct Response {
        public let status: Int
        public let body: String
    }

    /// One request as the admin, with curl: `[method, path]`, and a body for POST, PUT and PATCH.
    @discardableResult
    public func admin(_ request: [String], body: String? = nil, contentType: String = "application/json") throws -> Response {
        try self.request(request, body: body, contentType: contentType, certificate: "admin")
    }

    /// The same as the user bound to kube-flannel.yml's role.
    @discardableResult
    public func asFlannel(_ request: [String], body: String? = nil, contentType: String = "application/json") throws -> Response {
        try self.request(request, body: body, contentType: contentType, certificate: "flannel")
    }

    private func request(_ request: [String], body: String?, contentType: String, certificate: String) throws -> Response {
        var arguments = ["curl", "-sS", "--max-time", "10", "--cacert", ca, "--cert", directory.file("\(certificate).crt"),
                         "--key", directory.file("\(certificate).key"), "-X", request[0], "-w", "\n%{http_code}"]
        if let body { arguments += ["-H", "Content-Type: \(contentType)", "--data-binary", body] }
        arguments.append(url + request[1])
        let result = try Command.run(arguments)
        guard result.succeeded, let newline = result.stdout.lastIndex(of: "\n") else {
            throw Command.Failure(arguments: arguments, result: result)
        }
        return Response(status: Int(result.stdout[result.stdout.index(after: newline)...]) ?? 0, body: String(result.stdout[..<newline]))
    }

    /// Registers a Node as a kubelet would (with one annotation: the stock flanneld panics on a
    /// Node with none); the controller manager gives it a podCIDR.
    public func registerNode(_ name: String, address: String, labels: [String: String] = [:]) throws {
        let node: [String: Any] = [
            "apiVersion": "v1", "kind": "Node",
            "metadata": ["name": name, "labels": labels, "annotations": ["volumes.kubernetes.io/controller-managed-attach-detach": "true"]],
            "status": ["addresses": [["type": "InternalIP", "address": address]]],
        ]
        let response = try admin(["POST", "/api/v1/nodes"], body: try Self.json(node))
        guard response.status == 201 else { throw KubeRequestFailed(what: "register node \(name)", response: response) }
    }

    /// The Node as the API server holds it.
    public func node(_ name: String) throws -> [String: Any] {
        let response = try admin(["GET", "/api/v1/nodes/\(name)"])
        guard response.status == 200, let object = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any] else {
            throw KubeRequestFailed(what: "get node \(name)", response: response)
        }
        return object
    }

    /// The Node's `spec.podCIDR` once the controller manager has set it.
    public func podCIDR(of name: String, seconds: Double = 20) throws -> String? {
        var cidr: String?
        _ = try waitUntil(seconds: seconds) {
            cidr = ((try? self.node(name))?["spec"] as? [String: Any])?["podCIDR"] as? String
            return cidr != nil
        }
        return cidr
    }

    /// Binds user `weft` to a ClusterRole with `rules` (kube-flannel.yml's by default).
    public func grantFlannelRole(rules: [[String: Any]] = KubeControlPlane.flannelRules) throws {
        _ = try admin(["DELETE", "/apis/rbac.authorization.k8s.io/v1/clusterroles/weft-test-flannel"])
        let role: [String: Any] = ["apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                                   "metadata": ["name": "weft-test-flannel"], "rules": rules]
        var response = try admin(["POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles"], body: try Self.json(role))
        guard response.status == 201 else { throw KubeRequestFailed(what: "create the ClusterRole", response: response) }
        let binding: [String: Any] = ["apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                                      "metadata": ["name": "weft-test-flannel"],
                                      "roleRef": ["apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "weft-test-flannel"],
                                      "subjects": [["apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "weft"]]]
        _ = try admin(["DELETE", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/weft-test-flannel"])
        response = try admin(["POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"], body: try Self.json(binding))
        guard response.status == 201 else { throw KubeRequestFailed(what: "create the ClusterRoleBinding", response: response) }
    }

    static func json(_ object: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    private func makeCertificates(serverAddresses: [String]) throws {
        func file(_ name: String) -> String { directory.file(name) }
        try Command.must(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=weft-test-kube-ca",
                          "-keyout", file("ca.key"), "-out", file("ca.crt")])
        let names = (Set(serverAddresses).sorted().map { "IP:\($0)" } + ["DNS:kubernetes.default.svc", "DNS:localhost"]).joined(separator: ",")
        try directory.write("server.ext", "subjectAltName=\(names)\nextendedKeyUsage=serverAuth\n")
        try directory.write("client.ext", "extendedKeyUsage=clientAuth\n")
        for (name, subject, ext) in [("server", "/CN=kube-apiserver", "server.ext"), ("admin", "/O=system:masters/CN=weft-admin", "client.ext"),
                                     ("flannel", "/CN=weft", "client.ext")] {
            try Command.must(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", file("\(name).key"), "-out", file("\(name).csr")])
            try Command.must(["openssl", "x509", "-req", "-in", file("\(name).csr"), "-CA", file("ca.crt"), "-CAkey", file("ca.key"),
                              "-CAcreateserial", "-days", "1", "-extfile", file(ext), "-out", file("\(name).crt")])
        }
        try Command.must(["openssl", "genrsa", "-out", file("sa.key"), "2048"])
        try Command.must(["openssl", "rsa", "-in", file("sa.key"), "-pubout", "-out", file("sa.pub")])
        for (name, user) in [("admin", "weft-admin"), ("flannel", "weft")] {
            try directory.write("\(name).kubeconfig", """
                apiVersion: v1
                kind: Config
                clusters:
                - name: test
                  cluster:
                    server: \(url)
                    certificate-authority: \(file("ca.crt"))
                users:
                - name: \(user)
                  user:
                    client-certificate: \(file("\(name).crt"))
                    client-key: \(file("\(name).key"))
                contexts:
                - name: test
                  context:
                    cluster: test
                    user: \(user)
                current-context: test

                """)
        }
    }
}

public struct KubeRequestFailed: Error, CustomStringConvertible {
    public let what: String
    public let response: KubeControlPlane.Response

    public init(what: String, response: KubeControlPlane.Response) {
        self.what = what
        self.response = response
    }

    public var description: String { "\(what): HTTP \(response.status): \(response.body.prefix(2000))" }
}
