import WeftSystem
import WeftCore

/// The runtime settings every program reads as constants, set before load.
public struct DataplaneGlobals: Sendable, Equatable {
    public var vni: UInt32
    public var vtepMAC: MACAddress
    public var vxlanInterfaceIndex: UInt32
    /// The UDP port VXLAN arrives on; from_underlay decapsulates what it can of it.
    public var vxlanPort: UInt16
    public var underlayInterfaceIndex: UInt32
    /// The largest IPv4 packet sent into the tunnel; larger ones go to the kernel.
    public var tunnelMTU: UInt32
    /// Drop what a pod sends from any address but its own.
    public var checkPodSource: Bool
    /// Drop plain IP to the cluster network from the underlay unless a direct peer sent it.
    public var checkUnderlaySource: Bool
    /// The cluster network: unencapsulated traffic to it is taken from direct peers only.
    public var clusterNetwork: IPv4Prefix?
    /// This node's public IP: the outer source of what from_pod encapsulates.
    public var localIP: IPv4Address?
    /// from_pod writes the VXLAN headers itself and sends by the underlay (true), or hands the
    /// packet to the collect_md device with a tunnel key (false).
    public var encapsulateInProgram: Bool
    /// from_underlay decapsulates GRO aggregates and TCP too: only where the kernel resets
    /// their tunnel GSO state (`KernelFeatures.decapsulationClearsTunnelGSO`).
    public var decapsulateAggregates: Bool

    public init(vni: UInt32, vtepMAC: MACAddress, vxlanInterfaceIndex: UInt32, vxlanPort: UInt16,
                underlayInterfaceIndex: UInt32, tunnelMTU: UInt32, checkPodSource: Bool = true, checkUnderlaySource: Bool = true,
                clusterNetwork: IPv4Prefix? = nil, localIP: IPv4Address? = nil, encapsulateInProgram: Bool = true,
                decapsulateAggregates: Bool = false) {
        self.vni = vni
        self.vtepMAC = vtepMAC
        self.vxlanInterfaceIndex = vxlanInterfaceIndex
        self.vxlanPort = vxlanPort
        self.underlayInterfaceIndex = underlayInterfaceIndex
        self.tunnelMTU = tunnelMTU
        self.checkPodSource = checkPodSource
        self.checkUnderlaySource = checkUnderlaySource
        self.clusterNetwork = clusterNetwork
        self.localIP = localIP
        // Without a local IP there is no outer source: the device path.
        self.encapsulateInProgram = encapsulateInProgram && localIP != nil
        self.decapsulateAggregates = decapsulateAggregates
    }

    /// The desired state's settings, with the interface indices the devices have now.
    public init(_ settings: ProgramSettings, underlayInterfaceIndex: UInt32, vxlanInterfaceIndex: UInt32) {
        self.init(vni: settings.vni, vtepMAC: settings.vtepMAC, vxlanInterfaceIndex: vxlanInterfaceIndex, vxlanPort: settings.vxlanPort,
                  underlayInterfaceIndex: underlayInterfaceIndex, tunnelMTU: settings.tunnelMTU, checkPodSource: settings.checkPodSource,
                  checkUnderlaySource: settings.checkUnderlaySource, clusterNetwork: settings.clusterNetwork, localIP: settings.localIP,
                  decapsulateAggregates: settings.decapsulateAggregates)
    }

    /// Every global the programs read, with its value as the C declaration lays it out: the
    /// one list of the contract between the programs and Swift (`globalLayoutMatchesTheObjects`
    /// checks it against each object's `.rodata`).
    public var values: [(name: String, bytes: [UInt8])] {
        func bytes<Value: FixedWidthInteger>(_ value: Value) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }
        func flag(_ value: Bool) -> [UInt8] { [value ? 1 : 0] }
        return [
            ("weft_vni", bytes(vni)),
            ("weft_vtep_mac", vtepMAC.bytes),
            ("weft_vxlan_ifindex", bytes(vxlanInterfaceIndex)),
            ("weft_vxlan_port", bytes(vxlanPort)),
            ("weft_underlay_ifindex", bytes(underlayInterfaceIndex)),
            ("weft_tunnel_mtu", bytes(tunnelMTU)),
            ("weft_check_pod_source", flag(checkPodSource)),
            ("weft_check_underlay_source", flag(checkUnderlaySource)),
            // Both in network byte order, as the programs compare them with packet fields.
            ("weft_cluster_network", bytes((clusterNetwork?.network.value ?? 0).bigEndian)),
            ("weft_cluster_mask", bytes((clusterNetwork?.mask ?? 0).bigEndian)),
            ("weft_local_ip", bytes((localIP?.value ?? 0).bigEndian)),
            ("weft_encapsulate_in_program", flag(encapsulateInProgram)),
            ("weft_decap_aggregates", flag(decapsulateAggregates)),
        ]
    }

    public func apply(to object: BPFObject) throws(SystemCallError) {
        for (name, bytes) in values { try object.setGlobal(name, bytes: bytes) }
    }
}
