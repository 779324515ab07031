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

    public static func vxlanDeviceName(vni: UInt32) -> String { "weft.\(vni)" }

    public func setUp() throws {
        let underlay = try requireLink(settings.underlayInterface)
        try BPFFilesystem.ensureMounted(at: pinDirectory)
        if let problem = BPFFilesystem.restrictToOwner(pinDirectory) {
            throw DataplaneError("pin directory \(pinDirectory): \(problem)")
        }
        let tunnelMTU = settings.podMTU(underlayMTU: underlay.mtu)
        var vxlan: NetworkLink?
        if let options = settings.vxlanOptions {
            vxlan = try ensureVXLANDevice(options, mtu: tunnelMTU)
        }
        let globals = DataplaneGlobals(vni: settings.vxlanOptions?.vni ?? 0, vtepMAC: settings.vtepMAC,
                                       vxlanInterfaceIndex: UInt32(vxlan?.index ?? 0),
                                       vxlanPort: settings.vxlanOptions?.port ?? VXLANOptions.defaultPort,
                                       underlayInterfaceIndex: UInt32(underlay.index), tunnelMTU: tunnelMTU,
                                       checkPodSource: sourceChecks.pod, checkUnderlaySource: sourceChecks.underlay,
                                       clusterNetwork: settings.network, localIP: settings.publicIP,
                                       decapsulateAggregates: KernelFeatures.decapsulationClearsTunnelGSO())
        var descriptors: [String: Int32] = [:]
        var objects: [BPFObject] = []
        for name in BPFPrograms.names {
            let object = try BPFObject(path: programs.objectPath(name), pinDirectory: pinDirectory)
            try globals.apply(to: object)
            try object.load()
            objects.append(object)
            descriptors[name] = try object.programDescriptor(name)
            try ProgramPin.pin(descriptors[name]!, name: name, in: pinDirectory)
        }
        try TCAttachment(interfaceIndex: underlay.index, direction: .ingress)
            .attach(programDescriptor: descriptors["from_underlay"]!, name: "from_underlay")
        if let vxlan {
            try TCAttachment(interfaceIndex: vxlan.index, direction: .ingress)
                .attach(programDescriptor: descriptors["from_overlay"]!, name: "from_overlay")
            try TCAttachment(interfaceIndex: vxlan.index, direction: .egress)
                .attach(programDescriptor: descriptors["to_overlay"]!, name: "to_overlay")
        }
        let links = try netlink.links()
        let endpoints = BPFEndpoints(pinDirectory: pinDirectory)
        if let cniDataDirectory {
            for registered in try endpoints.registerRecorded(in: cniDataDirectory, links: links, underlay: underlay.index) {
                logger.notice("\(registered)")
            }
        }
        let pods = try endpoints.prune(links: links, underlay: underlay.index)
        for (_, endpoint) in pods.kept { try endpoints.attach(interfaceIndex: Int32(endpoint.hostInterfaceIndex)) }
        for forgotten in pods.forgotten { logger.notice("\(forgotten)") }
        try detachFromUnusedInterfaces(links, using: [underlay.index] + (vxlan.map { [$0.index] } ?? []))
        logger.info("BPF dataplane set up", metadata: [
            "underlay": "\(underlay.name)", "vxlan": "\(vxlan?.name ?? "none")", "mtu": "\(tunnelMTU)",
            "pods": "\(pods.kept.count)", "forgotten": "\(pods.forgotten.count)", "pins": "\(pinDirectory)",
            "vxlan_receive": "\(globals.decapsulateAggregates ? "all in BPF" : "TCP and GRO aggregates by the vxlan device (the kernel cannot reset tunnel GSO state from BPF)")",
        ])
        withExtendedLifetime(objects) {}
    }

    public func underlayNetworks() throws -> [IPv4Prefix] {
        try netlink.addresses(index: requireLink(settings.underlayInterface).index).map(\.network)
    }

    @discardableResult
    public func apply(_ plan: PeerPlan, since previous: PeerPlan?) throws -> ApplyReport {
        let underlay = try requireLink(settings.underlayInterface)
        let maps = try PinnedMaps(directory: pinDirectory)
        var report = ApplyReport()

        // Since a plan this dataplane applied, only the difference is written; else what the
        // maps hold is read and compared.
        let peerDiff = try previous.map { KeyedDiff(current: $0.paths, desired: plan.paths) }?.mapValues(PeerRoute.init(path:))
            ?? KeyedDiff(current: maps.peers.entries(), desired: plan.paths.mapValues(PeerRoute.init(path:)))
        for (subnet, route) in peerDiff.upserts { try maps.peers.set(subnet, route) }
        for subnet in peerDiff.removals { try maps.peers.remove(subnet) }
        report.peersWritten = peerDiff.upserts.count
        report.peersRemoved = peerDiff.removals.count

        let tunnelDiff = KeyedDiff(current: try previous?.tunnels ?? maps.tunnels.entries(), desired: plan.tunnels)
        for (ip, subnet) in tunnelDiff.upserts { try maps.tunnels.set(ip, subnet: subnet) }
        for ip in tunnelDiff.removals { try maps.tunnels.remove(ip) }

        // Kernel routes for direct peers: the path for host-originated traffic, and for
        // whatever the programs leave to the stack.
        let routes = PeerRoutes(netlink: netlink, network: settings.network, ownSubnet: settings.subnet, interfaces: [underlay.index])
        func directRoutes(_ plan: PeerPlan) -> [IPv4Prefix: Route] {
            Dictionary(uniqueKeysWithValues: plan.directRoutes.map { subnet, ip in
                (subnet, Route(destination: subnet, gateway: ip, interfaceIndex: underlay.index))
            })
        }
        try routes.reconcile(desired: directRoutes(plan), applied: previous.map(directRoutes), into: &report)
        // Every peer on the underlay's link has its frames checked against its MAC: the
        // direct ones, and the VXLAN ones that share the segment.
        let onLink = try netlink.addresses(index: underlay.index).map(\.network)
        let linkPeers = Set(plan.paths.values.map(\.underlayIP).filter { ip in onLink.contains { $0.contains(ip) } })
        try keepPeersResolved(linkPeers, underlay: underlay.index)
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
        var repairs: [String] = []
        var attachments: [(TCAttachment, String)] = [(TCAttachment(interfaceIndex: underlay.index, direction: .ingress), "from_underlay")]
        if let options = settings.vxlanOptions {
            let name = Self.vxlanDeviceName(vni: options.vni)
            guard let device = try netlink.link(named: name), device.vxlan?.external == true else {
                // The programs know the device by its ifindex: a new device needs new programs.
                try setUp()
                return ["recreated \(name) and reloaded the programs"]
            }
            let mtu = settings.podMTU(underlayMTU: underlay.mtu)
            if !device.isUp || device.usesARP || device.mtu != mtu {
                try netlink.setLink(index: device.index, up: true, arp: false, mtu: mtu)
                repairs.append("reset \(name) to up, NOARP, MTU \(mtu)")
            }
            let address = InterfaceAddress(interfaceIndex: device.index, address: settings.subnet.network, prefixLength: 32)
            if try !netlink.addresses(index: device.index).contains(address) {
                try netlink.addAddress(address)
                repairs.append("address \(address.address)/32 on \(name)")
            }
            let route = Route(destination: settings.network, gateway: nil, interfaceIndex: device.index)
            if try !netlink.routes().contains(route) {
                try netlink.replaceRoute(route)
                repairs.append("route \(settings.network) dev \(name)")
            }
            attachments.append((TCAttachment(interfaceIndex: device.index, direction: .ingress), "from_overlay"))
            attachments.append((TCAttachment(interfaceIndex: device.index, direction: .egress), "to_overlay"))
        }
        let links = try netlink.links()
        let pods = try BPFEndpoints(pinDirectory: pinDirectory).prune(links: links, underlay: underlay.index)
        repairs += pods.forgotten
        for (address, endpoint) in pods.kept.sorted(by: { $0.key < $1.key }) {
            attachments.append((TCAttachment(interfaceIndex: Int32(endpoint.hostInterfaceIndex), direction: .ingress), "from_pod (pod \(address))"))
        }
        for (attachment, label) in attachments {
            let name = String(label.prefix { $0 != " " })
            let program = try ProgramPin.open(name, in: pinDirectory)
            defer { close(program) }
            if try attachment.attachedProgramID() != ProgramPin.id(of: program) {
                try attachment.attach(programDescriptor: program, name: name)
                repairs.append("\(label) at the \(attachment)")
            }
        }
        // A from_pod left on an interface whose pod is forgotten (or no pod's) goes too.
        repairs += try detachFromUnusedInterfaces(links, using: attachments.map(\.0.interfaceIndex))
        return repairs
    }

    /// The pins of every map and program that are not in the pin directory.
    private func missingPins() -> [String] {
        let paths = PinnedMaps.allNames.map { "\(pinDirectory)/\($0)" } + BPFPrograms.names.map { ProgramPin.path($0, in: pinDirectory) }
        return paths.filter { !FileManager.default.fileExists(atPath: $0) }
    }

    public func missingWithoutNotice() -> String? {
        let missing = missingPins()
        return missing.isEmpty ? nil : "pins are gone: \(missing.joined(separator: ", "))"
    }

    /// Removes Weft's filters from interfaces this dataplane no longer uses: the underlay of
    /// an earlier run with another `--iface`, say. Pods' veths keep theirs.
    @discardableResult
    private func detachFromUnusedInterfaces(_ links: [NetworkLink], using hooked: [Int32]) throws -> [String] {
        let pods = try PinnedMaps(directory: pinDirectory).endpoints.entries().values.map { Int32($0.hostInterfaceIndex) }
        let inUse = Set(hooked + pods)
        var detached: [String] = []
        for link in links where !inUse.contains(link.index) {
            for direction in [TCAttachment.Direction.ingress, .egress]
            where try TCAttachment(interfaceIndex: link.index, direction: direction).detach() {
                detached.append("\(link.name) \(direction)")
            }
        }
        if !detached.isEmpty {
            logger.notice("removed Weft's filters from interfaces it no longer uses", metadata: ["filters": "\(detached.joined(separator: ", "))"])
        }
        return detached.map { "removed Weft's filter from \($0), which no pod or hook of this node uses" }
    }

    /// Puts the pins back when some are gone (deleted, or the bpffs unmounted) while the
    /// programs run on: first the maps, taken from the attached programs so the pods and
    /// peers they hold are kept, then fresh programs. Nil when every pin is there.
    private func restorePins(underlay: NetworkLink) throws -> String? {
        guard !missingPins().isEmpty else { return nil }
        try BPFFilesystem.ensureMounted(at: pinDirectory)
        var hooks = [TCAttachment(interfaceIndex: underlay.index, direction: .ingress)]
        if let options = settings.vxlanOptions, let device = try netlink.link(named: Self.vxlanDeviceName(vni: options.vni)) {
            hooks += [TCAttachment(interfaceIndex: device.index, direction: .ingress), TCAttachment(interfaceIndex: device.index, direction: .egress)]
        }
        var maps = 0
        for hook in hooks {
            if let program = try hook.attachedProgramID() { maps += try PinnedMaps.restore(fromProgram: program, into: pinDirectory) }
        }
        try setUp()
        return "the pins in \(pinDirectory) were gone: pinned \(maps) maps again from the running programs and reloaded the programs"
    }

    /// Adopts the collect_md device if it has the right port, else (re)creates it; then
    /// sets its MTU, MAC, NOARP, address and the cluster network's route through it.
    private func ensureVXLANDevice(_ options: VXLANOptions, mtu: UInt32) throws -> NetworkLink {
        let name = Self.vxlanDeviceName(vni: options.vni)
        let wanted = VXLANSettings.external(port: options.port)
        var link = try netlink.link(named: name)
        if let existing = link, existing.vxlan?.external != true || existing.vxlan?.port != wanted.port {
            logger.notice("replacing vxlan device with the wrong settings", metadata: ["device": "\(name)"])
            try netlink.deleteLink(index: existing.index)
            link = nil
        }
        // A node taken over from flanneld (or from Weft's kernel dataplane): its flannel.<VNI>
        // holds the VXLAN port, so it goes, and weft.<VNI> takes its place with the same MAC
        // (the lease's). Its routes, neighbours and FDB entries go with it.
        let kernelDevice = KernelDataplane.vxlanDeviceName(vni: options.vni)
        if let previous = try netlink.link(named: kernelDevice), previous.vxlan != nil {
            logger.notice("taking over from a kernel dataplane: replacing its vxlan device", metadata: [
                "device": "\(kernelDevice)", "by": "\(name)", "vtep-mac": "\(settings.vtepMAC)"])
            try netlink.deleteLink(index: previous.index)
        }
        if link == nil {
            try netlink.createVXLAN(name: name, settings: wanted, mtu: mtu, mac: settings.vtepMAC)
            link = try netlink.link(named: name)
        }
        guard let device = link else { throw DataplaneError("vxlan device \(name) vanished while it was being set up: something else on this node deletes it; stop that and run again") }
        try netlink.setLink(index: device.index, up: true, arp: false, mtu: mtu, mac: settings.vtepMAC)
        try netlink.addAddress(InterfaceAddress(interfaceIndex: device.index, address: settings.subnet.network, prefixLength: 32))
        try netlink.replaceRoute(Route(destination: settings.network, gateway: nil, interfaceIndex: device.index))
        return device
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
