import Foundation
import Glibc
import WeftTestSupport

/// The stock flanneld and Flannel CNI plugin in `../shared/flannel/`, unpacked into a
/// directory of the test's own; nil (the test skips, naming the folder) when absent.
struct StockFlannel {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../shared/flannel").standardized.path

    static var isAvailable: Bool { FileManager.default.fileExists(atPath: "\(folder)/flanneld-v0.20.2.gz") }

    let flanneld: String
    let plugin: String

    init(into directory: TemporaryDirectory) throws {
        flanneld = directory.file("flanneld")
        plugin = directory.file("flannel")
        for (archive, binary) in [("flanneld-v0.20.2.gz", flanneld), ("flannel-cni-v1.1.2.gz", plugin)] {
            try Command.must(["sh", "-c", "gunzip -c '\(Self.folder)/\(archive)' > '\(binary)' && chmod +x '\(binary)'"])
        }
    }
}

/// A stock Flannel node beside a lab on etcd: its own namespace on the lab's underlay
/// bridge, flanneld against the lab's etcd, and a pod made by Flannel's CNI plugin with the
/// real bridge and host-local plugins. Everything goes when the test ends.
final class FlannelNode {
    let namespaces = Namespaces()
    let files: TemporaryDirectory
    let node: String
    let pod: String
    let address: String
    private var daemon: ChildProcess
    private(set) var podIP = ""
    private let flanneld: String
    /// flanneld's command line, which a takeover gives `weft daemon` unchanged.
    let flags: [String]
    /// `NODE_NAME` in kube mode.
    private let environment: [String]

    var subnetFile: String { files.file("subnet.env") }
    var log: String { (try? String(contentsOfFile: files.file("flanneld.log"), encoding: .utf8)) ?? "" }

    /// - Parameters:
    ///   - flags: more of flanneld's flags, such as `--ip-masq`.
    ///   - kubeNode: run flanneld in kube mode (`--kube-subnet-mgr`) as this Node, against a lab up with `--store kube`.
    init(beside lab: LabFixture, address: String = "198.18.0.50", flags: [String] = [], kubeNode: String? = nil) throws {
        files = try TemporaryDirectory()
        let flannel = try StockFlannel(into: files)
        self.address = address
        node = try namespaces.add("flannel")
        pod = try namespaces.add("flannel-pod")
        let underlay = "weft-\(lab.name)-underlay"
        try namespaces.topology.plug(.init(node, "eth0", "\(address)/24"), into: underlay, as: "\(namespaces.tag)f")
        flanneld = flannel.flanneld
        let store = kubeNode.map { _ in ["--kube-subnet-mgr", "--kubeconfig-file=\(lab.directory)/kube/flannel.kubeconfig",
                                        "--net-config-path=\(lab.directory)/net-conf.json"] } ?? ["--etcd-endpoints=http://198.18.0.254:2379"]
        self.flags = store + ["--iface=eth0", "--subnet-file=\(files.file("subnet.env"))"] + flags
        environment = kubeNode.map { ["env", "NODE_NAME=\($0)"] } ?? []
        daemon = try Self.startFlanneld(flanneld, in: node, flags: self.flags, environment: environment, log: files.file("flanneld.log"))
        guard try waitUntil(seconds: 30, { FileManager.default.fileExists(atPath: self.files.file("subnet.env")) }) else {
            daemon.kill()
            throw Command.Failure(arguments: ["flanneld"], result: Command.Result(status: -1, stdout: "", stderr: String(self.log.suffix(3000))))
        }
        let config = #"{"cniVersion":"0.3.1","name":"cbr0","type":"flannel","subnetFile":"\#(files.file("subnet.env"))","#
            + #""dataDir":"\#(files.file("cni"))","delegate":{"hairpinMode":true,"isDefaultGateway":true}}"#
        let add = try Command.run(["ip", "netns", "exec", node, "env", "CNI_COMMAND=ADD", "CNI_CONTAINERID=\(pod)", "CNI_NETNS=/run/netns/\(pod)",
                                   "CNI_IFNAME=eth0", "CNI_PATH=/usr/lib/cni", flannel.plugin], input: config)
        guard add.succeeded, let result = try JSONSerialization.jsonObject(with: Data(add.stdout.utf8)) as? [String: Any],
              let cidr = (result["ips"] as? [[String: Any]])?.first?["address"] as? String else {
            daemon.kill()
            throw Command.Failure(arguments: ["flannel CNI ADD"], result: add)
        }
        podIP = String(cidr.prefix { $0 != "/" })
    }

    private static func startFlanneld(_ flanneld: String, in node: String, flags: [String], environment: [String], log: String) throws -> ChildProcess {
        try ChildProcess(["ip", "netns", "exec", node] + environment + [flanneld] + flags, output: .file(log), error: .file(log))
    }

    /// Ends flanneld at once (it often panics on SIGTERM anyway), leaving what it programmed.
    func stopFlanneld() {
        daemon.kill()
    }

    /// Starts flanneld again with the same command line.
    func restartFlanneld() throws {
        daemon.kill()
        daemon = try Self.startFlanneld(flanneld, in: node, flags: flags, environment: environment, log: files.file("flanneld.log"))
    }

    /// `FLANNEL_SUBNET` of subnet.env as the subnet (10.244.7.0/24).
    var subnet: String? {
        (try? String(contentsOfFile: subnetFile, encoding: .utf8))?.split(separator: "\n")
            .first { $0.hasPrefix("FLANNEL_SUBNET=") }
            .map { String($0.dropFirst("FLANNEL_SUBNET=".count)).replacingOccurrences(of: ".1/", with: ".0/") }
    }

    /// `FLANNEL_MTU` from flanneld's subnet.env.
    var mtu: Int? {
        (try? String(contentsOfFile: subnetFile, encoding: .utf8))?.split(separator: "\n")
            .first { $0.hasPrefix("FLANNEL_MTU=") }.flatMap { Int($0.dropFirst("FLANNEL_MTU=".count)) }
    }

    deinit {
        // flanneld often panics on SIGTERM (upstream issue 1714): end it at once.
        daemon.kill()
    }
}
