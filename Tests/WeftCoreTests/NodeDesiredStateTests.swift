import Testing
// @testable: the specs' memberwise initialisers are the module's own.
@testable import WeftCore


/// Everything a node holds, worked out without root: for each backend on each dataplane, the
/// device, the attachments, the programs' settings, the entries, the routes and the rules.
@Suite("The node's desired state: every resource Weft owns, from settings, plan and host facts")
struct NodeDesiredStateTests {
    let network = IPv4Prefix("10.244.0.0/16")!
    let ownSubnet = IPv4Prefix("10.244.1.0/24")!
    let vtepMAC = MACAddress("0a:58:00:00:00:01")!
    let facts = {
        var facts = NodeHostFacts(underlayMTU: 1500, underlayNetworks: [IPv4Prefix("198.18.0.0/24")!])
        facts.pods = [IPv4Address("10.244.1.3")!: 13, IPv4Address("10.244.1.2")!: 12]
        facts.decapsulationClearsTunnelGSO = true
        return facts
    }()
    /// A peer on the underlay's link, and one behind a router.
    let onLinkPeer = IPv4Address("198.18.0.2")!
    let routedPeer = IPv4Address("203.0.113.3")!

    func node(_ backend: Backend) -> NodeSettings {
        NodeSettings(network: network, subnetLength: 24, subnet: ownSubnet, publicIP: IPv4Address("198.18.0.1")!, underlayInterface: "eth0",
                     backend: backend, vtepMAC: vtepMAC)
    }

    func state(_ backend: Backend, _ mode: DataplaneMode, sourceChecks: SourceChecks = SourceChecks(), rules: Bool = false) -> NodeDesiredState {
        let settings = node(backend)
        let leases: [Lease] = switch backend {
        case .vxlan: [vxlanLease("10.244.2.0/24", "198.18.0.2", "0a:58:00:00:00:02"), vxlanLease("10.244.3.0/24", "203.0.113.3", "0a:58:00:00:00:03")]
        case .hostGateway: [hostGatewayLease("10.244.2.0/24", "198.18.0.2")]
        }
        let plan = PeerPlan(node: settings.planning, peers: aged(leases), onLinkNetworks: facts.underlayNetworks)
        let nodeRules = rules ? NodeRules(node: settings, mode: mode, masquerade: true, forward: true, sourceChecks: sourceChecks) : nil
        return NodeDesiredState(node: settings, mode: mode, sourceChecks: sourceChecks, plan: plan, facts: facts, rules: nodeRules)
    }

    var peer2: IPv4Prefix { IPv4Prefix("10.244.2.0/24")! }
    var peer3: IPv4Prefix { IPv4Prefix("10.244.3.0/24")! }
    var mac2: MACAddress { MACAddress("0a:58:00:00:00:02")! }
    var mac3: MACAddress { MACAddress("0a:58:00:00:00:03")! }

    @Test("VXLAN on the BPF dataplane: weft.1 (collect_md, NOARP, MTU 1450, the VTEP MAC, <subnet>/32, the cluster route), four hooks and a from_pod per pod, map entries, managed neighbours for on-link peers only, no kernel peer entries")
    func vxlanOnBPF() {
        let desired = state(.vxlan(VXLANOptions()), .bpf)
        #expect(desired.vxlanDevice == VXLANDeviceSpec(name: "weft.1", kind: .collectMetadata(port: 8472), mtu: 1450, mac: vtepMAC, arp: false,
                                                       address: IPv4Address("10.244.1.0")!, routes: [network]))
        #expect(desired.supersededDevices == ["flannel.1"], "flanneld's device holds the port")
        #expect(desired.attachments == [
            ProgramAttachment(interface: .underlay, hook: .ingress, program: .fromUnderlay),
            ProgramAttachment(interface: .vxlanDevice, hook: .ingress, program: .fromOverlay),
            ProgramAttachment(interface: .vxlanDevice, hook: .egress, program: .toOverlay),
            ProgramAttachment(interface: .pod(interfaceIndex: 12), hook: .ingress, program: .fromPod),
            ProgramAttachment(interface: .pod(interfaceIndex: 13), hook: .ingress, program: .fromPod),
        ], "the pods in address order")
        #expect(desired.programSettings == ProgramSettings(vni: 1, vtepMAC: vtepMAC, vxlanPort: 8472, tunnelMTU: 1450, checkPodSource: true,
                                                           checkUnderlaySource: true, clusterNetwork: network, localIP: IPv4Address("198.18.0.1")!,
                                                           decapsulateAggregates: true))
        #expect(desired.peerEntries == [peer2: .vxlan(underlayIP: onLinkPeer, vtepMAC: mac2), peer3: .vxlan(underlayIP: routedPeer, vtepMAC: mac3)])
        #expect(desired.tunnelEntries == [onLinkPeer: peer2, routedPeer: peer3])
        #expect(desired.managedNeighbours == [onLinkPeer], "only a peer on the underlay's link can be checked by its MAC")
        #expect(desired.peerRoutes.isEmpty, "the programs tunnel; no kernel route per VXLAN peer")
        #expect(desired.neighbours.isEmpty && desired.forwardingEntries.isEmpty)
    }

    @Test("VXLAN on the kernel dataplane: flannel.1 as flanneld makes it, and per peer an onlink route, a permanent neighbour and an FDB entry; no programs")
    func vxlanOnKernel() {
        let desired = state(.vxlan(VXLANOptions()), .kernel)
        #expect(desired.vxlanDevice == VXLANDeviceSpec(name: "flannel.1", kind: .flannel(vni: 1, local: IPv4Address("198.18.0.1")!, port: 8472),
                                                       mtu: 1450, mac: vtepMAC, arp: nil, address: IPv4Address("10.244.1.0")!, routes: []))
        #expect(desired.supersededDevices.isEmpty)
        #expect(desired.peerRoutes == [
            peer2: PeerRouteSpec(destination: peer2, gateway: IPv4Address("10.244.2.0")!, interface: .vxlanDevice, onlink: true),
            peer3: PeerRouteSpec(destination: peer3, gateway: IPv4Address("10.244.3.0")!, interface: .vxlanDevice, onlink: true),
        ])
        #expect(desired.neighbours == [IPv4Address("10.244.2.0")!: mac2, IPv4Address("10.244.3.0")!: mac3])
        #expect(desired.forwardingEntries == [mac2: onLinkPeer, mac3: routedPeer])
        #expect(desired.attachments.isEmpty && desired.programSettings == nil && desired.peerEntries.isEmpty && desired.tunnelEntries.isEmpty)
        #expect(desired.managedNeighbours.isEmpty, "the kernel dataplane checks no MAC")
    }

    @Test("DirectRouting: the on-link peer is routed through the underlay on both dataplanes, the other one tunnels")
    func directRouting() {
        var options = VXLANOptions()
        options.directRouting = true
        let direct = PeerRouteSpec(destination: peer2, gateway: onLinkPeer, interface: .underlay, onlink: false)
        let bpf = state(.vxlan(options), .bpf)
        #expect(bpf.peerRoutes == [peer2: direct])
        #expect(bpf.peerEntries == [peer2: .direct(underlayIP: onLinkPeer), peer3: .vxlan(underlayIP: routedPeer, vtepMAC: mac3)])
        #expect(bpf.managedNeighbours == [onLinkPeer])
        let kernel = state(.vxlan(options), .kernel)
        #expect(kernel.peerRoutes[peer2] == direct)
        #expect(kernel.peerRoutes[peer3]?.interface == .vxlanDevice)
        #expect(kernel.neighbours.keys.sorted() == [IPv4Address("10.244.3.0")!], "no VTEP entry for a peer routed directly")
    }

    @Test("host-gw: no device; a route per peer through the underlay on both dataplanes; on BPF the underlay and pod hooks alone")
    func hostGateway() {
        let route = PeerRouteSpec(destination: peer2, gateway: onLinkPeer, interface: .underlay, onlink: false)
        let bpf = state(.hostGateway, .bpf)
        #expect(bpf.vxlanDevice == nil && bpf.supersededDevices.isEmpty)
        #expect(bpf.attachments.map(\.interface) == [.underlay, .pod(interfaceIndex: 12), .pod(interfaceIndex: 13)])
        #expect(bpf.programSettings?.tunnelMTU == 1500, "host-gw adds no header")
        #expect(bpf.programSettings?.vni == 0)
        #expect(bpf.peerRoutes == [peer2: route])
        #expect(bpf.peerEntries == [peer2: .direct(underlayIP: onLinkPeer)])
        let kernel = state(.hostGateway, .kernel)
        #expect(kernel.vxlanDevice == nil && kernel.attachments.isEmpty)
        #expect(kernel.peerRoutes == [peer2: route])
    }

    @Test("Backend.MTU and Port reach the device and the programs")
    func mtuAndPort() {
        var options = VXLANOptions()
        options.mtu = 1400
        options.port = 4789
        let desired = state(.vxlan(options), .bpf)
        #expect(desired.vxlanDevice?.mtu == 1350)
        #expect(desired.vxlanDevice?.kind == .collectMetadata(port: 4789))
        #expect(desired.programSettings?.tunnelMTU == 1350)
        #expect(desired.programSettings?.vxlanPort == 4789)
    }

    @Test("Source checks off: the programs are told, and no managed neighbour is kept for a MAC check that does not run")
    func sourceChecksOff() {
        let desired = state(.vxlan(VXLANOptions()), .bpf, sourceChecks: SourceChecks(pod: false, underlay: false))
        #expect(desired.programSettings?.checkPodSource == false)
        #expect(desired.programSettings?.checkUnderlaySource == false)
        #expect(desired.managedNeighbours.isEmpty)
    }

    @Test("The rules: flanneld's chains on both dataplanes, the underlay guard on the kernel one only (from_underlay checks on BPF) and only with the check on")
    func rules() {
        #expect(state(.hostGateway, .kernel, rules: true).rules?.underlayGuard == UnderlayGuard.Scope(interface: "eth0", network: network))
        #expect(state(.hostGateway, .bpf, rules: true).rules?.underlayGuard == nil)
        #expect(state(.hostGateway, .kernel, sourceChecks: SourceChecks(underlay: false), rules: true).rules?.underlayGuard == nil)
        let flannel = state(.vxlan(VXLANOptions()), .bpf, rules: true).rules?.flannel
        #expect(flannel == FlannelRules(network: network, subnet: ownSubnet, masquerade: true, forward: true))
    }
}
