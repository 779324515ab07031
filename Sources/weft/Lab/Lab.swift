import Foundation
import WeftShell
import Glibc
import WeftBPF
import WeftTopology

/// A Weft cluster on this machine: N node namespaces on one underlay bridge, a daemon in
/// each on the embedded store, and pods made through weft-cni with the real bridge and
/// host-local plugins. Everything it makes is named `weft-<name>-*` and recorded in
/// `/run/weft-<name>/lab.json`, so `down` removes it all, even after a crash.
struct Lab {
    let name: String

    var prefix: String { "weft-\(name)-" }
    var directory: String { "/run/weft-\(name)" }
    static func networkConfig(backend: String, mtu: Int?, nftables: Bool = false) -> String {
        #"{"Network":"10.244.0.0/16","Backend":{"Type":"\#(backend)"\#(mtu.map { #","MTU":\#($0)"# } ?? "")}\#(nftables ? #","EnableNFTables":true"# : "")}"#
    }

    /// The weft and weft-cni binaries beside this one.
    var weft: String { URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path }
    var plugin: String { URL(fileURLWithPath: weft).deletingLastPathComponent().appendingPathComponent("weft-cni").path }

    func existingNamespaces() throws -> [String] {
        try Topology.existing(prefix: prefix)
    }

    // MARK: up

    /// - Parameter kubeDirectory: where `--store kube` finds kube-apiserver and kube-controller-manager.
    func up(nodes count: Int, podsPerNode: Int, backend: String, dataplane: String, store: String, mtu: Int? = nil,
            ipMasq: Bool = false, nftables: Bool = false, kubeDirectory: String? = nil, progress: (String) -> Void) throws -> LabState {
        if try LabState.load(directory) != nil || !existingNamespaces().isEmpty {
            throw CommandFailure("a lab named \(name) is already running (\(directory)); use it, or take it down first with `weft lab down\(name == "lab" ? "" : " --name \(name)")`")
        }
        guard FileManager.default.isExecutableFile(atPath: plugin) else {
            throw CommandFailure("weft-cni is missing beside \(weft); build it with `swift build` (scripts/setup does)")
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var state = LabState(name: name, directory: directory, backend: backend, storeFile: "\(directory)/leases.db",
                             underlayNamespace: "\(prefix)underlay", nodes: [], daemonFlags: ipMasq ? ["--ip-masq"] : [])
        try state.save()

        progress("underlay: bridge br0 in \(state.underlayNamespace), 198.18.0.0/24")
        let topology = Topology(prefix: prefix)
        try topology.addSwitch("underlay")
        let configFile = "\(directory)/net-conf.json"
        try Self.networkConfig(backend: backend, mtu: mtu, nftables: nftables).write(toFile: configFile, atomically: true, encoding: .utf8)
        let kube = LabKube(lab: self)
        let kubeBinaries = store == "kube" ? try LabKube.binaryDirectory(kubeDirectory, weft: weft) : nil
        if store == "etcd" || store == "kube" {
            try startEtcd(&state)
            progress("etcd: \(state.etcdEndpoint!) in \(state.underlayNamespace), pid \(state.etcdPID!)")
        }
        if let kubeBinaries {
            try kube.start(&state, binaries: kubeBinaries, progress: progress)
            state.kubeconfig = kube.kubeconfig
            try state.save()
        } else {
            try Command.must(["ip", "netns", "exec", state.underlayNamespace, weft, "config", "put", configFile] + state.storeArguments)
        }

        for index in 1...count {
            let mode = dataplane == "mixed" ? (index % 2 == 1 ? "bpf" : "kernel") : dataplane
            var node = LabState.Node(name: "n\(index)", namespace: "\(prefix)n\(index)", underlayIP: "198.18.0.\(index)",
                                     dataplane: mode, directory: "\(directory)/n\(index)")
            state.nodes.append(node)
            try state.save()
            try FileManager.default.createDirectory(atPath: node.directory, withIntermediateDirectories: true)
            try topology.addNode(node.name)
            try topology.plug(.init(node.namespace, "eth0", "\(node.underlayIP)/24"), into: state.underlayNamespace, as: node.name)
            if state.kubeconfig != nil {
                try kube.registerNode(node, in: state)
                progress("node \(node.name): registered with the API server, as a kubelet registers its Node")
            }
            node.daemonPID = try startDaemon(node, in: state)
            state.nodes[index - 1] = node
            try state.save()
            progress("node \(node.name): \(node.namespace), underlay \(node.underlayIP), \(mode) dataplane, daemon pid \(node.daemonPID!)")
        }
        for (index, node) in state.nodes.enumerated() {
            let subnet = try waitUntilReady(node)
            progress("node \(node.name): ready, subnet \(subnet)")
            for podIndex in 0..<podsPerNode {
                var pod = LabState.Pod(name: "\(node.name)-p\(podIndex + 1)", namespace: "\(node.namespace)-p\(podIndex + 1)")
                state.nodes[index].pods.append(pod)
                try state.save()
                try topology.addNamespace(pod.name)
                pod.ip = try addPod(pod, on: node)
                state.nodes[index].pods[podIndex] = pod
                try state.save()
                progress("pod \(pod.name): \(pod.ip ?? "?") (weft-cni, bridge + host-local\(node.dataplane == "bpf" ? ", BPF endpoint" : ""))")
            }
        }
        for node in state.nodes {
            try waitUntilMeshed(node, peers: state.nodes.count - 1)
        }
        progress("every node programs every other: the mesh is up")
        return state
    }

    /// Waits until a node's status lists `peers` peers: the lab is up when every node can
    /// reach every other, not merely when each holds its own lease.
    func waitUntilMeshed(_ node: LabState.Node, peers: Int) throws {
        for _ in 0..<300 {
            if let data = FileManager.default.contents(atPath: node.statusFile),
               let status = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
               (status["peers"] as? [Any])?.count ?? 0 >= peers {
                return
            }
            usleep(100_000)
        }
        throw CommandFailure("node \(node.name) does not program all \(peers) peers after 30 s; see \(node.logFile)")
    }

    private func ip(_ arguments: [String]) throws {
        try Command.must(["ip"] + arguments)
    }

    /// Starts `weft daemon` in the node's namespace; it outlives this command (Foundation
    /// starts it in a process group of its own, so a terminal's signals do not reach it).
    /// `ip netns exec` execs the daemon, so the PID recorded is the daemon's. Its log goes
    /// to the node's directory.
    func startDaemon(_ node: LabState.Node, in state: LabState) throws -> Int32 {
        if node.dataplane == "bpf" { try BPFFilesystem.ensureMounted(at: node.pinDirectory) }
        _ = FileManager.default.createFile(atPath: node.logFile, contents: nil)
        // In kube mode the daemon finds its Node by NODE_NAME, as kube-flannel.yml sets it.
        let environment = state.kubeconfig == nil ? [] : ["env", "NODE_NAME=\(node.name)"]
        let daemon = try ChildProcess(["ip", "netns", "exec", node.namespace] + environment + [weft, "daemon"] + state.storeArguments + (state.daemonFlags ?? []) + ["--iface", "eth0",
                                       "--subnet-file", node.subnetFile, "--pin-dir", node.pinDirectory, "--status-file", node.statusFile,
                                       "--dataplane", node.dataplane, "--healthz-ip", "127.0.0.1", "--healthz-port", "9100",
                                       "--cni-data-dir", "\(node.directory)/cni"],
                                      output: .file(node.logFile), error: .file(node.logFile))
        return daemon.pid
    }

    /// Starts the lab's etcd in the underlay namespace, on the underlay, where every node
    /// reaches it: 198.18.0.254:2379.
    private func startEtcd(_ state: inout LabState) throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/etcd") else {
            throw CommandFailure("--store etcd needs etcd: install etcd-server (scripts/setup does)")
        }
        try ip(["-n", state.underlayNamespace, "addr", "replace", "198.18.0.254/24", "dev", "br0"])
        let endpoint = "http://198.18.0.254:2379"
        let log = "\(directory)/etcd.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let etcd = try ChildProcess(["ip", "netns", "exec", state.underlayNamespace, "/usr/bin/etcd", "--name", "weft-\(name)",
                                     "--data-dir", "\(directory)/etcd", "--listen-client-urls", endpoint, "--advertise-client-urls", endpoint,
                                     "--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
                                     "--initial-cluster", "weft-\(name)=http://127.0.0.1:2380"],
                                    output: .file(log), error: .file(log))
        state.etcdEndpoint = endpoint
        state.etcdPID = etcd.pid
        try state.save()
        for _ in 0..<200 {
            if ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("ready to serve client requests") { return }
            usleep(100_000)
        }
        throw CommandFailure("the lab's etcd did not start within 20 s; see \(log)")
    }

    func waitUntilReady(_ node: LabState.Node) throws -> String {
        for _ in 0..<600 {
            if let data = FileManager.default.contents(atPath: node.statusFile),
               let status = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
               status["ready"] as? Bool == true, let subnet = status["subnet"] as? String {
                return subnet
            }
            if let pid = node.daemonPID, kill(pid, 0) != 0 {
                let log = (try? String(contentsOfFile: node.logFile, encoding: .utf8)) ?? ""
                throw CommandFailure("the daemon of \(node.name) exited; its log (\(node.logFile)) ends:\n"
                    + log.split(separator: "\n").suffix(8).joined(separator: "\n"))
            }
            usleep(100_000)
        }
        throw CommandFailure("the daemon of \(node.name) was not ready after 60 s; see \(node.logFile)")
    }

    private func addPod(_ pod: LabState.Pod, on node: LabState.Node) throws -> String {
        // The lab's pods talk to each other only: no masquerading, which would hide their
        // addresses on host-gw paths (as Flannel's conflist, with the daemon's --ip-masq).
        let config = #"{"cniVersion":"1.0.0","name":"weft-\#(name)","type":"weft-cni","#
            + #""delegate":{"hairpinMode":true,"isDefaultGateway":true,"ipMasq":false},"#
            + #""subnetFile":"\#(node.subnetFile)","dataDir":"\#(node.directory)/cni","ipamDataDir":"\#(node.directory)/ipam","#
            + #""pinDir":"\#(node.pinDirectory)"}"#
        let result = try Command.run(["ip", "netns", "exec", node.namespace, "env", "CNI_COMMAND=ADD", "CNI_CONTAINERID=\(pod.name)",
                                            "CNI_NETNS=/run/netns/\(pod.namespace)", "CNI_IFNAME=eth0", "CNI_PATH=/usr/lib/cni:/opt/cni/bin",
                                            plugin], input: config)
        guard result.succeeded, let document = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
              let ips = document["ips"] as? [[String: Any]], let address = ips.first?["address"] as? String else {
            throw CommandFailure("weft-cni ADD for pod \(pod.name) failed: \(result.stdout)\(result.stderr)")
        }
        return String(address.prefix { $0 != "/" })
    }

    /// Stops a node's daemon if it runs, starts a new one and waits until it is ready:
    /// it reclaims its lease and adopts the dataplane as it finds it.
    func restart(_ target: String, in state: inout LabState) throws -> (pid: Int32, subnet: String) {
        guard let index = state.nodes.firstIndex(where: { $0.name == target }) else {
            throw CommandFailure("no node \(target) in lab \(state.name); there are: \(state.nodes.map(\.name).joined(separator: ", "))")
        }
        if let pid = state.nodes[index].daemonPID, Self.isWeftDaemon(pid) {
            kill(pid, SIGTERM)
            for _ in 0..<50 where Self.isWeftDaemon(pid) { usleep(100_000) }
        }
        try? FileManager.default.removeItem(atPath: state.nodes[index].statusFile)
        state.nodes[index].daemonPID = try startDaemon(state.nodes[index], in: state)
        try state.save()
        return (state.nodes[index].daemonPID!, try waitUntilReady(state.nodes[index]))
    }

    // MARK: check

    /// Every pod pings every pod on the other nodes. Returns the failed pairs.
    func check(_ state: LabState, report: (String) -> Void) throws -> [(String, String)] {
        let pods = state.nodes.flatMap { node in node.pods.map { (node: node.name, pod: $0) } }
        var failures: [(String, String)] = []
        let width = max(8, (pods.map(\.pod.name.count).max() ?? 0) + 2)
        func pad(_ text: String) -> String { text.padding(toLength: width, withPad: " ", startingAt: 0) }
        report(pad("from\\to") + pods.map { pad($0.pod.name) }.joined())
        for source in pods {
            var row = pad(source.pod.name)
            for target in pods {
                guard source.node != target.node, let ip = target.pod.ip else {
                    row += pad("-")
                    continue
                }
                let reached = try Command.run(["ip", "netns", "exec", source.pod.namespace, "ping", "-c", "1", "-W", "2", ip]).succeeded
                    || Command.run(["ip", "netns", "exec", source.pod.namespace, "ping", "-c", "2", "-W", "2", ip]).succeeded
                row += pad(reached ? "ok" : "FAIL")
                if !reached { failures.append((source.pod.name, target.pod.name)) }
            }
            report(row)
        }
        return failures
    }

    // MARK: bad days

    /// Replaces the lab's etcd with an empty one on the same endpoint, as a restore from an
    /// old snapshot or a lost etcd would: every revision starts over. The network config is
    /// put back (an operator restoring a cluster would); the leases are the daemons' to
    /// re-create.
    func wipeStore(_ state: inout LabState) throws {
        guard state.etcdEndpoint != nil, state.kubeconfig == nil else {
            throw CommandFailure("lab \(name) runs on the \(state.kubeconfig != nil ? "Kubernetes API, whose etcd is the API server's, not the leases'" : "embedded store"); wipe-store needs `weft lab up --store etcd`")
        }
        stopEtcd(state)
        try FileManager.default.removeItem(atPath: "\(directory)/etcd")
        try startEtcd(&state)
        try Command.must(["ip", "netns", "exec", state.underlayNamespace, weft, "config", "put", "\(directory)/net-conf.json"] + state.storeArguments)
    }

    private func stopEtcd(_ state: LabState?) {
        guard let pid = state?.etcdPID, Self.commandLine(pid).contains(where: { $0.hasSuffix("etcd") }),
              Self.commandLine(pid).contains("\(directory)/etcd") else { return }
        kill(pid, SIGKILL)
        for _ in 0..<50 where kill(pid, 0) == 0 && !Self.commandLine(pid).isEmpty { usleep(100_000) }
    }

    // MARK: down

    /// Ends the daemons it started (by PID, after checking the PID is still a weft daemon),
    /// deletes its namespaces, unmounts its pin directories and removes its directory.
    func down(progress: (String) -> Void) throws {
        let state = LabState.load(directory)
        for node in state?.nodes ?? [] {
            guard let pid = node.daemonPID, Self.isWeftDaemon(pid) else { continue }
            kill(pid, SIGTERM)
            for _ in 0..<30 where Self.isWeftDaemon(pid) { usleep(100_000) }
            if Self.isWeftDaemon(pid) { kill(pid, SIGKILL) }
            progress("stopped the daemon of \(node.name) (pid \(pid))")
        }
        LabKube(lab: self).stop(state, progress: progress)
        if let pid = state?.etcdPID, !Self.commandLine(pid).isEmpty {
            stopEtcd(state)
            progress("stopped the lab's etcd (pid \(pid))")
        }
        try Topology.remove(prefix: prefix)
        let mounts = (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? ""
        for line in mounts.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count > 1, fields[1].hasPrefix(directory + "/") { umount2(String(fields[1]), Int32(MNT_DETACH)) }
        }
        if FileManager.default.fileExists(atPath: directory) { try FileManager.default.removeItem(atPath: directory) }
        progress("removed the lab \(name): namespaces \(prefix)*, pins and files in \(directory)")
    }

    static func commandLine(_ pid: Int32) -> [String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return [] }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    static func isWeftDaemon(_ pid: Int32) -> Bool {
        let arguments = commandLine(pid)
        return arguments.contains("daemon") && arguments.contains { $0.hasSuffix("weft") }
    }
}
