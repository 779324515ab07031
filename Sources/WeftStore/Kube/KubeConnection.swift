import Foundation
import Yams

/// How to reach the Kubernetes API, as flanneld finds it: `--kube-api-url` and
/// `--kubeconfig-file`, else the pod's in-cluster configuration (the service account's token
/// and CA, `KUBERNETES_SERVICE_HOST` and `_PORT`). Credentials are PEM text, read at start, so
/// a bad file is named with the flag or the kubeconfig entry that gave it.
public struct KubeConnection: Sendable, Equatable {
    public var server: String
    public var caPEM: String?
    public var clientCertificatePEM: String?
    public var clientKeyPEM: String?
    /// A bearer token, or the file it is read from on every request (a projected token is rotated).
    public var token: String?
    public var tokenFile: String?
    /// Where it came from, for errors.
    public var source: String

    public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// flanneld's order: a kubeconfig when given (its server replaced by `apiURL` when that is
    /// given too), else `apiURL` alone, else the in-cluster configuration.
    public static func resolve(apiURL: String?, kubeconfig: String?, environment: [String: String],
                               serviceAccount: String = serviceAccountDirectory) throws(KubeError) -> KubeConnection {
        if let kubeconfig, !kubeconfig.isEmpty {
            var connection = try fromKubeconfig(kubeconfig)
            if let apiURL, !apiURL.isEmpty { connection.server = apiURL }
            return connection
        }
        if let host = environment["KUBERNETES_SERVICE_HOST"], let port = environment["KUBERNETES_SERVICE_PORT"], !host.isEmpty {
            let hostPart = host.contains(":") ? "[\(host)]" : host
            let ca = try read("\(serviceAccount)/ca.crt", what: "the service account's CA")
            return KubeConnection(server: apiURL.flatMap { $0.isEmpty ? nil : $0 } ?? "https://\(hostPart):\(port)", caPEM: ca,
                                  tokenFile: "\(serviceAccount)/token", source: "the in-cluster configuration (\(serviceAccount))")
        }
        if let apiURL, !apiURL.isEmpty { return KubeConnection(server: apiURL, source: "--kube-api-url") }
        throw KubeError.misconfigured("no way to reach the Kubernetes API: pass --kubeconfig-file or --kube-api-url, or run in a pod (KUBERNETES_SERVICE_HOST is not set)")
    }

    /// Reads a kubeconfig: its current context's cluster (`server`, `certificate-authority[-data]`)
    /// and user (`client-certificate[-data]`, `client-key[-data]`, `token`, `tokenFile`). Paths are
    /// relative to the kubeconfig's directory, as kubectl reads them.
    public static func fromKubeconfig(_ path: String) throws(KubeError) -> KubeConnection {
        let text = try read(path, what: "--kubeconfig-file")
        let document: Any?
        do {
            document = try Yams.load(yaml: text)
        } catch {
            throw KubeError.misconfigured("--kubeconfig-file \(path) is not YAML: \(error)")
        }
        guard let root = document as? [String: Any] else { throw KubeError.misconfigured("--kubeconfig-file \(path) is not a kubeconfig (no mapping at the top)") }
        func named(_ list: String, _ name: String, _ member: String) throws(KubeError) -> [String: Any] {
            let entries = root[list] as? [[String: Any]] ?? []
            guard let entry = entries.first(where: { $0["name"] as? String == name }), let body = entry[member] as? [String: Any] else {
                throw KubeError.misconfigured("--kubeconfig-file \(path): no \(member) named \"\(name)\" under \(list)")
            }
            return body
        }
        let contexts = root["contexts"] as? [[String: Any]] ?? []
        let contextName = root["current-context"] as? String ?? (contexts.count == 1 ? contexts[0]["name"] as? String : nil)
        guard let contextName else { throw KubeError.misconfigured("--kubeconfig-file \(path): no current-context") }
        let context = try named("contexts", contextName, "context")
        guard let clusterName = context["cluster"] as? String else { throw KubeError.misconfigured("--kubeconfig-file \(path): context \(contextName) names no cluster") }
        let cluster = try named("clusters", clusterName, "cluster")
        guard let server = cluster["server"] as? String, !server.isEmpty else {
            throw KubeError.misconfigured("--kubeconfig-file \(path): cluster \(clusterName) has no server")
        }
        let user = try (context["user"] as? String).map { (name: String) throws(KubeError) in try named("users", name, "user") } ?? [:]
        let directory = (path as NSString).deletingLastPathComponent
        func resolved(_ file: String) -> String { file.hasPrefix("/") ? file : "\(directory)/\(file)" }
        func pem(_ section: [String: Any], _ key: String) throws(KubeError) -> String? {
            if let data = section["\(key)-data"] as? String {
                guard let decoded = Data(base64Encoded: data, options: .ignoreUnknownCharacters), let text = String(data: decoded, encoding: .utf8) else {
                    throw KubeError.misconfigured("--kubeconfig-file \(path): \(key)-data is not base64 of a PEM file")
                }
                return text
            }
            if let file = section[key] as? String { return try read(resolved(file), what: "\(key) of --kubeconfig-file \(path)") }
            return nil
        }
        return KubeConnection(server: server, caPEM: try pem(cluster, "certificate-authority"),
                              clientCertificatePEM: try pem(user, "client-certificate"), clientKeyPEM: try pem(user, "client-key"),
                              token: user["token"] as? String, tokenFile: (user["tokenFile"] as? String).map(resolved),
                              source: "--kubeconfig-file \(path)")
    }

    private static func read(_ path: String, what: String) throws(KubeError) -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw KubeError.misconfigured("\(what) \(path) cannot be read: \(error.localizedDescription); check the path and its mode")
        }
    }
}
