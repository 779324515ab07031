import Foundation
import Logging
import WeftCore
import WeftNetlink

/// The kernel dataplane, programmed exactly as Flannel programs it: for VXLAN the
/// `flannel.<VNI>` device (`id`, `local`, `dev`, `dstport`, `nolearning`, MTU = underlay
/// MTU - 50, `<subnet>/32`) and per peer a permanent neighbour, an FDB entry and an onlink
/// route; for host-gw and DirectRouting, `<subnet> via <peer IP> dev <underlay>`. Every
/// step compares with what the kernel holds first, so applying twice changes nothing.
public final class KernelDataplane: Dataplane {
    public let mode = DataplaneMode.kernel
    public let settings: NodeSettings
    private let netlink: NetlinkSocket
    private let logger: Logger

    public init(settings: NodeSettings, logger: Logger) throws {
        self.settings = settings
        self.logger = logger
        netlink = try NetlinkSocket()
    }

    public static func vxlanDeviceName(vni: UInt32) -> String { "flannel.\(vni)" }

    public func setUp() throws {
        let repaired = try ensureDevice()
        if !repaired.isEmpty { logger.info("kernel dataplane set up", metadata: ["changed": "\(repaired.joined(separator: "; "))"]) }
    }

    public func repair() throws -> [String] {
        try ensureDevice()
    }

    /// Puts the device back the way it belongs; returns what it had to change.
    @discardableResult
    func ensureDevice() throws -> [String] {
        guard let options = settings.vxlanOptions else { return [] }
        let underlay = try requireLink(settings.underlayInterface, netlink)
        let name = Self.vxlanDeviceName(vni: options.vni)
        let wanted = VXLANSettings.flannel(vni: options.vni, local: settings.publicIP, underlayIndex: underlay.index, port: options.port)
        let mtu = settings.podMTU(underlayMTU: underlay.mtu)
        var changes: [String] = []
        var link = try netlink.link(named: name)
        if let existing = link, existing.vxlan != wanted {
            // Flannel does the same: a device with other parameters cannot be changed in place.
            try netlink.deleteLink(index: existing.index)
            changes.append("replaced \(name), which had other vxlan settings")
            link = nil
        }
        if link == nil {
            try netlink.createVXLAN(name: name, settings: wanted, mtu: mtu, mac: settings.vtepMAC)
            link = try netlink.link(named: name)
            changes.append("created \(name)")
        }
        guard let device = link else { throw DataplaneError("vxlan device \(name) vanished while it was being set up: something else on this node deletes it; stop that and run again") }
        if device.mtu != mtu || device.mac != settings.vtepMAC || !device.isUp {
            try netlink.setLink(index: device.index, up: true, mtu: mtu, mac: settings.vtepMAC)
            if !changes.contains("created \(name)") { changes.append("reset \(name) to up, MTU \(mtu), MAC \(settings.vtepMAC)") }
        }
        let address = InterfaceAddress(interfaceIndex: device.index, address: settings.subnet.network, prefixLength: 32)
        if try !netlink.addresses(index: device.index).contains(address) {
            try netlink.addAddress(address)
            changes.append("address \(settings.subnet.network)/32 on \(name)")
        }
        return changes
    }

    public func underlayNetworks() throws -> [IPv4Prefix] {
        try netlink.addresses(index: requireLink(settings.underlayInterface, netlink).index).map(\.network)
    }

    /// The routes, neighbours and FDB entries a plan stands for.
    private struct Entries {
        var routes: [IPv4Prefix: Route] = [:]
        var neighbours: [IPv4Address: NeighbourEntry] = [:]
        var forwarding: [MACAddress: ForwardingEntry] = [:]

        init(_ plan: PeerPlan, underlay: Int32, device: Int32?) throws {
            for (subnet, path) in plan.paths {
                switch path {
                case .direct(let ip):
                    routes[subnet] = Route(destination: subnet, gateway: ip, interfaceIndex: underlay)
                case .vxlan(let ip, let mac):
                    guard let device else { throw DataplaneError("the vxlan device is missing; set the dataplane up first") }
                    routes[subnet] = Route(destination: subnet, gateway: subnet.network, interfaceIndex: device, onlink: true)
                    neighbours[subnet.network] = NeighbourEntry(interfaceIndex: device, address: subnet.network, mac: mac)
                    forwarding[mac] = ForwardingEntry(interfaceIndex: device, mac: mac, destination: ip)
                }
            }
        }
    }

    @discardableResult
    public func apply(_ plan: PeerPlan, since previous: PeerPlan?) throws -> ApplyReport {
        let underlay = try requireLink(settings.underlayInterface, netlink)
        var report = ApplyReport()
        let device = try settings.vxlanOptions.flatMap { try netlink.link(named: Self.vxlanDeviceName(vni: $0.vni)) }
        let desired = try Entries(plan, underlay: underlay.index, device: device?.index)
        // Since a plan this dataplane applied, only the difference is written; else what
        // the kernel holds is read and compared.
        let applied = try previous.map { try Entries($0, underlay: underlay.index, device: device?.index) }

        // Neighbour and FDB entries first, so a new route never points at an unresolved VTEP.
        if let device {
            let currentNeighbours = try applied?.neighbours
                ?? Dictionary(netlink.neighbours(index: device.index).filter(\.permanent).map { ($0.address, $0) }, uniquingKeysWith: { a, _ in a })
            let neighbourDiff = KeyedDiff(current: currentNeighbours, desired: desired.neighbours)
            for (_, entry) in neighbourDiff.upserts { try netlink.replaceNeighbour(entry) }
            let currentForwarding = try applied?.forwarding
                ?? Dictionary(netlink.forwardingEntries(index: device.index).map { ($0.mac, $0) }, uniquingKeysWith: { a, _ in a })
            let forwardingDiff = KeyedDiff(current: currentForwarding, desired: desired.forwarding)
            for (_, entry) in forwardingDiff.upserts { try netlink.replaceForwardingEntry(entry) }
            report.peersWritten = max(neighbourDiff.upserts.count, forwardingDiff.upserts.count)
            for address in neighbourDiff.removals {
                let stale = NeighbourEntry(interfaceIndex: device.index, address: address, mac: .zero)
                try ignoringMissing { try netlink.deleteNeighbour(stale) }
            }
            for mac in forwardingDiff.removals {
                guard let stale = currentForwarding[mac] else { continue }
                try ignoringMissing { try netlink.deleteForwardingEntry(stale) }
            }
            report.peersRemoved = max(neighbourDiff.removals.count, forwardingDiff.removals.count)
        }

        let interfaces = Set([underlay.index] + (device.map { [$0.index] } ?? []))
        try PeerRoutes(netlink: netlink, network: settings.network, ownSubnet: settings.subnet, interfaces: interfaces)
            .reconcile(desired: desired.routes, applied: applied?.routes, into: &report)
        if report.changedSomething {
            logger.info("applied peers", metadata: [
                "peers": "\(plan.paths.count)", "routes-written": "\(report.routesWritten)", "routes-removed": "\(report.routesRemoved)",
                "vteps-written": "\(report.peersWritten)", "vteps-removed": "\(report.peersRemoved)",
            ])
        }
        return report
    }

    public func tearDown() throws {
        try Self.tearDown(network: settings.network, vni: settings.vxlanOptions?.vni, underlayInterface: settings.underlayInterface, logger: logger)
    }

    /// Removes what a kernel dataplane of this network made in this namespace: Weft's peer
    /// routes through the underlay and the `flannel.<VNI>` device (its routes, neighbours and
    /// FDB entries go with it). Needs no lease, so `weft dataplane down` invents none.
    public static func tearDown(network: IPv4Prefix, vni: UInt32?, underlayInterface: String, logger: Logger) throws {
        let netlink = try NetlinkSocket()
        let underlay = try netlink.link(named: underlayInterface)
        for route in try netlink.routes() where route.isWefts && route.interfaceIndex == underlay?.index && route.gateway != nil
            && network.contains(route.destination) {
            try ignoringMissing { try netlink.deleteRoute(route) }
        }
        if let vni, let device = try netlink.link(named: vxlanDeviceName(vni: vni)) {
            try netlink.deleteLink(index: device.index)
        }
        logger.info("kernel dataplane torn down")
    }
}

func requireLink(_ name: String, _ netlink: NetlinkSocket) throws -> NetworkLink {
    if let link = try netlink.link(named: name) { return link }
    throw DataplaneError.missingInterface(name, available: try netlink.links().map(\.name))
}
