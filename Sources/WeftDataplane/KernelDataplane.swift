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

    public static func vxlanDeviceName(vni: UInt32) -> String { NodeDesiredState.kernelDeviceName(vni: vni) }

    /// The node's desired state for `plan`, from the host as it is now.
    func desiredState(_ plan: PeerPlan, underlay: NetworkLink) throws -> NodeDesiredState {
        let facts = NodeHostFacts(underlayMTU: underlay.mtu, underlayNetworks: try netlink.addresses(index: underlay.index).map(\.network))
        return NodeDesiredState(node: settings, mode: .kernel, sourceChecks: SourceChecks(), plan: plan, facts: facts)
    }

    public func setUp() throws {
        let repaired = try repair()
        if !repaired.isEmpty { logger.info("kernel dataplane set up", metadata: ["changed": "\(repaired.joined(separator: "; "))"]) }
    }

    /// Puts the device back the way it belongs; returns what it had to change.
    public func repair() throws -> [String] {
        let underlay = try requireLink(settings.underlayInterface, netlink)
        let desired = try desiredState(PeerPlan(node: settings.planning, peers: [], onLinkNetworks: []), underlay: underlay)
        guard let spec = desired.vxlanDevice else { return [] }
        return try VXLANDeviceAdapter(netlink: netlink, logger: logger).converge(spec, superseded: desired.supersededDevices, underlay: underlay).changes
    }

    public func underlayNetworks() throws -> [IPv4Prefix] {
        try netlink.addresses(index: requireLink(settings.underlayInterface, netlink).index).map(\.network)
    }

    @discardableResult
    public func apply(_ plan: PeerPlan, since previous: PeerPlan?) throws -> ApplyReport {
        let underlay = try requireLink(settings.underlayInterface, netlink)
        var report = ApplyReport()
        let device = try settings.vxlanOptions.flatMap { try netlink.link(named: Self.vxlanDeviceName(vni: $0.vni)) }
        let interfaces = NodeInterfaceIndices(underlay: underlay.index, vxlanDevice: device?.index)
        let desired = try desiredState(plan, underlay: underlay)
        // Since a plan this dataplane applied, only the difference is written; else what
        // the kernel holds is read and compared.
        let applied = try previous.map { try desiredState($0, underlay: underlay) }

        // Neighbour and FDB entries first, so a new route never points at an unresolved VTEP.
        if let device {
            func neighbours(_ state: NodeDesiredState) -> [IPv4Address: NeighbourEntry] {
                Dictionary(uniqueKeysWithValues: state.neighbours.map { ($0.key, NeighbourEntry(interfaceIndex: device.index, address: $0.key, mac: $0.value)) })
            }
            func forwarding(_ state: NodeDesiredState) -> [MACAddress: ForwardingEntry] {
                Dictionary(uniqueKeysWithValues: state.forwardingEntries.map { ($0.key, ForwardingEntry(interfaceIndex: device.index, mac: $0.key, destination: $0.value)) })
            }
            let currentNeighbours = try applied.map(neighbours)
                ?? Dictionary(netlink.neighbours(index: device.index).filter(\.permanent).map { ($0.address, $0) }, uniquingKeysWith: { a, _ in a })
            let neighbourDiff = KeyedDiff(current: currentNeighbours, desired: neighbours(desired))
            for (_, entry) in neighbourDiff.upserts { try netlink.replaceNeighbour(entry) }
            let currentForwarding = try applied.map(forwarding)
                ?? Dictionary(netlink.forwardingEntries(index: device.index).map { ($0.mac, $0) }, uniquingKeysWith: { a, _ in a })
            let forwardingDiff = KeyedDiff(current: currentForwarding, desired: forwarding(desired))
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
        } else if !desired.neighbours.isEmpty {
            throw DataplaneError("the vxlan device is missing; set the dataplane up first")
        }

        try PeerRoutes(netlink: netlink, network: settings.network, ownSubnet: settings.subnet, interfaces: Set([underlay.index] + (device.map { [$0.index] } ?? [])))
            .reconcile(desired: try interfaces.routes(desired.peerRoutes), applied: try applied.map { try interfaces.routes($0.peerRoutes) }, into: &report)
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
