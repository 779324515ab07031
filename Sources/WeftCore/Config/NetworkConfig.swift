/// The effective cluster network configuration: Flannel's `net-conf.json` with every
/// default filled in and every rule checked. Build one with `NetworkConfigParser`.
public struct NetworkConfig: Sendable, Equatable {
    /// The cluster network every node subnet is carved from.
    public var network: IPv4Prefix
    /// The prefix length of each node's subnet.
    public var subnetLength: Int
    /// The network address of the lowest subnet handed out.
    public var subnetMin: IPv4Address
    /// The network address of the highest subnet handed out.
    public var subnetMax: IPv4Address
    public var backend: Backend
    /// `EnableNFTables`: the masquerade and forward rules go into an nftables table of their
    /// own instead of iptables chains.
    public var enableNFTables: Bool

    public init(network: IPv4Prefix, subnetLength: Int, subnetMin: IPv4Address, subnetMax: IPv4Address, backend: Backend,
                enableNFTables: Bool = false) {
        self.network = network
        self.subnetLength = subnetLength
        self.subnetMin = subnetMin
        self.subnetMax = subnetMax
        self.backend = backend
        self.enableNFTables = enableNFTables
    }

    /// Whether `subnet` is one this configuration may hand out: the right length, inside
    /// `SubnetMin...SubnetMax`. Flannel's `isSubnetConfigCompat`.
    public func canAllocate(_ subnet: IPv4Prefix) -> Bool {
        subnet.length == subnetLength && network.contains(subnet)
            && subnet.network >= subnetMin && subnet.network <= subnetMax
    }

    /// How many subnets lie between `SubnetMin` and `SubnetMax`, inclusive.
    public var allocatableSubnetCount: UInt64 {
        guard subnetMin <= subnetMax else { return 0 }
        let size = UInt64(1) << UInt64(32 - subnetLength)
        return (UInt64(subnetMax.value) - UInt64(subnetMin.value)) / size + 1
    }

    /// The effective config as Flannel's JSON, with defaults written out.
    public var flannelJSON: JSONValue {
        .object([
            "Network": .string(network.description),
            "SubnetLen": .integer(Int64(subnetLength)),
            "SubnetMin": .string(subnetMin.description),
            "SubnetMax": .string(subnetMax.description),
            "Backend": backend.flannelJSON,
        ])
    }

    /// `flannelJSON` as text, fields in the order Flannel's documentation uses.
    public var flannelJSONText: String {
        flannelJSON.serialized(keyOrder: [
            "Network", "SubnetLen", "SubnetMin", "SubnetMax", "Backend",
            "Type", "VNI", "Port", "DirectRouting", "MTU",
        ])
    }
}

/// How traffic between nodes travels.
public enum Backend: Sendable, Equatable {
    /// A VXLAN overlay, wire-compatible with Flannel's `flannel.<VNI>` device.
    case vxlan(VXLANOptions)
    /// Direct routes to each peer's public IP; the nodes must share an L2 segment.
    case hostGateway

    /// The name Flannel uses in `Backend.Type` and in leases' `BackendType`.
    /// The MTU pods get and the tunnel carries, by Flannel's rule: for vxlan the underlay's
    /// (or `Backend.MTU`, when set, in its place) less the 50 bytes of encapsulation; host-gw
    /// adds nothing to a packet, so pods get the underlay's.
    public func podMTU(underlayMTU: UInt32) -> UInt32 {
        guard case .vxlan(let options) = self else { return underlayMTU }
        return (options.mtu.map(UInt32.init) ?? underlayMTU) - UInt32(VXLANOptions.encapsulationOverhead)
    }

    public var typeName: String {
        switch self {
        case .vxlan: "vxlan"
        case .hostGateway: "host-gw"
        }
    }

    var flannelJSON: JSONValue {
        switch self {
        case .vxlan(let options):
            .object([
                "Type": .string(typeName),
                "VNI": .integer(Int64(options.vni)),
                "Port": .integer(Int64(options.port)),
                "DirectRouting": .bool(options.directRouting),
                "MTU": .integer(Int64(options.mtu ?? 0)),
            ])
        case .hostGateway:
            .object(["Type": .string(typeName)])
        }
    }
}

/// Settings of the VXLAN backend, defaults resolved.
public struct VXLANOptions: Sendable, Equatable {
    public static let defaultVNI: UInt32 = 1
    /// Flannel's port (the Linux kernel's historic VXLAN port), used when `Port` is 0.
    public static let defaultPort: UInt16 = 8472
    /// Bytes the outer IPv4, UDP and VXLAN headers plus the inner Ethernet header take.
    public static let encapsulationOverhead = 50

    public var vni: UInt32
    public var port: UInt16
    /// Route straight over the underlay to peers on the same L2 segment.
    public var directRouting: Bool
    /// `Backend.MTU`, as current Flannel reads it: the underlay MTU to assume instead of
    /// the interface's; the tunnel and the pods get `encapsulationOverhead` less. Nil: the
    /// interface's.
    public var mtu: Int?

    public init(vni: UInt32 = defaultVNI, port: UInt16 = defaultPort, directRouting: Bool = false, mtu: Int? = nil) {
        self.vni = vni
        self.port = port
        self.directRouting = directRouting
        self.mtu = mtu
    }
}
