import ArgumentParser
import Foundation
import Logging
import WeftBPF
import WeftCore
import WeftDaemon
import WeftDataplane
import WeftStore

/// `weft daemon`: the node daemon, with flanneld's flag names and spellings. Every flag can
/// also be set as `FLANNELD_<NAME>` in the environment (`--iface-regex` is
/// FLANNELD_IFACE_REGEX); the command line wins. As in flanneld, a variable gives a
/// repeatable flag one value, and booleans take Go's spellings.
struct DaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Run this node: lease a subnet, write subnet.env, program the dataplane, follow the peers.",
        discussion: "SIGTERM or SIGINT stops it cleanly and leaves the dataplane in place, so pods keep talking.",
        version: WeftVersion.current)

    @OptionGroup var store: StoreOptions

    @Option(help: "Interface to use (a name or one of its IPs). Repeat to give fallbacks, tried in order.")
    var iface: [String] = []
    @Option(help: "Regular expression matching the interface to use (its IP or name). Repeatable.")
    var ifaceRegex: [String] = []
    @Option(help: "Use the interface the host routes this IP through.")
    var ifaceCanReach: String?
    @Option(help: "The IP peers should reach this node at (default: the interface's).")
    var publicIP: String?
    @Option(help: "Where to write subnet.env for the CNI plugin. [default: /run/flannel/subnet.env]")
    var subnetFile: String?
    @Option(help: "Renew the lease this many minutes before it expires. [default: 60]")
    var subnetLeaseRenewMargin: Int?
    @Option(help: "Read net-conf.json from this file instead of <prefix>/config in the store.")
    var netConfigPath: String?
    @Option(help: "Address the health endpoint listens on. [default: 0.0.0.0]")
    var healthzIP: String?
    @Option(help: "Port of /healthz, /readyz and /metrics; 0 serves none. [default: 0]")
    var healthzPort: Int?
    @Flag(help: "Masquerade pod traffic that leaves the cluster network, with flanneld's FLANNEL-POSTRTG chain, and write FLANNEL_IPMASQ=true so the CNI plugin leaves it to the node.")
    var ipMasq = false
    @Flag(help: "Masquerade without --random-fully (fully-random in nftables).")
    var ipMasqFullyRandomDisable = false
    @Flag(inversion: .prefixedNo, help: "Install flanneld's FLANNEL-FWD chain, which accepts forwarded traffic to and from the cluster network whatever FORWARD's policy. [default: on]")
    var iptablesForwardRules: Bool?
    @Option(help: "Seconds between checks of the masquerade and forward rules; a missing rule is put back. [default: 5]")
    var iptablesResync: Int?
    @Flag(inversion: .prefixedNo, help: "On the BPF dataplane, drop what a pod sends from an address not its own (off only for pods that must send from other addresses, such as a router or a VPN gateway in a pod). [default: on]")
    var podSourceCheck: Bool?
    @Flag(inversion: .prefixedNo, help: "Drop plain IP from the underlay to the cluster network unless a direct peer (host-gw, DirectRouting) sent it from its own interface: in from_underlay on the BPF dataplane, in the raw table's WEFT-UNDERLAY chain on the kernel dataplane (off only where routers outside the cluster route to pod IPs). [default: on]")
    var underlaySourceCheck: Bool?
    @Option(help: "auto (BPF when the probe passes, else the kernel), bpf or kernel. [default: auto]")
    var dataplane: DataplaneChoice?
    @Option(help: "The bpffs directory for the BPF dataplane's pins. [default: /run/weft/bpf]")
    var pinDir: String?
    @Option(help: "What the BPF dataplane becomes when the daemon stops: keep (as it is, for a restart of Weft), or flannel (the kernel dataplane as flanneld programs it, which a restarted Weft or flanneld adopts: a rollback needs no step). [default: keep]")
    var onStop: StopAction?
    @Option(help: "weft-cni's dataDir, where it records each pod it added: the BPF dataplane registers the recorded pods it finds at start. [default: /var/lib/cni/flannel]")
    var cniDataDir: String?
    @Option(help: "Directory of the compiled BPF programs. [default: bpf/out of the checkout weft was built from]")
    var bpfDir: String?
    @Option(help: "Where the daemon keeps its state for `weft status`. [default: /run/weft/status.json]")
    var statusFile: String?
    @Flag(help: "Take the lease from the Kubernetes API, as flanneld --kube-subnet-mgr: this node's Node's podCIDR (from kube-controller-manager --allocate-node-cidrs), advertised in flanneld's annotations; the peers from a watch of Nodes. The node is NODE_NAME, or the pod POD_NAME in POD_NAMESPACE runs on.")
    var kubeSubnetMgr = false
    @Option(help: "The Kubernetes API server's URL (not needed in a pod).")
    var kubeApiUrl: String?
    @Option(help: "A kubeconfig file to reach the API with (default: the pod's service account).")
    var kubeconfigFile: String?
    @Option(help: "The prefix of the Node annotations. [default: flannel.alpha.coreos.com]")
    var kubeAnnotationPrefix: String?
    @Flag(inversion: .prefixedNo, help: "In kube mode, set the Node's NetworkUnavailable condition to False (reason FlannelIsUp) once ready. [default: on]")
    var setNodeNetworkUnavailable: Bool?
    @OptionGroup var logging: LoggingOptions
    @Flag(help: "Check the command line and the FLANNELD_* variables, print what they set, and exit without starting.")
    var checkCommandLine = false

    /// The boolean flags, which flanneld's command lines may give as `--flag=true`.
    static let booleanFlags: Set<String> = ["ip-masq", "ip-masq-fully-random-disable", "iptables-forward-rules", "pod-source-check", "underlay-source-check",
                                            "kube-subnet-mgr", "set-node-network-unavailable"]
    /// The boolean flags that are on unless turned off.
    static let flagsOnByDefault: Set<String> = ["iptables-forward-rules", "pod-source-check", "underlay-source-check", "set-node-network-unavailable"]

    /// Every flag `weft daemon` takes, read off its own help, so a `FLANNELD_*` variable
    /// for anything else can be named.
    static var flagNames: Set<String> {
        let help = DaemonCommand.helpMessage(columns: 1000)
        var names: Set<String> = []
        var rest = Substring(help)
        while let start = rest.range(of: "--") {
            let name = rest[start.upperBound...].prefix { $0.isLetter || $0.isNumber || $0 == "-" }
            if !name.isEmpty { names.insert(String(name)) }
            rest = rest[start.upperBound...]
        }
        return names
    }

    func run() async throws {
        logging.bootstrap()
        let logger = Logger(label: "weft.daemon")
        let environment = ProcessInfo.processInfo.environment
        for (variable, advice) in FlanneldCommandLine.unsupportedVariables(in: environment, known: Self.flagNames) {
            logger.warning("ignoring a flanneld variable weft daemon does not implement", metadata: ["variable": "\(variable)", "advice": "\(advice)"])
        }
        let settings = try resolvedSettings(environment: environment)
        let kubeMode = try boolean(kubeSubnetMgr ? true : nil, "kube-subnet-mgr", environment) ?? false
        if checkCommandLine {
            if !kubeMode && store.store == .etcd && store.connection == nil {
                throw CommandFailure("--store etcd needs --etcd-endpoints (or FLANNELD_ETCD_ENDPOINTS)")
            }
            let storeDescription = kubeMode ? "the Kubernetes API (--kube-subnet-mgr)"
                : store.connection.map { "etcd \($0.endpoints.joined(separator: ","))" } ?? "the embedded store \(store.storeFile)"
            print("weft daemon: the command line is good: store \(storeDescription), interfaces \(settings.interfaces.names + settings.interfaces.regexes), "
                + "ip-masq \(settings.ipMasquerade), forward rules \(settings.forwardRules), dataplane \(settings.dataplane.rawValue), "
                + "subnet file \(settings.subnetFile), pins \(settings.pinDirectory), BPF objects \(settings.programs.directory)")
            return
        }
        let dataplanes = SystemDataplanes(programs: settings.programs, pinDirectory: settings.pinDirectory,
                                          sourceChecks: settings.sourceChecks, cniDataDirectory: settings.cniDataDirectory)
        if kubeMode {
            let kube = try await kubeSubnetManager(environment: environment)
            logger.notice("lease store: the Kubernetes API (--kube-subnet-mgr)", metadata: ["server": "\(kube.client.connection.server)", "node": "\(kube.nodeName)"])
            try await runDaemon { try await NodeDaemon(settings: settings, kube: kube, host: LinuxHost(), dataplanes: dataplanes, logger: logger).run() }
            return
        }
        let registry = try store.makeRegistry()
        if store.usesEmbeddedStore {
            logger.notice("lease store: the embedded one, a file shared only by the processes of this machine; for a cluster, point every node at etcd with --etcd-endpoints",
                          metadata: ["store": "\(registry.store.location)"])
        }
        try await runDaemon { try await NodeDaemon(settings: settings, registry: registry, host: LinuxHost(), dataplanes: dataplanes, logger: logger).run() }
    }

    /// Runs the daemon; the errors a user acts on end it with their message alone.
    private func runDaemon(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as OutOfSubnetsError {
            throw CommandFailure("\(error)")
        } catch let error as NetworkConfigLoadError {
            throw CommandFailure(error.description)
        } catch let error as DaemonError {
            throw CommandFailure(error.description)
        } catch let error as KubeError {
            throw CommandFailure(error.description)
        }
    }

    /// `--kube-subnet-mgr`'s connection and node, as flanneld finds them: NODE_NAME, else the
    /// node that pod POD_NAME in POD_NAMESPACE runs on.
    private func kubeSubnetManager(environment: [String: String]) async throws -> KubeSubnetManager {
        func env(_ flag: String) -> String? { NodeEnvironment.flanneld(flag, in: environment) }
        let keys: KubeAnnotations
        do {
            keys = try KubeAnnotations(prefix: kubeAnnotationPrefix ?? env("kube-annotation-prefix") ?? KubeAnnotations.defaultPrefix)
        } catch {
            throw CommandFailure("\(error)")
        }
        let connection = try KubeConnection.resolve(apiURL: kubeApiUrl ?? env("kube-api-url"), kubeconfig: kubeconfigFile ?? env("kubeconfig-file"),
                                                    environment: environment)
        let client = try KubeClient(connection)
        let nodeName: String
        if let name = environment["NODE_NAME"], !name.isEmpty {
            nodeName = name
        } else if let pod = environment["POD_NAME"], let namespace = environment["POD_NAMESPACE"], !pod.isEmpty, !namespace.isEmpty {
            nodeName = try await client.nodeName(ofPod: pod, namespace: namespace)
        } else {
            throw CommandFailure("--kube-subnet-mgr needs the node's name: set NODE_NAME (kube-flannel.yml sets it from spec.nodeName), or POD_NAME and POD_NAMESPACE")
        }
        let unavailable = try boolean(setNodeNetworkUnavailable, "set-node-network-unavailable", environment) ?? true
        return KubeSubnetManager(client: client, nodeName: nodeName, annotations: keys, setNodeNetworkUnavailable: unavailable)
    }

    /// A boolean flag, or its FLANNELD_ variable read with Go's spellings.
    private func boolean(_ value: Bool?, _ flag: String, _ environment: [String: String]) throws -> Bool? {
        if let value { return value }
        guard let text = NodeEnvironment.flanneld(flag, in: environment) else { return nil }
        guard let enabled = FlanneldCommandLine.parseBool(text) else {
            throw CommandFailure("\(NodeEnvironment.flanneldVariable(flag))=\(text): expected true or false (or 1, 0, t, f)")
        }
        return enabled
    }

    /// Flags first, then `FLANNELD_*`, then the defaults.
    func resolvedSettings(environment: [String: String]) throws -> DaemonSettings {
        func env(_ flag: String) -> String? {
            NodeEnvironment.flanneld(flag, in: environment)
        }
        // flanneld's repeatable flags take their variable's whole value as one entry.
        func list(_ values: [String], _ flag: String) -> [String] {
            values.isEmpty ? (env(flag).map { [$0] } ?? []) : values
        }
        func address(_ value: String?, _ flag: String) throws -> IPv4Address? {
            guard let text = value ?? env(flag) else { return nil }
            guard let ip = IPv4Address(text) else { throw CommandFailure("--\(flag) \(text): expected an IPv4 address") }
            return ip
        }
        func integer(_ value: Int?, _ flag: String) throws -> Int? {
            if let value { return value }
            guard let text = env(flag) else { return nil }
            guard let number = Int(text) else { throw CommandFailure("\(NodeEnvironment.flanneldVariable(flag))=\(text): expected a whole number") }
            return number
        }
        var settings = DaemonSettings()
        settings.netConfigPath = netConfigPath ?? env("net-config-path")
        settings.interfaces = InterfaceSelection.Request(names: list(iface, "iface"), regexes: list(ifaceRegex, "iface-regex"))
        settings.canReach = try address(ifaceCanReach, "iface-can-reach")
        settings.publicIP = try address(publicIP, "public-ip")
        settings.subnetFile = subnetFile ?? env("subnet-file") ?? SubnetEnv.defaultPath
        let margin = try integer(subnetLeaseRenewMargin, "subnet-lease-renew-margin") ?? 60
        guard margin > 0, margin < 24 * 60 else {
            throw CommandFailure("--subnet-lease-renew-margin \(margin): must be between 1 and 1439 minutes (leases last 24 hours)")
        }
        settings.renewMargin = .seconds(margin * 60)
        settings.healthAddress = healthzIP ?? env("healthz-ip") ?? "0.0.0.0"
        settings.healthPort = try integer(healthzPort, "healthz-port") ?? 0
        func boolean(_ value: Bool?, _ flag: String) throws -> Bool? {
            if let value { return value }
            guard let text = env(flag) else { return nil }
            guard let enabled = FlanneldCommandLine.parseBool(text) else {
                throw CommandFailure("\(NodeEnvironment.flanneldVariable(flag))=\(text): expected true or false (or 1, 0, t, f)")
            }
            return enabled
        }
        settings.ipMasquerade = try boolean(ipMasq ? true : nil, "ip-masq") ?? false
        settings.fullyRandomMasquerade = !(try boolean(ipMasqFullyRandomDisable ? true : nil, "ip-masq-fully-random-disable") ?? false)
        settings.forwardRules = try boolean(iptablesForwardRules, "iptables-forward-rules") ?? true
        let resync = try integer(iptablesResync, "iptables-resync") ?? 5
        guard resync > 0 else { throw CommandFailure("--iptables-resync \(resync): must be 1 second or more") }
        settings.rulesResync = .seconds(resync)
        settings.sourceChecks = SourceChecks(pod: try boolean(podSourceCheck, "pod-source-check") ?? true,
                                             underlay: try boolean(underlaySourceCheck, "underlay-source-check") ?? true)
        /// A flag of a few named values, or its variable.
        func oneOf<Value: RawRepresentable & CaseIterable>(_ value: Value?, _ flag: String) throws -> Value? where Value.RawValue == String {
            if let value { return value }
            guard let text = env(flag) else { return nil }
            guard let chosen = Value(rawValue: text) else {
                let names = Value.allCases.map(\.rawValue)
                throw CommandFailure("\(NodeEnvironment.flanneldVariable(flag))=\(text): expected \(names.dropLast().joined(separator: ", ")) or \(names.last ?? "")")
            }
            return chosen
        }
        settings.dataplane = try oneOf(dataplane, "dataplane") ?? .auto
        settings.pinDirectory = pinDir ?? env("pin-dir") ?? PinnedMaps.defaultDirectory
        settings.onStop = try oneOf(onStop, "on-stop") ?? .keep
        settings.cniDataDirectory = cniDataDir ?? env("cni-data-dir") ?? DaemonSettings.defaultCNIDataDirectory
        settings.programs = (bpfDir ?? env("bpf-dir")).map(BPFPrograms.init(directory:)) ?? BPFPrograms.locate()
        settings.statusFile = statusFile ?? env("status-file") ?? DaemonSettings.defaultStatusFile
        return settings
    }
}

extension StopAction: ExpressibleByArgument {}
