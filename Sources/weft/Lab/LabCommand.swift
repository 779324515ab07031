import ArgumentParser
import Foundation
import Glibc
import WeftShell

/// `weft lab`: a real Weft cluster on this machine, for trying it and for testing it.
struct LabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab",
        abstract: "A Weft cluster on this machine: node namespaces, a daemon each, pods through weft-cni.",
        subcommands: [Up.self, Status.self, Check.self, Exec.self, Restart.self, WipeStore.self, Down.self])

    struct Name: ParsableArguments {
        @Option(help: "The lab's name: namespaces are weft-<name>-*, files under /run/weft-<name>.")
        var name: String = "lab"

        var lab: Lab { Lab(name: name) }

        func state() throws -> LabState {
            guard let state = LabState.load(lab.directory) else {
                throw CommandFailure("no lab named \(name) is running; start one with `weft lab up --nodes 3`")
            }
            return state
        }
    }

    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create the nodes, start their daemons, create the pods.")
        @OptionGroup var name: Name
        @Option(help: "How many nodes (1 to 200).") var nodes: Int = 3
        @Option(help: "How many pods on each node.") var podsPerNode: Int = 1
        @Option(help: "vxlan or host-gw.") var backend: String = "vxlan"
        @Option(help: "bpf, kernel, or mixed (odd nodes BPF, even nodes kernel).") var dataplane: String = "bpf"
        @Option(help: "The lease store: embedded (a SQLite file shared by the nodes), etcd (a local etcd the lab starts), or kube (the real kube-apiserver and kube-controller-manager the lab starts: every daemon runs --kube-subnet-mgr).") var store: String = "embedded"
        @Option(help: "With --store kube: the directory holding kube-apiserver and kube-controller-manager (plain or .gz). [default: $WEFT_KUBE_DIR, else ../shared/kube beside the checkout]") var kubeDir: String?
        @Option(help: "Backend.MTU for a vxlan lab: the underlay MTU to assume (pods get 50 less).") var mtu: Int?
        @Flag(help: "Run the daemons with --ip-masq: pods reach hosts outside the cluster network under their node's address.") var ipMasq = false
        @Flag(help: "Set EnableNFTables: the masquerade and forward rules go into nftables instead of iptables.") var nftables = false

        func validate() throws {
            guard (1...200).contains(nodes) else { throw ValidationError("--nodes \(nodes): must be 1 to 200") }
            guard (0...50).contains(podsPerNode) else { throw ValidationError("--pods-per-node \(podsPerNode): must be 0 to 50") }
            guard ["vxlan", "host-gw"].contains(backend) else { throw ValidationError("--backend \(backend): must be vxlan or host-gw") }
            guard ["bpf", "kernel", "mixed"].contains(dataplane) else { throw ValidationError("--dataplane \(dataplane): must be bpf, kernel or mixed") }
            guard ["embedded", "etcd", "kube"].contains(store) else { throw ValidationError("--store \(store): must be embedded, etcd or kube") }
            if let mtu, backend != "vxlan" || !(118...65535).contains(mtu) {
                throw ValidationError("--mtu \(mtu): a vxlan lab's Backend.MTU, from 118 to 65535")
            }
        }

        func run() throws {
            guard getuid() == 0 else { throw CommandFailure("weft lab needs root: it creates network namespaces and loads BPF programs") }
            let lab = name.lab
            do {
                let state = try lab.up(nodes: nodes, podsPerNode: podsPerNode, backend: backend, dataplane: dataplane, store: store, mtu: mtu,
                                     ipMasq: ipMasq, nftables: nftables, kubeDirectory: kubeDir) { print("==> \($0)") }
                print("lab \(state.name) is up: \(state.nodes.count) nodes, \(state.nodes.flatMap(\.pods).count) pods. "
                    + "Try `weft lab status`, `weft lab check`, `weft lab exec n1 -- weft maps peers`; remove it with `weft lab down`.")
            } catch let error as CommandFailure where error.message.contains("already running") {
                throw error
            } catch {
                print("==> lab up failed; removing what it made")
                try? lab.down { print("==> \($0)") }
                throw error
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Nodes, subnets, public IPs, dataplanes, health; pods and their IPs.")
        @OptionGroup var name: Name
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let state = try name.state()
            var rows: [[String: Any]] = []
            for node in state.nodes {
                let status = FileManager.default.contents(atPath: node.statusFile)
                    .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] } ?? [:]
                let running = node.daemonPID.map(Lab.isWeftDaemon) ?? false
                rows.append([
                    "node": node.name, "namespace": node.namespace, "subnet": status["subnet"] as? String ?? "-",
                    "publicIP": status["publicIP"] as? String ?? node.underlayIP, "dataplane": status["dataplane"] as? String ?? node.dataplane,
                    "health": running ? ((status["ready"] as? Bool) == true ? "ready" : "starting") : "daemon not running",
                    "pid": Int(node.daemonPID ?? 0),
                    "pods": node.pods.map { ["pod": $0.name, "namespace": $0.namespace, "ip": $0.ip ?? "-"] },
                ])
            }
            if json {
                var document: [String: Any] = ["name": state.name, "backend": state.backend, "nodes": rows,
                                               "store": state.storeDescription]
                if let pid = state.etcdPID { document["etcdPID"] = Int(pid) }
                let data = try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            var nodes = TextTable("NODE", "SUBNET", "PUBLIC-IP", "DATAPLANE", "HEALTH", "PID")
            var pods = TextTable("POD", "NODE", "IP")
            for (row, node) in zip(rows, state.nodes) {
                nodes.add(node.name, row["subnet"] as! String, row["publicIP"] as! String, row["dataplane"] as! String,
                          row["health"] as! String, "\(node.daemonPID ?? 0)")
                for pod in node.pods { pods.add(pod.name, node.name, pod.ip ?? "-") }
            }
            print("lab \(state.name), backend \(state.backend)\n")
            print(nodes.rendered())
            print("\n" + pods.rendered())
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every pod pings every pod on the other nodes; prints the matrix; fails naming each broken pair.")
        @OptionGroup var name: Name

        func run() throws {
            let state = try name.state()
            let failures = try name.lab.check(state) { print($0) }
            guard failures.isEmpty else {
                throw CommandFailure("\(failures.count) pairs cannot reach each other: " + failures.map { "\($0.0) -> \($0.1)" }.joined(separator: ", "))
            }
            let pods = state.nodes.flatMap(\.pods).count
            print("all pods reach each other across nodes (\(pods) pods, \(state.nodes.count) nodes)")
        }
    }

    struct Exec: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a command in a node's or a pod's namespace.",
            discussion: "In a node, `weft maps`, `weft status` and `weft leases` read that node's pins, status and store: weft lab exec n1 -- weft maps peers")
        @OptionGroup var name: Name
        @Argument(help: "A node (n1) or a pod (n1-p1).") var target: String
        @Argument(parsing: .captureForPassthrough, help: "The command, after --.") var command: [String] = []

        func run() throws {
            let state = try name.state()
            guard let namespace = state.namespace(of: target) else {
                let names = state.nodes.flatMap { [$0.name] + $0.pods.map(\.name) }
                throw CommandFailure("no node or pod \(target) in lab \(state.name); there are: \(names.joined(separator: ", "))")
            }
            var arguments = command.first == "--" ? Array(command.dropFirst()) : command
            guard !arguments.isEmpty else { throw CommandFailure("give a command after --, e.g. weft lab exec \(target) -- ip route") }
            if arguments[0] == "weft" { arguments[0] = name.lab.weft }
            let node = state.nodes.first { target == $0.name || target.hasPrefix($0.name + "-") }!
            var environment = ProcessInfo.processInfo.environment
            environment[NodeEnvironment.pinDirectoryVariable] = node.pinDirectory
            environment[NodeEnvironment.statusFileVariable] = node.statusFile
            environment[NodeEnvironment.storeFileVariable] = state.storeFile
            if let endpoint = state.etcdEndpoint, state.kubeconfig == nil { environment["FLANNELD_ETCD_ENDPOINTS"] = endpoint }
            // This process becomes the command (`ip netns exec` execs too), so its exit status
            // and the signals sent to this PID are the command's own.
            try ChildProcess.exec(["ip", "netns", "exec", namespace] + arguments, environment: environment)
        }
    }

    struct Restart: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start a node's daemon again (stopping it first if it runs), and wait until it is ready.")
        @OptionGroup var name: Name
        @Argument(help: "The node, e.g. n1.") var node: String

        func run() throws {
            var state = try name.state()
            let (pid, subnet) = try name.lab.restart(node, in: &state)
            print("node \(node): daemon pid \(pid), ready, subnet \(subnet)")
        }
    }

    struct WipeStore: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace the lab's etcd with an empty one (a restore from an old snapshot, or a lost etcd); the daemons must recover.")
        @OptionGroup var name: Name

        func run() throws {
            var state = try name.state()
            try name.lab.wipeStore(&state)
            try state.save()
            print("lab \(state.name): etcd is empty again at \(state.etcdEndpoint ?? "?") (pid \(state.etcdPID ?? 0)), with the network config")
        }
    }

    struct Down: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove every namespace, process, pin and file of the lab; safe to repeat.")
        @OptionGroup var name: Name

        func run() throws {
            try name.lab.down { print("==> \($0)") }
        }
    }
}
