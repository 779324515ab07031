import WeftCore
import WeftNetlink

extension DataplaneMode {
    /// The vxlan device a node on this dataplane uses: Weft's collect_md `weft.<VNI>` for
    /// BPF, Flannel's `flannel.<VNI>` for the kernel.
    public func vxlanDeviceName(vni: UInt32) -> String {
        switch self {
        case .bpf: BPFDataplane.vxlanDeviceName(vni: vni)
        case .kernel: KernelDataplane.vxlanDeviceName(vni: vni)
        }
    }

    /// The VTEP MAC a node advertises before it has read its lease: its vxlan device's
    /// current one, so a restart changes nothing peers have cached; else the other
    /// dataplane's device's (a node switched from flanneld, or between Weft's dataplanes,
    /// keeps its MAC); else a new random one.
    public func currentOrNewVTEPMAC(vni: UInt32, _ netlink: NetlinkSocket) -> MACAddress {
        for mode in [self] + DataplaneMode.allCases.filter({ $0 != self }) {
            if let mac = (try? netlink.link(named: mode.vxlanDeviceName(vni: vni)))?.flatMap(\.mac) { return mac }
        }
        var generator = SystemRandomNumberGenerator()
        return MACAddress.randomLocal(using: &generator)
    }
}
