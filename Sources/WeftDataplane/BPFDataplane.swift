import Foundation
import Logging
import WeftBPF
import WeftCore
import WeftNetlink
import WeftSystem

/// The TC eBPF dataplane. VXLAN: a collect_md device (`weft.<VNI>`) whose programs pick
/// the tunnel per packet; host-gw and DirectRouting: `bpf_redirect_neigh` over the
/// underlay. Maps and programs are pinned, so a new process adopts and reconciles what
/// the last one left: it replaces filters atomically and never flushes a map first.
public final class BPFDataplane: Dataplane {
    public let mode = DataplaneMode.bpf
    public let settings: NodeSettings
    public let pinDirectory: String
    public let programs: BPFPrograms
    private let netlink: NetlinkSocket
    private let logger: Logger

    /// What from_pod and from_underlay refuse for the source a packet claims.
    public let sourceChecks: SourceChecks
    /// weft-cni's records of the pods it added (its `dataDir`): registered at set-up where
    /// the endpoint map lacks them, however the node was left.
    public let cniDataDirectory: String?
    /// False once the kernel refused a managed neighbour entry (used from the supervisor's thread only).
    private var managedNeighboursWork = true

    public init(settings: NodeSettings, pinDirectory: String, programs: BPFPrograms, logger: Logger, sourceChecks: SourceChecks = SourceChecks(),
                cniDataDirectory: String? = nil) throws {
        self.sourceChecks = sourceChecks
        self.cniDataDirectory = cniDataDirectory
        self.settings = settings
        self.pinDirectory = pinDirectory
        self.programs = programs
        self.logger = logger
        netlink = try NetlinkSocket()
    }

    public static func vxlanDeviceName(vni: UInt32) -> String { NodeDesiredState.bpfDeviceName(vni: vni) }

    /// Whether this kernel's decapsulation resets tunnel GSO state: probed once, when first needed.
    private lazy var decapsulationClearsTunnelGSO = KernelFeatures.decapsulationClearsTunnelGSO()

    /// The node's desired state for `plan`, from the host as it is now.
    func desiredState(_ plan: PeerPlan, underlay: NetworkLink, pods: [IPv4Address: Int32] = [:]) throws -> NodeDesiredState {
        var facts = NodeHostFacts(underlayMTU: underlay.mtu, underlayNetworks: try netlink.addresses(index: underlay.index).map(\.network))
        facts.pods = pods
        facts.decapsulationClearsTunnelGSO = decapsulationClearsTunnelGSO
        return NodeDesiredState(node: settings, mode: .bpf, sourceChecks: sourceChecks, plan: plan, facts: facts)
    }

    public func setUp() throws {
        try BPFFilesystem.ensureMounted(at: pinDirectory)
        if let problem = BPFFilesystem.restrictToOwner(pinDirectory) {
            throw DataplaneError("pin directory \(pinDirectory): \(problem)")
        }
        try converge(loadPrograms: true)
    }

    /// Brings the node to its desired state (all but the peers, which `apply` keeps): the
    /// device, the programs (loaded when `loadPrograms` says, or when the device is new, as
    /// they know it by its index), the pods and every attachment. Returns what it changed.
    @discardableResult
    private func converge(loadPrograms: Bool) throws -> [String] {
        let underlay = try requireLink(settings.underlayInterface)
        let nothing = PeerPlan(node: settings.planning, peers: [], onLinkNetworks: [])
        var desired = try desiredState(nothing, underlay: underlay)
        var changes: [String] = []
        var device: NetworkLink?
        if let spec = desired.vxlanDevice {
            let outcome = try VXLANDeviceAdapter(netlink: netlink, logger: logger).converge(spec, superseded: desired.supersededDevices, underlay: underlay)
            device = outcome.device
            changes += outcome.changes
            if outcome.created && !loadPrograms { changes.append("recreated \(spec.name) and reloaded the programs") }
            if outcome.created { return changes + (try converge(loadPrograms: true, underlay: underlay, device: device, desired: &desired)) }
        }
        return changes + (try converge(loadPrograms: loadPrograms, underlay: underlay, device: device, desired: &desired))
    }

    private func converge(loadPrograms: Bool, underlay: NetworkLink, device: NetworkLink?, desired: inout NodeDesiredState) throws -> [String] {
        var objects: [BPFObject] = []
        if loadPrograms, let programSettings = desired.programSettings {
            let globals = DataplaneGlobals(programSettings, underlayInterfaceIndex: UInt32(underlay.index), vxlanInterfaceIndex: UInt32(device?.index ?? 0))
            for name in ProgramName.allCases.map(\.rawValue) {
                let object = try BPFObject(path: programs.objectPath(name), pinDirectory: pinDirectory)
                try globals.apply(to: object)
                try object.load()
                objects.append(object)
                try ProgramPin.pin(try object.programDescriptor(name), name: name, in: pinDirectory)
            }
        }
        var changes: [String] = []
        let links = try netlink.links()
        let endpoints = BPFEndpoints(pinDirectory: pinDirectory)
        if loadPrograms, let cniDataDirectory {
            for registered in try endpoints.registerRecorded(in: cniDataDirectory, links: links, underlay: underlay.index) {
                logger.notice("\(registered)")
            }
        }
        let pods = try endpoints.prune(links: links, underlay: underlay.index)
        for forgotten in pods.forgotten { logger.notice("\(forgotten)") }
        changes += pods.forgotten
        desired = try desiredState(PeerPlan(node: settings.planning, peers: [], onLinkNetworks: []), underlay: underlay,
                                   pods: pods.kept.mapValues { Int32($0.hostInterfaceIndex) })
        let attached = try AttachmentAdapter(pinDirectory: pinDirectory, logger: logger).converge(
            desired.attachments, interfaces: NodeInterfaceIndices(underlay: underlay.index, vxlanDevice: device?.index), links: links,
            registeredNow: { Set(try PinnedMaps(directory: pinDirectory).endpoints.entries().values.map { Int32($0.hostInterfaceIndex) }) })
        if loadPrograms {
            logger.info("BPF dataplane set up", metadata: [
                "underlay": "\(underlay.name)", "vxlan": "\(device?.name ?? "none")", "mtu": "\(desired.programSettings?.tunnelMTU ?? 0)",
                "pods": "\(pods.kept.count)", "forgotten": "\(pods.forgotten.count)", "pins": "\(pinDirectory)",
                "vxlan_receive": "\(desired.programSettings?.decapsulateAggregates == true ? "all in BPF" : "TCP and GRO aggregates by the vxlan device (the kernel cannot reset tunnel GSO state from BPF)")",
            ])
        } else {
            changes += attached
        }
        withExtendedLifetime(objects) {}
        return changes
    }

    public func underlayNetworks() throws -> [IPv4Prefix] {
        try netlink.addresses(index: requireLink(settings.underlayInterface).index).map(\.network)
    }

    @discardableResult
    public func apply(_ plan: PeerPlan, since previous: PeerPlan?) throws -> ApplyReport {
        let underlay = try requireLink(settings.underlayInterface)
        let maps = try PinnedMaps(directory: pinDirectory)
        var report = ApplyReport()
        let desired = try desiredState(plan, underlay: underlay)
        // Since a plan this dataplane applied, only the difference is written; else what the
        // maps hold is read and compared.
        let applied = try previous.map { try desiredState($0, underlay: underlay) }

        let peerDiff = try applied.map { KeyedDiff(current: $0.peerEntries, desired: desired.peerEntries) }?.mapValues(PeerRoute.init(path:))
            ?? KeyedDiff(current: maps.peers.entries(), desired: desired.peerEntries.mapValues(PeerRoute.init(path:)))
        for (subnet, route) in peerDiff.upserts { try maps.peers.set(subnet, route) }
        for subnet in peerDiff.removals { try maps.peers.remove(subnet) }
        report.peersWritten = peerDiff.upserts.count
        report.peersRemoved = peerDiff.removals.count

        let tunnelDiff = KeyedDiff(current: try applied?.tunnelEntries ?? maps.tunnels.entries(), desired: desired.tunnelEntries)
        for (ip, subnet) in tunnelDiff.upserts { try maps.tunnels.set(ip, subnet: subnet) }
        for ip in tunnelDiff.removals { try maps.tunnels.remove(ip) }

        // Kernel routes for direct peers: the path for host-originated traffic, and for
        // whatever the programs leave to the stack.
        let interfaces = NodeInterfaceIndices(underlay: underlay.index, vxlanDevice: nil)
        try PeerRoutes(netlink: netlink, network: settings.network, ownSubnet: settings.subnet, interfaces: [underlay.index])
            .reconcile(desired: try interfaces.routes(desired.peerRoutes), applied: try applied.map { try interfaces.routes($0.peerRoutes) }, into: &report)
        try keepPeersResolved(desired.managedNeighbours, underlay: underlay.index)
        if report.changedSomething {
            logger.info("applied peers", metadata: [
                "peers": "\(plan.paths.count)", "written": "\(report.peersWritten)", "removed": "\(report.peersRemoved)",
                "routes-written": "\(report.routesWritten)", "routes-removed": "\(report.routesRemoved)",
            ])
        }
        return report
    }

    /// from_underlay checks the frames of a peer on the underlay's link against the MAC the
    /// neighbour table holds for it. A managed entry per such peer has the kernel resolve
    /// that MAC before the peer's first packet and keep it resolved; entries for peers that
    /// left go. A kernel without managed entries (before 5.16) leaves the table to ARP, and
    /// traffic from a peer with no entry yet is not checked (`passed_unverified_hop` for a
    /// direct peer; a VXLAN one is taken as before).
    private func keepPeersResolved(_ peers: Set<IPv4Address>, underlay: Int32) throws {
        guard managedNeighboursWork, sourceChecks.underlay else { return }
        let managed = Set(try netlink.managedNeighbours(index: underlay))
        for address in peers.subtracting(managed).sorted() {
            let refused: SystemCallError?
            do {
                try netlink.addManagedNeighbour(address, interfaceIndex: underlay)
                refused = nil
            } catch {
                guard error.isUnsupportedRequest else { throw error }
                refused = error
            }
            if let refused {
                managedNeighboursWork = false
                logger.warning("this kernel keeps no managed neighbour entries (Linux 5.16+): a peer's traffic is checked against its MAC only once ARP has resolved it", metadata: ["error": "\(refused)"])
                return
            }
        }
        for address in managed.subtracting(peers) {
            try ignoringMissing { try netlink.deleteNeighbour(NeighbourEntry(interfaceIndex: underlay, address: address, mac: .zero)) }
        }
    }

    public func tearDown() throws {
        try Self.tearDown(pinDirectory: pinDirectory, logger: logger)
    }

    /// Removes what any Weft BPF dataplane left in this network namespace and pin
    /// directory: filters with Weft's handle, `weft.*` collect_md devices, the direct
    /// routes its peer map names, and the pins. Needs nothing but the pin directory, so
    /// it also cleans up after a crash.
    public static func tearDown(pinDirectory: String, logger: Logger) throws {
        let netlink = try NetlinkSocket()
        var removed: [String] = []
        if let maps = try? PinnedMaps(directory: pinDirectory) {
            let routes = try netlink.routes()
            var managed: [IPv4Address: [Int32]] = [:]
            for link in try netlink.links() {
                for address in try netlink.managedNeighbours(index: link.index) { managed[address, default: []].append(link.index) }
            }
            for (subnet, peer) in try maps.peers.entries() {
                for route in routes where peer.mode == .direct && route.isWefts && route.destination == subnet && route.gateway == peer.underlayIP {
                    try netlink.deleteRoute(route)
                    removed.append("route \(subnet)")
                }
                for index in managed[peer.underlayIP] ?? [] {
                    try ignoringMissing { try netlink.deleteNeighbour(NeighbourEntry(interfaceIndex: index, address: peer.underlayIP, mac: .zero)) }
                    removed.append("managed neighbour \(peer.underlayIP)")
                }
            }
        }
        for link in try netlink.links() {
            if link.kind == "vxlan", link.vxlan?.external == true, link.name.hasPrefix("weft.") {
                try netlink.deleteLink(index: link.index)
                removed.append("device \(link.name)")
                continue
            }
            for direction in [TCAttachment.Direction.ingress, .egress] {
                if try TCAttachment(interfaceIndex: link.index, direction: direction).detach() {
                    removed.append("filter on \(link.name)")
                }
            }
        }
        let pins = (try? FileManager.default.contentsOfDirectory(atPath: pinDirectory)) ?? []
        for pin in pins where pin.hasPrefix("weft_") || pin.hasPrefix("prog_") {
            unlink("\(pinDirectory)/\(pin)")
            removed.append("pin \(pin)")
        }
        logger.info("BPF dataplane torn down", metadata: ["removed": "\(removed.count)", "pins": "\(pinDirectory)"])
    }

    private func requireLink(_ name: String) throws -> NetworkLink {
        try WeftDataplane.requireLink(name, netlink)
    }

    public func repair() throws -> [String] {
        let underlay = try requireLink(settings.underlayInterface)
        if let restored = try restorePins(underlay: underlay) { return [restored] }
        return try converge(loadPrograms: false)
    }

    /// The pins of every map and program that are not in the pin directory.
    private func missingPins() -> [String] {
        let paths = PinnedMaps.allNames.map { "\(pinDirectory)/\($0)" } + ProgramName.allCases.map { ProgramPin.path($0.rawValue, in: pinDirectory) }
        return paths.filter { !FileManager.default.fileExists(atPath: $0) }
    }

    public func missingWithoutNotice() -> String? {
        let missing = missingPins()
        return missing.isEmpty ? nil : "pins are gone: \(missing.joined(separator: ", "))"
    }

    /// Puts the pins back when some are gone (deleted, or the bpffs unmounted) while the
    /// programs run on: first the maps, taken from the attached programs so the pods and
    /// peers they hold are kept, then fresh programs. Nil when every pin is there.
    private func restorePins(underlay: NetworkLink) throws -> String? {
        guard !missingPins().isEmpty else { return nil }
        try BPFFilesystem.ensureMounted(at: pinDirectory)
        let desired = try desiredState(PeerPlan(node: settings.planning, peers: [], onLinkNetworks: []), underlay: underlay)
        let interfaces = NodeInterfaceIndices(underlay: underlay.index,
                                                      vxlanDevice: try desired.vxlanDevice.flatMap { try netlink.link(named: $0.name)?.index })
        var maps = 0
        for attachment in desired.attachments {
            guard let index = interfaces.index(of: attachment.interface) else { continue }
            let hook = TCAttachment(interfaceIndex: index, direction: attachment.hook == .ingress ? .ingress : .egress)
            if let program = try hook.attachedProgramID() { maps += try PinnedMaps.restore(fromProgram: program, into: pinDirectory) }
        }
        try setUp()
        return "the pins in \(pinDirectory) were gone: pinned \(maps) maps again from the running programs and reloaded the programs"
    }
}

extension PeerRoute {
    init(path: PeerPlan.Path) {
        switch path {
        case .vxlan(let ip, let mac): self.init(underlayIP: ip, vtepMAC: mac, mode: .vxlan)
        case .direct(let ip): self.init(underlayIP: ip, vtepMAC: .zero, mode: .direct)
        }
    }
}
