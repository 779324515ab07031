import Logging
import WeftCore
import WeftNetlink

/// Handing a node from Weft's BPF dataplane back to flanneld in place. flanneld keeps a
/// `flannel.<VNI>` it finds with the settings it wants, and with it the device's MAC; it
/// creates a device with a new MAC otherwise, which every peer must then learn. So Weft's
/// `weft.<VNI>` is replaced by the `flannel.<VNI>` flanneld would make, with the lease's MAC,
/// the subnet's /32 address and the same port and MTU, and flanneld adopts it unchanged.
public enum FlanneldHandover {
    /// Removes the BPF dataplane (`tearDown`) and leaves Flannel's device in its place, on
    /// `underlayInterface` at its first address. Returns the device made, or nil when there
    /// was no `weft.<VNI>` to hand over.
    public static func leaveFlannelDevice(underlayInterface: String, logger: Logger, tearDown: () throws -> Void) throws -> String? {
        let netlink = try NetlinkSocket()
        guard let weft = try netlink.links().first(where: { $0.name.hasPrefix("weft.") && $0.vxlan != nil }),
              let vni = UInt32(weft.name.dropFirst("weft.".count)), let mac = weft.mac else {
            try tearDown()
            return nil
        }
        guard let underlay = try netlink.link(named: underlayInterface) else {
            throw DataplaneError("interface \(underlayInterface) not found: give --iface the interface flanneld will use")
        }
        guard let local = try netlink.addresses(index: underlay.index).first?.address else {
            throw DataplaneError("interface \(underlayInterface) has no IPv4 address for flannel.\(vni) to send from; give --iface the interface flanneld will use")
        }
        let addresses = try netlink.addresses(index: weft.index).filter { $0.prefixLength == 32 }
        let port = weft.vxlan?.port ?? VXLANOptions.defaultPort
        try tearDown()
        let name = KernelDataplane.vxlanDeviceName(vni: vni)
        try netlink.createVXLAN(name: name, settings: .flannel(vni: vni, local: local, underlayIndex: underlay.index, port: port),
                                mtu: weft.mtu, mac: mac)
        guard let device = try netlink.link(named: name) else {
            throw DataplaneError("\(name) vanished right after it was made: something else on this node deletes it")
        }
        try netlink.setLink(index: device.index, up: true, arp: false)
        for address in addresses {
            try netlink.addAddress(InterfaceAddress(interfaceIndex: device.index, address: address.address, prefixLength: 32))
        }
        logger.notice("left flanneld's device in place of Weft's", metadata: ["device": "\(name)", "vtep-mac": "\(mac)", "local": "\(local)"])
        return name
    }
}
