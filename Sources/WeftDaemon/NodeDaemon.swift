import Foundation
import Logging
import ServiceLifecycle
import WeftBPF
import WeftCore
import WeftDataplane
import Synchronization
import UnixSignals
import WeftStore

/// One node: load the network config, choose the interface, acquire (or reclaim) the lease,
/// write subnet.env, set up the dataplane, then keep all of it current as services: the
/// lease watch and defence, the dataplane supervisor, the status file and the health
/// endpoint. The composition root: the store, the host and the dataplanes come in from
/// outside, so tests assemble the same daemon from their own parts.
public final class NodeDaemon: Sendable {
    public let settings: DaemonSettings
    private let leases: any LeaseSource
    public let host: any NodeHost
    public let dataplanes: any DataplaneFactory
    public let state: DaemonState
    private let logger: Logger
    private let group = Mutex<ServiceGroup?>(nil)

    /// Leases in a store (embedded or etcd).
    /// - Parameter serviceManager: systemd's notification socket, from `$NOTIFY_SOCKET` by default.
    public convenience init(settings: DaemonSettings, registry: SubnetRegistry, host: any NodeHost, dataplanes: any DataplaneFactory, logger: Logger,
                            serviceManager: ServiceManager = ServiceManager()) {
        let state = DaemonState(statusFile: settings.statusFile, serviceManager: serviceManager)
        let timed = SubnetRegistry(store: TimedStore(store: registry.store, metrics: state.metrics), prefix: registry.prefix, logger: logger)
        self.init(settings: settings, leases: StoreLeaseSource(registry: timed, settings: settings, state: state, logger: logger), state: state,
                  host: host, dataplanes: dataplanes, logger: logger)
    }

    /// Leases from the Kubernetes API (`--kube-subnet-mgr`).
    public convenience init(settings: DaemonSettings, kube: KubeSubnetManager, host: any NodeHost, dataplanes: any DataplaneFactory, logger: Logger,
                            serviceManager: ServiceManager = ServiceManager()) {
        let state = DaemonState(statusFile: settings.statusFile, serviceManager: serviceManager)
        self.init(settings: settings, leases: KubeLeaseSource(kube, settings: settings, state: state, logger: logger), state: state,
                  host: host, dataplanes: dataplanes, logger: logger)
    }

    private init(settings: DaemonSettings, leases: any LeaseSource, state: DaemonState, host: any NodeHost, dataplanes: any DataplaneFactory, logger: Logger) {
        self.settings = settings
        self.leases = leases
        self.state = state
        self.host = host
        self.dataplanes = dataplanes
        self.logger = logger
    }

    /// Runs until SIGTERM or SIGINT (or `shutDown()`); the dataplane stays in place.
    public func run(signals: [UnixSignal] = [.sigterm, .sigint]) async throws {
        if let problem = host.missingPrivilege() { throw DaemonError(problem) }
        ProcessMemory.limitArenas()
        DescriptorLimit.raiseToHardLimit()
        let lock = try NodeLock(nodeName: host.nodeLockName, pinDirectory: settings.pinDirectory)
        // Health first: while the start waits on the store (a read-only disk, etcd down),
        // /readyz says why, as it does for the same fault later.
        let health = settings.healthPort == 0 ? nil : try HealthServer(address: settings.healthAddress, port: settings.healthPort, logger: logger,
                                                                         responder: HealthResponder(state: state).respond)
        let config = try await leases.networkConfig()
        let interfaces = try host.interfaces()
        let selection = try chooseInterface(interfaces)
        guard let underlayMTU = interfaces.mtus[selection.interface] else {
            throw DaemonError("interface \(selection.interface) vanished while the daemon started; check the host network and start it again")
        }
        let publicIP = settings.publicIP ?? selection.address
        logger.notice("using interface", metadata: ["interface": "\(selection.interface)", "address": "\(selection.address)",
                                                    "public-ip": "\(publicIP)", "rule": "\(selection.rule)"])

        let choice = try dataplanes.select(settings.dataplane)
        logger.notice("dataplane selected", metadata: ["mode": "\(choice.mode.rawValue)", "reason": "\(choice.reason)"])
        let attributes = leaseAttributes(config.backend, publicIP: publicIP, mode: choice.mode)
        let previous = (try? String(contentsOfFile: settings.subnetFile, encoding: .utf8)).flatMap { try? SubnetEnv.parse($0) }
        let lease = try await leases.acquire(attributes, config: config, previousSubnet: previous?.subnet, hostAddresses: interfaces.addresses)
        let vtepMAC = lease.attributes.vxlan?.vtepMAC ?? attributes.vxlan?.vtepMAC ?? MACAddress(bytes: [2, 0, 0, 0, 0, 0])!
        let node = NodeSettings(network: config.network, subnetLength: lease.subnet.length, subnet: lease.subnet, publicIP: lease.attributes.publicIP,
                                underlayInterface: selection.interface, backend: config.backend, vtepMAC: vtepMAC)
        try writeSubnetFile(subnetEnv(node, underlayMTU: underlayMTU, mode: choice.mode))
        state.update {
            $0.subnet = node.subnet
            $0.network = node.network
            $0.interface = selection.interface
            $0.interfaceRule = selection.rule
            $0.backend = config.backend.typeName
            $0.vtepMAC = config.backend.typeName == "vxlan" ? vtepMAC : nil
            $0.publicIP = lease.attributes.publicIP
            $0.leaseExpiration = lease.expiration
            $0.mode = choice.mode
            $0.modeReason = choice.reason
            $0.pinDirectory = choice.mode == .bpf ? settings.pinDirectory : nil
            $0.subnetFileWritten = true
        }

        let dataplane = try dataplanes.make(node, mode: choice.mode, logger: logger)
        try dataplane.setUp()
        let rules = dataplanes.nodeRules(node, mode: choice.mode, masquerade: settings.ipMasquerade, forward: settings.forwardRules,
                                         fullyRandom: settings.fullyRandomMasquerade, sourceChecks: settings.sourceChecks,
                                         nftables: config.enableNFTables)
        installRules(rules, nftables: config.enableNFTables)
        let peers = PeerSet(try await leases.listPeers())
        let state = self.state
        let dataplanes = self.dataplanes
        let supervisor = DataplaneSupervisor(dataplane: dataplane, peers: peers, interval: settings.repairInterval, logger: logger,
                                             rules: rules, rulesInterval: settings.rulesResync, changes: { try dataplanes.namespaceChanges() }) { observation in
            state.update { $0.record(observation) }
            state.metrics.record(observation)
        }
        try supervisor.applyPeers()
        state.update { $0.dataplaneProgrammed = true }
        // The first listing's raw values and their decoding are garbage now; give the pages
        // back rather than hold them for the daemon's life (10,000 leases: several MiB).
        ProcessMemory.returnFreedPages()
        logger.notice("node ready", metadata: ["subnet": "\(node.subnet)", "peers": "\(state.current.peers.count)", "dataplane": "\(choice.mode.rawValue)"])

        await leases.nodeReady()
        var services: [any Service] = [StatusWriter(state: state), SupervisorService(supervisor: supervisor, state: state), leases.service(supervisor: supervisor)]
        if let health { services.append(health) }
        let group = ServiceGroup(services: services, gracefulShutdownSignals: signals, cancellationSignals: [], logger: logger)
        self.group.withLock { $0 = group }
        try await group.run()
        state.serviceManager.stopping()
        if settings.onStop == .flannel && choice.mode == .bpf {
            handToTheKernel(dataplane, node: node, peers: supervisor.peers, subnetEnv: subnetEnv(node, underlayMTU: underlayMTU, mode: .kernel))
        } else {
            logger.notice("stopped; the dataplane stays in place so pods keep talking")
        }
        withExtendedLifetime(lock) {}
    }

    /// `--on-stop flannel`: the BPF dataplane becomes the kernel one as flanneld programs it,
    /// from the peers the node last knew, so the node needs no step to go back to flanneld
    /// (deleting Weft's DaemonSet and applying kube-flannel.yml is enough) and a restart of
    /// Weft takes it over in place. The pods' traffic moves over within milliseconds.
    private func handToTheKernel(_ dataplane: any Dataplane, node: NodeSettings, peers: PeerSet, subnetEnv: SubnetEnv) {
        do {
            let plan = try dataplane.plan(peers: peers.leases)
            try dataplane.tearDown()
            let kernel = try dataplanes.make(node, mode: .kernel, logger: logger)
            try kernel.setUp()
            try kernel.apply(plan)
            // weft-cni registers no pod with the pins gone.
            try writeSubnetFile(subnetEnv)
            logger.notice("stopped; the dataplane stays in place, handed to the kernel as Flannel programs it (--on-stop flannel): a restarted Weft or flanneld adopts it",
                          metadata: ["peers": "\(plan.paths.count)", "vtep-mac": "\(node.vtepMAC)"])
        } catch {
            logger.error("stopped, but could not hand the dataplane to the kernel; run `weft dataplane down --for-flanneld` before starting flanneld", metadata: ["error": "\(error)"])
        }
    }

    /// Installs the masquerade and forward rules. A failure (no iptables on the host, say)
    /// leaves the node not ready with the reason, and the supervisor tries again every resync.
    private func installRules(_ rules: any RuleKeeper, nftables: Bool) {
        do {
            let changes = try rules.ensure(directPeers: nil)
            if !changes.isEmpty {
                logger.notice("installed flanneld's masquerade and forward rules", metadata: [
                    "tool": "\(nftables ? "nft" : "iptables")", "masquerade": "\(settings.ipMasquerade)",
                    "forward": "\(settings.forwardRules)", "changes": "\(changes.joined(separator: "; "))"])
            }
        } catch {
            logger.error("could not install the masquerade and forward rules; retrying every resync", metadata: ["error": "\(error)"])
            state.update { $0.record(.failed(.rules, "could not install the masquerade and forward rules: \(error)")) }
        }
    }

    /// Stops a running daemon as SIGTERM would.
    public func shutDown() async {
        await group.withLock { $0 }?.triggerGracefulShutdown()
    }

    private func chooseInterface(_ interfaces: HostInterfaces) throws -> InterfaceSelection {
        var request = settings.interfaces
        if let target = settings.canReach {
            guard let name = try host.interface(toward: target) else {
                throw DaemonError("--iface-can-reach \(target): no route to it from this host")
            }
            request.canReachInterface = name
        }
        request.defaultRouteInterface = interfaces.defaultRouteInterface
        do {
            return try InterfaceSelection.choose(request, from: interfaces.candidates)
        } catch {
            throw DaemonError(error.description)
        }
    }

    /// The lease this node advertises. The VTEP MAC starts as the device's current one,
    /// so a restart keeps it even before the store is read; the acquirer keeps the lease's.
    private func leaseAttributes(_ backend: Backend, publicIP: IPv4Address, mode: DataplaneMode) -> LeaseAttributes {
        guard case .vxlan(let options) = backend else { return .hostGateway(publicIP: publicIP) }
        return .vxlan(publicIP: publicIP, vni: options.vni, vtepMAC: dataplanes.currentOrNewVTEPMAC(vni: options.vni, mode: mode))
    }

    /// subnet.env, with the dataplane and its pins for weft-cni (`SubnetEnv`).
    private func subnetEnv(_ node: NodeSettings, underlayMTU: UInt32, mode: DataplaneMode) -> SubnetEnv {
        SubnetEnv(network: node.network, subnet: node.subnet, mtu: Int(node.podMTU(underlayMTU: underlayMTU)),
                  ipMasquerade: settings.ipMasquerade, dataplane: mode, pinDirectory: mode == .bpf ? settings.pinDirectory : nil)
    }

    private func writeSubnetFile(_ env: SubnetEnv) throws {
        let directory = (settings.subnetFile as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try Data(env.rendered().utf8).write(to: URL(fileURLWithPath: settings.subnetFile), options: .atomic)
        } catch {
            throw DaemonError("cannot write \(settings.subnetFile): \(error.localizedDescription); check --subnet-file")
        }
    }
}

/// Answers the health endpoint from the daemon's state.
struct HealthResponder: Sendable {
    let state: DaemonState

    func respond(_ path: String) -> (status: Int, contentType: String, body: String) {
        let snapshot = state.current
        switch path {
        case "/healthz":
            return (200, "text/plain", "ok\n")
        case "/readyz":
            return snapshot.notReadyReason.map { (503, "text/plain", "not ready: \($0)\n") } ?? (200, "text/plain", "ready\n")
        case "/metrics":
            let dataplane = snapshot.mode == .bpf ? snapshot.pinDirectory.flatMap(DaemonMetrics.DataplaneReadings.read) : nil
            return (200, "text/plain; version=0.0.4", state.metrics.render(snapshot, dataplane: dataplane, process: ProcessReadings.read()))
        default:
            return (404, "text/plain", "not found: try /healthz, /readyz or /metrics\n")
        }
    }
}
