import Logging
import WeftCore
import WeftNetlink

/// Keeps the node's vxlan device as `NodeDesiredState` describes it, for both dataplanes:
/// reads the device and changes only what differs. A device with other vxlan settings
/// cannot be changed in place (Flannel does the same), so it is replaced; a superseded device
/// (the other dataplane's, which holds the VXLAN port) goes first.
struct VXLANDeviceAdapter {
    let netlink: NetlinkSocket
    let logger: Logger

    struct Outcome {
        var device: NetworkLink
        /// What had to change, for a log line and a repair report.
        var changes: [String]
        /// The device is new: whatever knew the old one by its index (the programs) must be told.
        var created: Bool
    }

    func converge(_ spec: VXLANDeviceSpec, superseded: [String], underlay: NetworkLink) throws -> Outcome {
        var changes: [String] = []
        let wanted = settings(spec.kind, underlay: underlay)
        var link = try netlink.link(named: spec.name)
        if let existing = link, !matches(existing, spec.kind, wanted) {
            logger.notice("replacing a vxlan device with other settings", metadata: ["device": "\(spec.name)"])
            try netlink.deleteLink(index: existing.index)
            changes.append("replaced \(spec.name), which had other vxlan settings")
            link = nil
        }
        for name in superseded {
            // A node taken over from flanneld (or from the other dataplane): its device holds the
            // VXLAN port, so it goes, and ours takes its place with the same MAC (the lease's).
            // Its routes, neighbours and FDB entries go with it.
            guard let previous = try netlink.link(named: name), previous.vxlan != nil else { continue }
            logger.notice("taking over from another dataplane: replacing its vxlan device", metadata: [
                "device": "\(name)", "by": "\(spec.name)", "vtep-mac": "\(spec.mac)"])
            try netlink.deleteLink(index: previous.index)
            changes.append("removed \(name), the other dataplane's device")
        }
        var created = false
        if link == nil {
            try netlink.createVXLAN(name: spec.name, settings: wanted, mtu: spec.mtu, mac: spec.mac)
            link = try netlink.link(named: spec.name)
            changes.append("created \(spec.name)")
            created = true
        }
        guard let device = link else {
            throw DataplaneError("vxlan device \(spec.name) vanished while it was being set up: something else on this node deletes it; stop that and run again")
        }
        let arpWrong = spec.arp.map { $0 != device.usesARP } ?? false
        if !device.isUp || device.mtu != spec.mtu || device.mac != spec.mac || arpWrong {
            try netlink.setLink(index: device.index, up: true, arp: spec.arp, mtu: spec.mtu, mac: spec.mac)
            if !created {
                changes.append("reset \(spec.name) to up\(spec.arp == false ? ", NOARP" : ""), MTU \(spec.mtu), MAC \(spec.mac)")
            }
        }
        let address = InterfaceAddress(interfaceIndex: device.index, address: spec.address, prefixLength: 32)
        if try !netlink.addresses(index: device.index).contains(address) {
            try netlink.addAddress(address)
            if !created { changes.append("address \(spec.address)/32 on \(spec.name)") }
        }
        let routes = try netlink.routes()
        for destination in spec.routes {
            let route = Route(destination: destination, gateway: nil, interfaceIndex: device.index)
            if !routes.contains(route) {
                try netlink.replaceRoute(route)
                if !created { changes.append("route \(destination) dev \(spec.name)") }
            }
        }
        return Outcome(device: try netlink.link(named: spec.name) ?? device, changes: changes, created: created)
    }

    private func settings(_ kind: VXLANDeviceSpec.Kind, underlay: NetworkLink) -> VXLANSettings {
        switch kind {
        case .collectMetadata(let port): .external(port: port)
        case .flannel(let vni, let local, let port): .flannel(vni: vni, local: local, underlayIndex: underlay.index, port: port)
        }
    }

    /// A collect_md device is known by its mode and port alone (the kernel reports no VNI or
    /// local address for one); Flannel's must match in every setting.
    private func matches(_ link: NetworkLink, _ kind: VXLANDeviceSpec.Kind, _ wanted: VXLANSettings) -> Bool {
        switch kind {
        case .collectMetadata: link.vxlan?.external == true && link.vxlan?.port == wanted.port
        case .flannel: link.vxlan == wanted
        }
    }
}
