import Foundation
import Glibc
import WeftDataplane
import WeftShell

/// The lab's Kubernetes control plane for `--store kube`: the real kube-apiserver and
/// kube-controller-manager (from `--kube-dir`, `$WEFT_KUBE_DIR`, or `../shared/kube` beside the
/// checkout), in the underlay namespace at 198.18.0.254:6443 on the lab's etcd, with a CA and
/// certificates made by openssl, RBAC on, and the `nodeipam` controller giving each Node its
/// podCIDR, as a kubeadm cluster's does. Every node's daemon runs `--kube-subnet-mgr` as a user
/// bound to kube-flannel.yml's ClusterRole.
struct LabKube {
    let lab: Lab
    var directory: String { "\(lab.directory)/kube" }
    static let address = "198.18.0.254"
    static var server: String { "https://\(address):6443" }
    var kubeconfig: String { "\(directory)/flannel.kubeconfig" }

    /// Where the binaries are: a directory holding kube-apiserver and kube-controller-manager, plain or gzipped.
    static func binaryDirectory(_ explicit: String?, weft: String) throws -> String {
        var candidates: [String] = []
        if let explicit { candidates.append(explicit) }
        if let variable = ProcessInfo.processInfo.environment["WEFT_KUBE_DIR"] { candidates.append(variable) }
        if let source = BPFPrograms.sourceDirectory(near: weft) {
            candidates.append(URL(fileURLWithPath: source).appendingPathComponent("../../shared/kube").standardized.path)
        }
        for directory in candidates {
            let manager = FileManager.default
            if ["kube-apiserver", "kube-controller-manager"].allSatisfy({ manager.fileExists(atPath: "\(directory)/\($0)") || manager.fileExists(atPath: "\(directory)/\($0).gz") }) {
                return directory
            }
        }
        throw CommandFailure("--store kube needs kube-apiserver and kube-controller-manager: pass --kube-dir DIR (or set WEFT_KUBE_DIR); looked in \(candidates.joined(separator: ", "))")
    }

    /// Starts the API server and the controller manager (the lab's etcd already runs) and grants the nodes' user flanneld's role.
    func start(_ state: inout LabState, binaries: String, progress: (String) -> Void) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for name in ["kube-apiserver", "kube-controller-manager"] {
            let target = "\(directory)/\(name)"
            if FileManager.default.fileExists(atPath: "\(binaries)/\(name)") {
                try? FileManager.default.removeItem(atPath: target)
                try FileManager.default.copyItem(atPath: "\(binaries)/\(name)", toPath: target)
            } else {
                try Command.must(["sh", "-c", "gunzip -c \"$1\" > \"$2\" && chmod +x \"$2\"", "sh", "\(binaries)/\(name).gz", target])
            }
        }
        try makeCertificates()
        let log = "\(directory)/kube-apiserver.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let apiServer = try ChildProcess(["ip", "netns", "exec", state.underlayNamespace, "\(directory)/kube-apiserver",
            "--etcd-servers=\(state.etcdEndpoint!)", "--bind-address=\(Self.address)", "--advertise-address=\(Self.address)", "--secure-port=6443",
            "--tls-cert-file=\(directory)/server.crt", "--tls-private-key-file=\(directory)/server.key", "--client-ca-file=\(directory)/ca.crt",
            "--service-account-issuer=https://kubernetes.default.svc", "--service-account-key-file=\(directory)/sa.pub",
            "--service-account-signing-key-file=\(directory)/sa.key", "--service-cluster-ip-range=10.96.0.0/16", "--authorization-mode=RBAC",
            "--allow-privileged=true"], output: .file(log), error: .file(log))
        state.kubeAPIServerPID = apiServer.pid
        try state.save()
        var ready = false
        for _ in 0..<600 where !ready {
            ready = (try? request(state, "GET", "/readyz"))?.body == "ok"
            if !ready { usleep(100_000) }
        }
        guard ready else { throw CommandFailure("the lab's kube-apiserver did not become ready within 60 s; see \(log)") }
        progress("kube-apiserver: \(Self.server) in \(state.underlayNamespace), pid \(apiServer.pid)")
        try grantFlannelRole(state)
        let managerLog = "\(directory)/kube-controller-manager.log"
        _ = FileManager.default.createFile(atPath: managerLog, contents: nil)
        let manager = try ChildProcess(["ip", "netns", "exec", state.underlayNamespace, "\(directory)/kube-controller-manager",
            "--kubeconfig=\(directory)/admin.kubeconfig", "--authentication-kubeconfig=\(directory)/admin.kubeconfig",
            "--authorization-kubeconfig=\(directory)/admin.kubeconfig", "--leader-elect=false", "--controllers=nodeipam",
            "--allocate-node-cidrs=true", "--cluster-cidr=10.244.0.0/16", "--node-cidr-mask-size=24", "--service-cluster-ip-range=10.96.0.0/16",
            "--use-service-account-credentials=false", "--bind-address=127.0.0.1", "--secure-port=10257"],
            output: .file(managerLog), error: .file(managerLog))
        state.kubeControllerManagerPID = manager.pid
        try state.save()
        progress("kube-controller-manager: allocating podCIDRs of 10.244.0.0/16, pid \(manager.pid)")
    }

    /// Registers a Node as a kubelet would, with one annotation as kubelets write (the stock flanneld panics on a Node with none).
    func registerNode(_ node: LabState.Node, in state: LabState) throws {
        let body = #"{"apiVersion":"v1","kind":"Node","metadata":{"name":"\#(node.name)","annotations":{"volumes.kubernetes.io/controller-managed-attach-detach":"true"}},"status":{"addresses":[{"type":"InternalIP","address":"\#(node.underlayIP)"}]}}"#
        let response = try request(state, "POST", "/api/v1/nodes", body: body)
        guard response.status == 201 || response.status == 409 else {
            throw CommandFailure("could not register node \(node.name) with the lab's kube-apiserver: HTTP \(response.status) \(response.body.prefix(300))")
        }
    }

    /// One request as the lab's admin, from the underlay namespace.
    func request(_ state: LabState, _ method: String, _ path: String, body: String? = nil) throws -> (status: Int, body: String) {
        var arguments = ["ip", "netns", "exec", state.underlayNamespace, "curl", "-sS", "--max-time", "5", "--cacert", "\(directory)/ca.crt",
                         "--cert", "\(directory)/admin.crt", "--key", "\(directory)/admin.key", "-X", method, "-w", "\n%{http_code}"]
        if let body { arguments += ["-H", "Content-Type: application/json", "--data-binary", body] }
        let result = try Command.run(arguments + [Self.server + path])
        guard result.succeeded, let newline = result.stdout.lastIndex(of: "\n") else {
            throw CommandFailure("curl \(method) \(path): \(result.stderr)")
        }
        return (Int(result.stdout[result.stdout.index(after: newline)...]) ?? 0, String(result.stdout[..<newline]))
    }

    /// kube-flannel.yml's ClusterRole, bound to the nodes' user `weft-node`.
    private func grantFlannelRole(_ state: LabState) throws {
        let role = #"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"flannel"},"rules":[{"apiGroups":[""],"resources":["pods"],"verbs":["get"]},{"apiGroups":[""],"resources":["nodes"],"verbs":["get","list","watch"]},{"apiGroups":[""],"resources":["nodes/status"],"verbs":["patch"]}]}"#
        let binding = #"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"flannel"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"flannel"},"subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"weft-node"}]}"#
        for (path, body) in [("/apis/rbac.authorization.k8s.io/v1/clusterroles", role), ("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding)] {
            let response = try request(state, "POST", path, body: body)
            guard response.status == 201 || response.status == 409 else {
                throw CommandFailure("could not create flanneld's RBAC in the lab's kube-apiserver: HTTP \(response.status) \(response.body.prefix(300))")
            }
        }
    }

    private func makeCertificates() throws {
        func file(_ name: String) -> String { "\(directory)/\(name)" }
        try Command.must(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=weft-lab-kube-ca",
                          "-keyout", file("ca.key"), "-out", file("ca.crt")])
        try "subjectAltName=IP:\(Self.address),IP:127.0.0.1,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n"
            .write(toFile: file("server.ext"), atomically: true, encoding: .utf8)
        try "extendedKeyUsage=clientAuth\n".write(toFile: file("client.ext"), atomically: true, encoding: .utf8)
        for (name, subject, ext) in [("server", "/CN=kube-apiserver", "server.ext"), ("admin", "/O=system:masters/CN=weft-lab-admin", "client.ext"),
                                     ("flannel", "/CN=weft-node", "client.ext")] {
            try Command.must(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", file("\(name).key"), "-out", file("\(name).csr")])
            try Command.must(["openssl", "x509", "-req", "-in", file("\(name).csr"), "-CA", file("ca.crt"), "-CAkey", file("ca.key"),
                              "-CAcreateserial", "-days", "30", "-extfile", file(ext), "-out", file("\(name).crt")])
        }
        try Command.must(["openssl", "genrsa", "-out", file("sa.key"), "2048"])
        try Command.must(["openssl", "rsa", "-in", file("sa.key"), "-pubout", "-out", file("sa.pub")])
        for (name, user) in [("admin", "weft-lab-admin"), ("flannel", "weft-node")] {
            try """
                apiVersion: v1
                kind: Config
                clusters:
                - name: lab
                  cluster: {server: "\(Self.server)", certificate-authority: ca.crt}
                users:
                - name: \(user)
                  user: {client-certificate: \(name).crt, client-key: \(name).key}
                contexts:
                - name: lab
                  context: {cluster: lab, user: \(user)}
                current-context: lab

                """.write(toFile: file("\(name).kubeconfig"), atomically: true, encoding: .utf8)
        }
    }

    /// Stops the API server and the controller manager it started, by PID, after checking the PID is still theirs.
    func stop(_ state: LabState?, progress: (String) -> Void) {
        for (pid, name) in [(state?.kubeControllerManagerPID, "kube-controller-manager"), (state?.kubeAPIServerPID, "kube-apiserver")] {
            guard let pid, Lab.commandLine(pid).contains(where: { $0 == "\(directory)/\(name)" }) else { continue }
            kill(pid, SIGKILL)
            for _ in 0..<50 where !Lab.commandLine(pid).isEmpty { usleep(100_000) }
            progress("stopped the lab's \(name) (pid \(pid))")
        }
    }
}
