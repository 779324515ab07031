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

    @Test("The DaemonSet manifest validates against the Kubernetes schemas, strictly")
    func manifestValidates() throws {
        let validator = "\(Self.tools)/kubernetes-validate"
        try #require(FileManager.default.isExecutableFile(atPath: validator), "kubernetes-validate is missing: run scripts/setup, which installs it")
        let result = try Command.run([validator, "--strict", "--quiet", "\(Self.root)/deploy/kube-weft.yml"])
        #expect(result.succeeded, "\(result.stdout)\(result.stderr)")
        // The validator does fail: a misspelt field is caught.
        let files = try TemporaryDirectory()
        let broken = try Self.file("deploy/kube-weft.yml").replacingOccurrences(of: "hostNetwork: true", with: "hostNetwrk: true")
        let bad = try Command.run([validator, "--strict", "--quiet", try files.write("bad.yml", broken)])
        #expect(!bad.succeeded, "\(bad.stdout)")
    }

    @Test("The DaemonSet's daemon command line, with its environment, is one weft daemon takes; so are its mounts")
    func manifestCommandLineParses() throws {
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
            mounts = {m["mountPath"]: m.get("mountPropagation", "") for m in daemon["volumeMounts"]}
            print(json.dumps({"command": daemon["command"] + daemon["args"], "env": env, "mounts": mounts,
                              "privileged": daemon["securityContext"]["privileged"], "hostNetwork": spec["hostNetwork"],
                              "cni": json.loads(config["cni-conf.json"])["plugins"][0]["type"]}))
            """
        let files = try TemporaryDirectory()
        let output = try Command.must([python, try files.write("extract.py", extract), "\(Self.root)/deploy/kube-weft.yml"])
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        let command = try #require(parsed["command"] as? [String])
        let environment = try #require(parsed["env"] as? [String: String])
        #expect(command.prefix(2) == ["/usr/local/bin/weft", "daemon"])
        #expect(command.contains("--ip-masq"))
        let check = try Command.run(["env"] + environment.map { "\($0.key)=\($0.value)" }
            + [WeftProcess.binary] + command.dropFirst() + ["--check-command-line"])
        #expect(check.succeeded, "\(check.stderr)")
        #expect(check.stdout.contains("store etcd https://10.0.0.1:2379"), "\(check.stdout)")
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
