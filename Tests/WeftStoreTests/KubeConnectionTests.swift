import Foundation
import Testing
import WeftCore
@testable import WeftStore
import WeftTestSupport

@Suite("Reaching the Kubernetes API as flanneld does: kubeconfig, --kube-api-url, in-cluster; and reading a watch")
struct KubeConnectionTests {
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

    @Test("A kubeconfig with inline data: the current context's server, CA, client certificate and key")
    func inlineData() throws {
        let files = try TemporaryDirectory()
        let data = Data(pem.utf8).base64EncodedString()
        let path = try files.write("config", """
            apiVersion: v1
            kind: Config
            current-context: b
            clusters:
            - name: a
              cluster: {server: "https://wrong:6443"}
            - name: cb
              cluster:
                server: https://10.0.0.1:6443
                certificate-authority-data: \(data)
            users:
            - name: ub
              user:
                client-certificate-data: \(data)
                client-key-data: \(data)
            contexts:
            - name: b
              context: {cluster: cb, user: ub}
            """)
        let connection = try KubeConnection.fromKubeconfig(path)
        #expect(connection.server == "https://10.0.0.1:6443")
        #expect(connection.caPEM == pem && connection.clientCertificatePEM == pem && connection.clientKeyPEM == pem)
        #expect(connection.token == nil)
    }

    @Test("A kubeconfig with files relative to itself and a token; --kube-api-url replaces its server")
    func filesAndToken() throws {
        let files = try TemporaryDirectory()
        try files.write("ca.crt", pem)
        let path = try files.write("config", """
            clusters:
            - name: c
              cluster: {server: "https://10.0.0.1:6443", certificate-authority: ca.crt}
            users:
            - name: u
              user: {token: abc}
            contexts:
            - name: x
              context: {cluster: c, user: u}
            """)
        let connection = try KubeConnection.resolve(apiURL: "https://10.0.0.9:6443", kubeconfig: path, environment: [:])
        #expect(connection.server == "https://10.0.0.9:6443")
        #expect(connection.caPEM == pem && connection.token == "abc")
    }

    @Test("In a pod: the service account's CA and token file, and KUBERNETES_SERVICE_HOST and _PORT")
    func inCluster() throws {
        let account = try TemporaryDirectory()
        try account.write("ca.crt", pem)
        try account.write("token", "t0k3n\n")
        let connection = try KubeConnection.resolve(apiURL: nil, kubeconfig: nil,
                                                    environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"],
                                                    serviceAccount: account.path)
        #expect(connection.server == "https://10.96.0.1:443")
        #expect(connection.tokenFile == account.file("token"))
    }

    @Test("Bad configurations name what to fix", arguments: [
        ("no source", nil as String?, "pass --kubeconfig-file or --kube-api-url"),
        ("missing file", "/nonexistent/kubeconfig", "--kubeconfig-file /nonexistent/kubeconfig cannot be read"),
    ])
    func problems(_ label: String, kubeconfig: String?, expected: String) {
        #expect { try KubeConnection.resolve(apiURL: nil, kubeconfig: kubeconfig, environment: [:]) } throws: { error in
            "\(error)".contains(expected)
        }
    }

    @Test("A context naming a cluster the file lacks is named")
    func missingCluster() throws {
        let files = try TemporaryDirectory()
        let path = try files.write("config", "current-context: x\ncontexts:\n- name: x\n  context: {cluster: nowhere}\n")
        #expect { try KubeConnection.fromKubeconfig(path) } throws: { "\($0)".contains("no cluster named \"nowhere\"") }
    }

    @Test("Watch lines: added, modified, deleted and bookmarks; a 410 ERROR is `expired`")
    func watchLines() throws {
        let node = #"{"metadata":{"name":"n2","resourceVersion":"7"}}"#
        #expect(try KubeClient.event(Array(#"{"type":"ADDED","object":\#(node)}"#.utf8)) == .added(KubeNode(name: "n2", resourceVersion: "7")))
        #expect(try KubeClient.event(Array(#"{"type":"DELETED","object":\#(node)}"#.utf8)) == .deleted(KubeNode(name: "n2", resourceVersion: "7")))
        #expect(try KubeClient.event(Array(#"{"type":"BOOKMARK","object":{"kind":"Node","metadata":{"resourceVersion":"99"}}}"#.utf8))
            == .bookmark(resourceVersion: "99"))
        #expect(throws: KubeError.expired) {
            try KubeClient.event(Array(#"{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version"}}"#.utf8))
        }
        #expect(try KubeClient.event([]) == nil)
    }
}
