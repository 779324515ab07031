import Foundation
import Testing
import WeftTestSupport

/// deploy/: the DaemonSet manifest against the Kubernetes schemas (kubernetes-validate,
/// offline), and the daemon's command lines in it and in the systemd unit against
/// `weft daemon`'s own parser.
@Suite("What deploy/ holds")
struct DeployTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path
    static let tools = "\(root)/.build/tools/python/bin"

    static func file(_ path: String) throws -> String {
        try String(contentsOfFile: "\(root)/\(path)", encoding: .utf8)
    }

    /// Each manifest, and what `--check-command-line` says of its lease store.
    static let manifests = [("deploy/kube-weft.yml", "store the Kubernetes API (--kube-subnet-mgr)"),
                            ("deploy/kube-weft-etcd.yml", "store etcd https://10.0.0.1:2379")]

    @Test("Each DaemonSet manifest validates against the Kubernetes schemas, strictly", arguments: manifests.map(\.0))
    func manifestValidates(_ manifest: String) throws {
        let validator = "\(Self.tools)/kubernetes-validate"
        try #require(FileManager.default.isExecutableFile(atPath: validator), "kubernetes-validate is missing: run scripts/setup, which installs it")
        let result = try Command.run([validator, "--strict", "--quiet", "\(Self.root)/\(manifest)"])
        #expect(result.succeeded, "\(result.stdout)\(result.stderr)")
        // The validator does fail: a misspelt field is caught.
        let files = try TemporaryDirectory()
        let broken = try Self.file(manifest).replacingOccurrences(of: "hostNetwork: true", with: "hostNetwrk: true")
        let bad = try Command.run([validator, "--strict", "--quiet", try files.write("bad.yml", broken)])
        #expect(!bad.succeeded, "\(bad.stdout)")
    }

    @Test("Each manifest is accepted by the real kube-apiserver: every object in a server-side dry run, with strict field validation",
          .enabled(if: KubeControlPlane.isAvailable, "\(KubeControlPlane.unavailable)"))
    func manifestsPassAServerSideDryRun() throws {
        // One API server for both: it is the heaviest thing a test starts.
        let plane = try KubeControlPlane(allocateNodeCIDRs: false)
        for (manifest, _) in Self.manifests { try dryRun(manifest, on: plane) }
    }

    func dryRun(_ manifest: String, on plane: KubeControlPlane) throws {
        let documents = try Self.file(manifest).components(separatedBy: "\n---\n").dropFirst()
        let collections = ["Namespace": "/api/v1/namespaces", "ServiceAccount": "/api/v1/namespaces/kube-weft/serviceaccounts",
                           "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
                           "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
                           "ConfigMap": "/api/v1/namespaces/kube-weft/configmaps", "DaemonSet": "/apis/apps/v1/namespaces/kube-weft/daemonsets"]
        var kinds: [String] = []
        for document in documents {
            let kind = try #require(document.split(separator: "\n").first { $0.hasPrefix("kind: ") }).dropFirst("kind: ".count)
            let collection = try #require(collections[String(kind)], "a \(kind) in \(manifest)")
            // The namespace for real, so the namespaced objects have one; everything else dry.
            let query = kind == "Namespace" ? "?fieldValidation=Strict" : "?dryRun=All&fieldValidation=Strict"
            let response = try plane.admin(["POST", collection + query], body: document, contentType: "application/yaml")
            let accepted = response.status == 201 || (kind == "Namespace" && response.status == 409)
            #expect(accepted, "\(manifest) \(kind): HTTP \(response.status) \(response.body.prefix(600))")
            kinds.append(String(kind))
        }
        #expect(Set(kinds).isSuperset(of: ["Namespace", "ServiceAccount", "ConfigMap", "DaemonSet"]), "\(kinds)")
        if manifest.hasSuffix("kube-weft.yml") { #expect(kinds.contains("ClusterRole") && kinds.contains("ClusterRoleBinding")) }
        // And the server does refuse: a misspelt field fails the same dry run.
        let daemonSet = try #require(documents.first { $0.contains("kind: DaemonSet") })
        let refused = try plane.admin(["POST", collections["DaemonSet"]! + "?dryRun=All&fieldValidation=Strict"],
                                      body: daemonSet.replacingOccurrences(of: "hostNetwork: true", with: "hostNetwrk: true"), contentType: "application/yaml")
        #expect(refused.status == 400, "\(refused.status) \(refused.body.prefix(300))")
    }

    @Test("Each DaemonSet's daemon command line, with its environment, is one weft daemon takes; so are its mounts", arguments: manifests)
    func manifestCommandLineParses(_ manifest: String, store: String) throws {
        let python = "\(Self.tools)/python"
        try #require(FileManager.default.isExecutableFile(atPath: python), "the tools' Python is missing: run scripts/setup")
        // PyYAML comes with kubernetes-validate.
        let extract = """
            import json, sys, yaml
            docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
            config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
            spec = next(d for d in docs if d["kind"] == "DaemonSet")["spec"]["template"]["spec"]
            daemon = spec["containers"][0]
            env = {e["name"]: config[e["valueFrom"]["configMapKeyRef"]["key"]] for e in daemon["env"] if "configMapKeyRef" in e.get("valueFrom", {})}
            env.update({e["name"]: "from-" + e["valueFrom"]["fieldRef"]["fieldPath"] for e in daemon["env"] if "fieldRef" in e.get("valueFrom", {})})
            mounts = {m["mountPath"]: m.get("mountPropagation", "") for m in daemon["volumeMounts"]}
            print(json.dumps({"command": daemon["command"] + daemon["args"], "env": env, "mounts": mounts,
                              "privileged": daemon["securityContext"]["privileged"], "hostNetwork": spec["hostNetwork"],
                              "cni": json.loads(config["cni-conf.json"])["plugins"][0]["type"]}))
            """
        let files = try TemporaryDirectory()
        let output = try Command.must([python, try files.write("extract.py", extract), "\(Self.root)/\(manifest)"])
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        let command = try #require(parsed["command"] as? [String])
        let environment = try #require(parsed["env"] as? [String: String])
        #expect(command.prefix(2) == ["/usr/local/bin/weft", "daemon"])
        #expect(command.contains("--ip-masq"))
        let check = try Command.run(["env"] + environment.map { "\($0.key)=\($0.value)" }
            + [WeftProcess.binary] + command.dropFirst() + ["--check-command-line"])
        #expect(check.succeeded, "\(check.stderr)")
        #expect(check.stdout.contains(store), "\(check.stdout)")
        #expect(check.stdout.contains("ip-masq true"), "\(check.stdout)")
        let mounts = try #require(parsed["mounts"] as? [String: String])
        #expect(mounts["/run/weft"] == "Bidirectional", "the bpffs mount must reach the host")
        #expect(mounts["/run/flannel"] != nil)
        #expect(parsed["privileged"] as? Bool == true && parsed["hostNetwork"] as? Bool == true)
        #expect(parsed["cni"] as? String == "weft-cni")
    }

    @Test("The systemd unit is Type=notify and its ExecStart, with the settings file beside it, is one weft daemon takes")
    func systemdUnitParses() throws {
        let unit = try Self.file("deploy/weft.service")
        let lines = unit.split(separator: "\n").map(String.init)
        #expect(lines.contains("Type=notify"))
        #expect(lines.contains("EnvironmentFile=-/etc/default/weft"))
        let execStart = try #require(lines.first { $0.hasPrefix("ExecStart=") }).dropFirst("ExecStart=".count)
        let command = execStart.split(separator: " ").map(String.init)
        #expect(command.prefix(2) == ["/usr/local/bin/weft", "daemon"])
        let settings = try Self.file("deploy/weft.env").split(separator: "\n")
            .filter { !$0.hasPrefix("#") && $0.contains("=") }.map(String.init)
        #expect(settings.contains("FLANNELD_IP_MASQ=true"))
        let check = try Command.run(["env"] + settings + [WeftProcess.binary] + command.dropFirst() + ["--check-command-line"])
        #expect(check.succeeded, "\(check.stderr)")
        #expect(check.stdout.contains("ip-masq true"), "\(check.stdout)")
        // And every commented setting in it is a variable the daemon reads, not one it would warn about.
        let all = try Self.file("deploy/weft.env").split(separator: "\n").compactMap { line -> String? in
            let text = line.hasPrefix("#") ? line.dropFirst() : line[...]
            guard text.hasPrefix("FLANNELD_"), let equals = text.firstIndex(of: "=") else { return nil }
            return String(text[..<equals])
        }
        let everything = try Command.run(["env"] + all.map { "\($0)=x" } + [WeftProcess.binary, "daemon", "--check-command-line", "--log-level", "warning"])
        #expect(!everything.stderr.contains("does not implement"), "\(everything.stderr)")
    }
}
