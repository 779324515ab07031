/// Which dataplane programs the node: the TC eBPF programs, or the kernel as Flannel programs it.
public enum DataplaneMode: String, Sendable, CaseIterable {
    case bpf
    case kernel
}

/// This node's part of the cluster, as the dataplane needs it.
public struct NodeSettings: Sendable, Equatable {
    /// The cluster network (`Network` in net-conf.json).
    public var network: IPv4Prefix
    /// `SubnetLen`: the prefix length of every node's subnet.
    public var subnetLength: Int
    /// This node's leased subnet.
    public var subnet: IPv4Prefix
    public var publicIP: IPv4Address
    /// The interface peers are reached through.
    public var underlayInterface: String
    public var backend: Backend
    public var vtepMAC: MACAddress

    public init(network: IPv4Prefix, subnetLength: Int, subnet: IPv4Prefix, publicIP: IPv4Address, underlayInterface: String,
                backend: Backend, vtepMAC: MACAddress) {
        self.network = network
        self.subnetLength = subnetLength
        self.subnet = subnet
        self.publicIP = publicIP
        self.underlayInterface = underlayInterface
        self.backend = backend
        self.vtepMAC = vtepMAC
    }

    /// The vxlan options, or nil for host-gw.
    public var vxlanOptions: VXLANOptions? {
        if case .vxlan(let options) = backend { return options }
        return nil
    }

    /// This node as the planner sees it.
    public var planning: PlanningNode {
        PlanningNode(network: network, subnetLength: subnetLength, subnet: subnet, publicIP: publicIP, backend: backend)
    }

    /// The MTU pods get and the tunnel carries (`Backend.podMTU`, Flannel's rule).
    public func podMTU(underlayMTU: UInt32) -> UInt32 {
        backend.podMTU(underlayMTU: underlayMTU)
    }
}
