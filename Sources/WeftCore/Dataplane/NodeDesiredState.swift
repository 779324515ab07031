/// Everything Weft owns on a node, as one value worked out from the node's settings, the
/// peer plan and facts read from the host, with no syscall: the vxlan device with its
/// attributes, address and routes; the program attachments and the programs' constants; the
/// peer and tunnel map entries; the kernel routes, neighbours and FDB entries; the managed
/// neighbours; the netfilter rules and the underlay guard. The adapters in WeftDataplane
/// read what the kernel holds of each kind and apply the difference, so set-up (from
/// nothing), an incremental change (from the last desired state) and repair (from what is
/// observed) are one reconcile. Every decision about what a node holds is made here, so a
/// new device property, hook or entry is added once and tested without root.
public struct NodeDesiredState: Sendable, Equatable {
    public var mode: DataplaneMode
    /// The overlay device (vxlan backends), or nil for host-gw.
    public var vxlanDevice: VXLANDeviceSpec?
    /// Devices that must not exist: the other dataplane's vxlan device, which holds the VXLAN
    /// port (a node taken over from flanneld or from Weft's kernel dataplane).
    public var supersededDevices: [String]
    /// Where each program runs (BPF dataplane); in hook order, the pods' last.
    public var attachments: [ProgramAttachment]
    /// The constants every program is loaded with (BPF dataplane).
    public var programSettings: ProgramSettings?
    /// The peer map: how to reach each peer subnet (BPF dataplane).
    public var peerEntries: [IPv4Prefix: PeerPlan.Path]
    /// The tunnel map: each peer's underlay IP and its subnet, what a sender is checked against (BPF dataplane).
    public var tunnelEntries: [IPv4Address: IPv4Prefix]
    /// The kernel routes to peer subnets, Weft's (`proto 87`): direct peers' on both dataplanes,
    /// VXLAN peers' on the kernel one.
    public var peerRoutes: [IPv4Prefix: PeerRouteSpec]
    /// Permanent ARP entries on the vxlan device: each VXLAN peer's VTEP (kernel dataplane).
    public var neighbours: [IPv4Address: MACAddress]
    /// FDB entries on the vxlan device: each VTEP MAC and the underlay IP behind it (kernel dataplane).
    public var forwardingEntries: [MACAddress: IPv4Address]
    /// Managed neighbour entries on the underlay: the peers on its link, whose frames
    /// from_underlay checks against the MAC the kernel keeps resolved (BPF dataplane).
    public var managedNeighbours: Set<IPv4Address>
    /// The netfilter rules, when the node keeps them.
    public var rules: NodeRules?

    /// - Parameters:
    ///   - facts: what was read from the host; `facts.pods` only counts for the BPF dataplane.
    ///   - rules: the node's netfilter rules (`NodeRules`), nil where the caller keeps none.
    public init(node: NodeSettings, mode: DataplaneMode, sourceChecks: SourceChecks, plan: PeerPlan, facts: NodeHostFacts,
                rules: NodeRules? = nil) {
        self.mode = mode
        self.rules = rules
        let mtu = node.podMTU(underlayMTU: facts.underlayMTU)
        vxlanDevice = node.vxlanOptions.map { options in
            switch mode {
            case .bpf:
                VXLANDeviceSpec(name: Self.bpfDeviceName(vni: options.vni), kind: .collectMetadata(port: options.port), mtu: mtu,
                                mac: node.vtepMAC, arp: false, address: node.subnet.network, routes: [node.network])
            case .kernel:
                VXLANDeviceSpec(name: Self.kernelDeviceName(vni: options.vni),
                                kind: .flannel(vni: options.vni, local: node.publicIP, port: options.port), mtu: mtu,
                                mac: node.vtepMAC, arp: nil, address: node.subnet.network, routes: [])
            }
        }
        supersededDevices = switch (mode, node.vxlanOptions) {
        case (.bpf, let options?): [Self.kernelDeviceName(vni: options.vni)]
        default: []
        }

        peerRoutes = [:]
        neighbours = [:]
        forwardingEntries = [:]
        for (subnet, path) in plan.paths {
            switch path {
            case .direct(let ip):
                peerRoutes[subnet] = PeerRouteSpec(destination: subnet, gateway: ip, interface: .underlay, onlink: false)
            case .vxlan(let ip, let mac) where mode == .kernel:
                // Flannel's: onlink via the peer's VTEP address, resolved by the permanent entries.
                peerRoutes[subnet] = PeerRouteSpec(destination: subnet, gateway: subnet.network, interface: .vxlanDevice, onlink: true)
                neighbours[subnet.network] = mac
                forwardingEntries[mac] = ip
            case .vxlan:
                break
            }
        }

        switch mode {
        case .kernel:
            attachments = []
            programSettings = nil
            peerEntries = [:]
            tunnelEntries = [:]
            managedNeighbours = []
        case .bpf:
            var hooks = [ProgramAttachment(interface: .underlay, hook: .ingress, program: .fromUnderlay)]
            if vxlanDevice != nil {
                hooks.append(ProgramAttachment(interface: .vxlanDevice, hook: .ingress, program: .fromOverlay))
                hooks.append(ProgramAttachment(interface: .vxlanDevice, hook: .egress, program: .toOverlay))
            }
            for (_, index) in facts.pods.sorted(by: { $0.key < $1.key }) {
                hooks.append(ProgramAttachment(interface: .pod(interfaceIndex: index), hook: .ingress, program: .fromPod))
            }
            attachments = hooks
            programSettings = ProgramSettings(
                vni: node.vxlanOptions?.vni ?? 0, vtepMAC: node.vtepMAC, vxlanPort: node.vxlanOptions?.port ?? VXLANOptions.defaultPort,
                tunnelMTU: mtu, checkPodSource: sourceChecks.pod, checkUnderlaySource: sourceChecks.underlay,
                clusterNetwork: node.network, localIP: node.publicIP, decapsulateAggregates: facts.decapsulationClearsTunnelGSO)
            peerEntries = plan.paths
            tunnelEntries = plan.tunnels
            // Every peer on the underlay's link has its frames checked against its MAC: the
            // direct ones, and the VXLAN ones that share the segment.
            managedNeighbours = sourceChecks.underlay
                ? Set(plan.paths.values.map(\.underlayIP).filter { ip in facts.underlayNetworks.contains { $0.contains(ip) } })
                : []
        }
    }

    /// The BPF dataplane's collect_md device.
    public static func bpfDeviceName(vni: UInt32) -> String { "weft.\(vni)" }
    /// Flannel's device, which the kernel dataplane keeps as flanneld does.
    public static func kernelDeviceName(vni: UInt32) -> String { "flannel.\(vni)" }

}

/// An interface the desired state names before it need exist; the adapters resolve it to an
/// index once the device is made.
public enum NodeInterface: Hashable, Sendable, CustomStringConvertible {
    case underlay
    case vxlanDevice
    /// The host side of a pod's veth pair.
    case pod(interfaceIndex: Int32)

    public var description: String {
        switch self {
        case .underlay: "underlay"
        case .vxlanDevice: "vxlan device"
        case .pod(let index): "pod veth (ifindex \(index))"
        }
    }
}

/// The overlay device, as it must be.
public struct VXLANDeviceSpec: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Weft's collect_md device: one for every peer, the tunnel set per packet by the programs.
        case collectMetadata(port: UInt16)
        /// Flannel's `flannel.<VNI>`: `id`, `local`, `dev <underlay>`, `dstport`, `nolearning`.
        case flannel(vni: UInt32, local: IPv4Address, port: UInt16)
    }

    public var name: String
    public var kind: Kind
    public var mtu: UInt32
    public var mac: MACAddress
    /// False: NOARP (the programs resolve nothing on it). Nil: as the kernel creates it, as Flannel leaves it.
    public var arp: Bool?
    /// Held as `<address>/32`: the node's subnet's network address, Flannel's VTEP address.
    public var address: IPv4Address
    /// Routes through the device with no gateway (the BPF dataplane's cluster network route).
    public var routes: [IPv4Prefix]
}

/// A kernel route to a peer subnet.
public struct PeerRouteSpec: Sendable, Equatable {
    public var destination: IPv4Prefix
    public var gateway: IPv4Address
    public var interface: NodeInterface
    public var onlink: Bool
}

/// A program on an interface's clsact hook.
public struct ProgramAttachment: Hashable, Sendable, CustomStringConvertible {
    public enum Hook: Hashable, Sendable { case ingress, egress }

    public var interface: NodeInterface
    public var hook: Hook
    public var program: ProgramName

    public var description: String { "\(program.rawValue) at the \(hook) of the \(interface)" }
}

/// The programs, each named after its entry file (`bpf/<name>.c`) and its function.
public enum ProgramName: String, Hashable, Sendable, CaseIterable {
    case fromPod = "from_pod"
    case fromOverlay = "from_overlay"
    case fromUnderlay = "from_underlay"
    case toOverlay = "to_overlay"
}

/// The constants the programs are loaded with, but the interface indices, which the adapter
/// knows once the devices exist.
public struct ProgramSettings: Sendable, Equatable {
    public var vni: UInt32
    public var vtepMAC: MACAddress
    public var vxlanPort: UInt16
    /// The largest IPv4 packet sent into the tunnel; larger ones go to the kernel.
    public var tunnelMTU: UInt32
    public var checkPodSource: Bool
    public var checkUnderlaySource: Bool
    public var clusterNetwork: IPv4Prefix
    public var localIP: IPv4Address
    /// from_underlay decapsulates GRO aggregates and TCP too, where the kernel resets their
    /// tunnel GSO state (a kernel feature, decided here and not in an adapter).
    public var decapsulateAggregates: Bool
}

/// What the desired state needs to know of the host, read by the adapters.
public struct NodeHostFacts: Sendable, Equatable {
    public var underlayMTU: UInt32
    /// The underlay's connected networks: its link, where direct peers must be.
    public var underlayNetworks: [IPv4Prefix]
    /// The registered pods whose host-side veth exists, by address: their interface index.
    public var pods: [IPv4Address: Int32] = [:]
    /// Whether `bpf_skb_adjust_room` decapsulation resets tunnel GSO state on this kernel.
    public var decapsulationClearsTunnelGSO = false

    public init(underlayMTU: UInt32, underlayNetworks: [IPv4Prefix]) {
        self.underlayMTU = underlayMTU
        self.underlayNetworks = underlayNetworks
    }
}

/// The netfilter rules a node keeps: flanneld's masquerade and forward chains, and on the
/// kernel dataplane the underlay guard (the BPF one checks in from_underlay).
public struct NodeRules: Sendable, Equatable {
    public var flannel: FlannelRules
    public var underlayGuard: UnderlayGuard.Scope?

    public init(node: NodeSettings, mode: DataplaneMode, masquerade: Bool, forward: Bool, fullyRandom: Bool = true, sourceChecks: SourceChecks) {
        flannel = FlannelRules(network: node.network, subnet: node.subnet, masquerade: masquerade, forward: forward, fullyRandom: fullyRandom)
        underlayGuard = mode == .kernel && sourceChecks.underlay
            ? UnderlayGuard.Scope(interface: node.underlayInterface, network: node.network) : nil
    }
}
