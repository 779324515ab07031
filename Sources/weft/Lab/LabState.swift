import Foundation

/// What a lab is made of, kept in `<lab dir>/lab.json` so status, check, exec and down
/// (even after a crash) find every namespace, process and file it made.
struct LabState: Codable {
    struct Node: Codable {
        var name: String          // n1
        var namespace: String     // weft-lab-n1
        var underlayIP: String    // 198.18.0.1
        var dataplane: String     // bpf | kernel
        var directory: String     // <lab dir>/n1
        var daemonPID: Int32?
        var pods: [Pod] = []

        var pinDirectory: String { "\(directory)/bpf" }
        var subnetFile: String { "\(directory)/subnet.env" }
        var statusFile: String { "\(directory)/status.json" }
        var logFile: String { "\(directory)/daemon.log" }
    }

    struct Pod: Codable {
        var name: String          // n1-p1
        var namespace: String     // weft-lab-n1-p1
        var ip: String?
    }

    var name: String
    var directory: String
    var backend: String
    var storeFile: String
    /// The lab's own etcd (in the underlay namespace), when it runs on etcd.
    var etcdEndpoint: String?
    var etcdPID: Int32?
    /// `--store kube`: the kubeconfig every node's daemon uses, and the control plane's processes.
    var kubeconfig: String?
    var kubeAPIServerPID: Int32?
    var kubeControllerManagerPID: Int32?

    /// How a daemon or a `weft leases` in a node reaches the store.
    var storeArguments: [String] {
        if let kubeconfig { return ["--kube-subnet-mgr", "--kubeconfig-file", kubeconfig, "--net-config-path", "\(directory)/net-conf.json"] }
        return etcdEndpoint.map { ["--etcd-endpoints", $0] } ?? ["--store-file", storeFile]
    }

    /// What `weft lab status` says of the store.
    var storeDescription: String {
        if kubeconfig != nil { return "kube \(LabKube.server) (etcd \(etcdEndpoint ?? "?"))" }
        return etcdEndpoint.map { "etcd \($0)" } ?? "embedded \(storeFile)"
    }
    var underlayNamespace: String
    var nodes: [Node]
    /// Flags every node's daemon gets besides its own (`--ip-masq`).
    var daemonFlags: [String]?

    static func load(_ directory: String) -> LabState? {
        guard let data = FileManager.default.contents(atPath: "\(directory)/lab.json") else { return nil }
        return try? JSONDecoder().decode(LabState.self, from: data)
    }

    func save() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: "\(directory)/lab.json"), options: .atomic)
    }

    /// The namespace of a node (`n1`) or a pod (`n1-p2`).
    func namespace(of target: String) -> String? {
        for node in nodes {
            if node.name == target { return node.namespace }
            if let pod = node.pods.first(where: { $0.name == target }) { return pod.namespace }
        }
        return nil
    }
}
