import Logging
import WeftBPF
import WeftCore
import WeftDataplane
import WeftNetlink

/// What the daemon needs to know of the machine it runs on. `LinuxHost` reads it over
/// netlink; tests describe a host of their own, so the daemon's whole flow runs without root.
public protocol NodeHost: Sendable {
    /// Why this process cannot program the host's network (a missing capability), or nil.
    func missingPrivilege() -> String?
    /// The interfaces as they are now.
    func interfaces() throws -> HostInterfaces
    /// The interface the host would use to reach `target`, if any route leads there.
    func interface(toward target: IPv4Address) throws -> String?
    /// The name of the node's one-daemon lock, an abstract socket in this network namespace.
    var nodeLockName: String { get }
}

/// The host's interfaces, as interface selection and the lease need them.
public struct HostInterfaces: Sendable {
    public var candidates: [CandidateInterface]
    /// The interface of the default route, if there is one.
    public var defaultRouteInterface: String?
    public var mtus: [String: UInt32]

    public init(candidates: [CandidateInterface], defaultRouteInterface: String?, mtus: [String: UInt32]) {
        self.candidates = candidates
        self.defaultRouteInterface = defaultRouteInterface
        self.mtus = mtus
    }

    /// Every IPv4 address of the host, on any interface.
    public var addresses: Set<IPv4Address> { Set(candidates.flatMap(\.addresses)) }
}

/// Chooses and builds the dataplane. `SystemDataplanes` makes the BPF or kernel one; tests
/// bring one that records what it is told.
public protocol DataplaneFactory: Sendable {
    /// Which dataplane to run, and why.
    func select(_ choice: DataplaneChoice) throws -> DataplaneSelection
    /// The VTEP MAC to advertise before the lease is read: the device's current one, so a
    /// restart changes nothing peers have cached.
    func currentOrNewVTEPMAC(vni: UInt32, mode: DataplaneMode) -> MACAddress
    func make(_ node: NodeSettings, mode: DataplaneMode, logger: Logger) throws -> any Dataplane
    /// What wakes the supervisor when the host network changes under the dataplane.
    func namespaceChanges() throws -> any NamespaceChanges
    /// What keeps flanneld's masquerade and forward rules, and the underlay guard where
    /// `underlayGuard` says, on the node.
    func rules(_ rules: FlannelRules, underlayGuard: UnderlayGuard.Scope?, tool: NetfilterRules.Tool) -> any RuleKeeper
}

/// The machine itself, over netlink.
public struct LinuxHost: NodeHost {
    public init() {}

    public var nodeLockName: String { "weft-daemon" }

    public func missingPrivilege() -> String? {
        EffectiveCapabilities.current.has(EffectiveCapabilities.netAdmin) ? nil
            : "missing capability CAP_NET_ADMIN: the daemon programs routes, devices and TC filters; run it as root or grant CAP_NET_ADMIN (and CAP_BPF for the BPF dataplane)"
    }

    public func interfaces() throws -> HostInterfaces {
        let netlink = try NetlinkSocket()
        let links = try netlink.links()
        let addresses = try netlink.addresses()
        let defaultRoute = try netlink.routes().first { $0.destination.length == 0 }?.interfaceIndex
        return HostInterfaces(
            candidates: links.map { link in
                CandidateInterface(name: link.name, addresses: addresses.filter { $0.interfaceIndex == link.index }.map(\.address),
                                   isUp: link.isUp, isLoopback: link.name == "lo")
            },
            defaultRouteInterface: links.first { $0.index == defaultRoute }?.name,
            mtus: Dictionary(links.map { ($0.name, $0.mtu) }, uniquingKeysWith: { first, _ in first }))
    }

    public func interface(toward target: IPv4Address) throws -> String? {
        let netlink = try NetlinkSocket()
        guard let index = try netlink.outgoingInterface(toward: target) else { return nil }
        return try netlink.links().first { $0.index == index }?.name
    }
}

/// The BPF and kernel dataplanes, as `--dataplane` and the probe decide.
public struct SystemDataplanes: DataplaneFactory {
    public let programs: BPFPrograms
    public let pinDirectory: String
    public let sourceChecks: SourceChecks
    /// weft-cni's records of the node's pods, for the BPF dataplane to register.
    public let cniDataDirectory: String?

    public init(programs: BPFPrograms, pinDirectory: String, sourceChecks: SourceChecks = SourceChecks(), cniDataDirectory: String? = nil) {
        self.programs = programs
        self.pinDirectory = pinDirectory
        self.sourceChecks = sourceChecks
        self.cniDataDirectory = cniDataDirectory
    }

    public func select(_ choice: DataplaneChoice) throws -> DataplaneSelection {
        try DataplaneSelection.select(choice, probe: DataplaneProbe.run(programs: programs))
    }

    public func currentOrNewVTEPMAC(vni: UInt32, mode: DataplaneMode) -> MACAddress {
        guard let netlink = try? NetlinkSocket() else {
            var generator = SystemRandomNumberGenerator()
            return MACAddress.randomLocal(using: &generator)
        }
        return mode.currentOrNewVTEPMAC(vni: vni, netlink)
    }

    public func make(_ node: NodeSettings, mode: DataplaneMode, logger: Logger) throws -> any Dataplane {
        switch mode {
        case .bpf: try BPFDataplane(settings: node, pinDirectory: pinDirectory, programs: programs, logger: logger, sourceChecks: sourceChecks,
                                    cniDataDirectory: cniDataDirectory)
        case .kernel: try KernelDataplane(settings: node, logger: logger)
        }
    }

    public func namespaceChanges() throws -> any NamespaceChanges {
        try NetlinkNamespaceChanges()
    }

    public func rules(_ rules: FlannelRules, underlayGuard: UnderlayGuard.Scope?, tool: NetfilterRules.Tool) -> any RuleKeeper {
        NetfilterRules(rules, underlayGuard: underlayGuard, tool: tool)
    }
}

extension DataplaneFactory {
    /// The netfilter rules a node keeps, as the daemon and `weft dataplane run` both keep
    /// them: flanneld's masquerade and forward chains, and on the kernel dataplane the
    /// underlay guard (the BPF one checks in from_underlay), with the tool `EnableNFTables` names.
    public func nodeRules(_ node: NodeSettings, mode: DataplaneMode, masquerade: Bool, forward: Bool, fullyRandom: Bool = true,
                          sourceChecks: SourceChecks, nftables: Bool) -> any RuleKeeper {
        let wanted = NodeRules(node: node, mode: mode, masquerade: masquerade, forward: forward, fullyRandom: fullyRandom, sourceChecks: sourceChecks)
        return rules(wanted.flannel, underlayGuard: wanted.underlayGuard, tool: nftables ? .nftables : .iptables)
    }
}
