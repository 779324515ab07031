import Foundation
import Testing
import WeftBPF
import WeftCore
import WeftNetlink
import WeftSystem

@Suite(.enabled(if: isRoot, "loading BPF programs needs root"))
struct FromUnderlayTests {
    let pins: PinDirectory

    // A failure here fails each test with the error, where `try!` would crash the runner.
    init() throws {
        pins = try PinDirectory()
    }

    @Test("A direct peer's pod traffic to a local pod is delivered when its frame comes from the peer's own MAC; its host's goes to the kernel; a stranger's is dropped")
    func peerTrafficToALocalPodIsDeliveredAndTheRestIsTheHosts() throws {
        let (program, underlay) = try hostGWNode()

        let fromPeerPod = try underlay.run(program, Frame(sourceMAC: underlay.peerMAC, source: IPv4Address("10.244.2.7")!, destination: IPv4Address("10.244.1.5")!))
        #expect(fromPeerPod.action == TCAction.redirect)
        #expect(fromPeerPod.packet.destinationMAC == podMAC)
        #expect(fromPeerPod.packet.sourceMAC == hostMAC)
        #expect(fromPeerPod.packet.ttl == 63)
        #expect(fromPeerPod.packet.ipv4ChecksumIsValid)

        // The peer's host itself (its underlay IP) reaches our pods through the kernel.
        let fromPeerHost = Frame(sourceMAC: underlay.peerMAC, source: IPv4Address("198.18.0.2")!, destination: IPv4Address("10.244.1.5")!)
        #expect(try underlay.run(program, fromPeerHost).action == TCAction.ok)
        // A stranger on the underlay routing to our pods, or through us to another node's, is dropped.
        for destination in ["10.244.1.5", "10.244.1.99", "10.244.3.4"] {
            let fromStranger = Frame(source: IPv4Address("192.0.2.7")!, destination: IPv4Address(destination)!)
            #expect(try underlay.run(program, fromStranger).action == TCAction.shot, "\(destination)")
        }
        #expect(try program.packets(.droppedUntrustedUnderlay) == 3)
        let toTheHost = Frame(source: IPv4Address("10.244.2.7")!, destination: IPv4Address("198.18.0.1")!)
        #expect(try underlay.run(program, toTheHost).action == TCAction.ok)
        #expect(try program.packets(.deliveredLocal) == 1)
    }

    @Test("A host that speaks for a direct peer, with the peer's pod or host address, is dropped: its MAC is not the peer's")
    func aDirectPeerSpokenForByAnotherHostIsDropped() throws {
        let (program, underlay) = try hostGWNode()
        let impostor = MACAddress("02:00:00:00:00:66")!
        for source in ["10.244.2.7", "198.18.0.2"] {
            let spoofed = Frame(sourceMAC: impostor, source: IPv4Address(source)!, destination: IPv4Address("10.244.1.5")!)
            let outcome = try underlay.run(program, spoofed)
            #expect(outcome.action == TCAction.shot, "from \(source)")
        }
        #expect(try program.packets(.droppedUnderlayWrongHop) == 2)
        #expect(try program.packets(.deliveredLocal) == 0)
    }

    @Test("With no neighbour entry for a direct peer there is nothing to check its hop against: the kernel takes its traffic, counted")
    func aDirectPeerWithNoNeighbourGoesToTheKernel() throws {
        let program = try LoadedProgram("from_underlay", pins: pins)
        let underlay = try Underlay()
        try program.endpoints.set(IPv4Address("10.244.1.5")!, LocalEndpoint(hostInterfaceIndex: 1, podMAC: podMAC, hostMAC: hostMAC))
        try program.peers.set(IPv4Prefix("10.244.3.0/24")!, PeerRoute(underlayIP: IPv4Address("198.18.0.3")!, vtepMAC: podMAC, mode: .direct))
        let input = Frame(sourceMAC: underlay.peerMAC, source: IPv4Address("10.244.3.7")!, destination: IPv4Address("10.244.1.5")!)
        let outcome = try underlay.run(program, input)
        #expect(outcome.action == TCAction.ok)
        #expect(outcome.packet == input.bytes, "unchanged")
        #expect(try program.packets(.passedUnverifiedHop) == 1)
    }

    @Test("In a VXLAN cluster no unencapsulated packet to the cluster network is taken, whatever its source claims")
    func plainIPInAVXLANClusterIsDropped() throws {
        let program = try vxlanNode()
        for source in ["10.244.2.7", "198.18.0.2", "192.0.2.7", "10.244.1.9"] {
            let plain = Frame(source: IPv4Address(source)!, destination: IPv4Address("10.244.1.5")!).bytes
            #expect(try program.run(plain).action == TCAction.shot, "from \(source)")
        }
        #expect(try program.packets(.droppedUntrustedUnderlay) == 4)
        #expect(try program.packets(.deliveredLocal) == 0)
        // The VXLAN path is unchanged.
        #expect(try program.run(fromPeer(peerPod).bytes).action == TCAction.redirect)
    }

    /// A host-gw node 198.18.0.1 with pod 10.244.1.5, on an underlay where the direct peer
    /// 198.18.0.2, owner of 10.244.2.0/24, is a known neighbour.
    private func hostGWNode() throws -> (LoadedProgram, Underlay) {
        let program = try LoadedProgram("from_underlay", pins: pins)
        let underlay = try Underlay()
        try program.endpoints.set(IPv4Address("10.244.1.5")!, LocalEndpoint(hostInterfaceIndex: 1, podMAC: podMAC, hostMAC: hostMAC))
        try program.peers.set(IPv4Prefix("10.244.2.0/24")!, PeerRoute(underlayIP: IPv4Address("198.18.0.2")!, vtepMAC: podMAC, mode: .direct))
        try program.tunnels.set(IPv4Address("198.18.0.2")!, subnet: IPv4Prefix("10.244.2.0/24")!)
        return (program, underlay)
    }

    /// A node 198.18.0.1 with pod 10.244.1.5; peer 198.18.0.2 owns 10.244.2.0/24, and peer
    /// 198.18.0.3 owns 10.244.3.0/24.
    private func vxlanNode(globals: DataplaneGlobals = LoadedProgram.globals) throws -> LoadedProgram {
        let program = try LoadedProgram("from_underlay", pins: pins, globals: globals)
        try program.endpoints.set(IPv4Address("10.244.1.5")!, LocalEndpoint(hostInterfaceIndex: 1, podMAC: podMAC, hostMAC: hostMAC))
        for (peer, subnet) in [("198.18.0.2", "10.244.2.0/24"), ("198.18.0.3", "10.244.3.0/24")] {
            try program.peers.set(IPv4Prefix(subnet)!, PeerRoute(underlayIP: IPv4Address(peer)!, vtepMAC: MACAddress("0a:58:00:00:00:02")!, mode: .vxlan))
            try program.tunnels.set(IPv4Address(peer)!, subnet: IPv4Prefix(subnet)!)
        }
        return program
    }

    @Test("A peer's host answers our pods from its own underlay address (hostNetwork pods, the kubelet): delivered, as the kernel path does")
    func aPeersHostAddressIsOneOfItsSources() throws {
        let program = try vxlanNode()
        var fromPeerHost = peerPod
        fromPeerHost.source = IPv4Address("198.18.0.2")!
        let outcome = try program.run(fromPeer(fromPeerHost).bytes)
        #expect(outcome.action == TCAction.redirect)
        #expect(Array(outcome.packet[26..<30]) == [198, 18, 0, 2])
        // Another peer's underlay address is not this one's to send from.
        var otherHost = peerPod
        otherHost.source = IPv4Address("198.18.0.3")!
        #expect(try program.run(fromPeer(otherHost).bytes).action == TCAction.ok, "to the device, which drops it")
        #expect(try program.packets(.deliveredLocal) == 1)
    }

    @Test("VXLAN to an outer destination that is not this node (another node, the subnet broadcast, multicast, a pod) is left to the kernel unchanged, never decapsulated")
    func vxlanForAnotherAddressIsNotTaken() throws {
        let program = try vxlanNode()
        for destination in ["198.18.0.9", "198.18.0.255", "224.0.0.1", "10.244.1.5"] {
            let input = Frame.vxlan(peerPod, from: IPv4Address("198.18.0.2")!, to: IPv4Address(destination)!).bytes
            let outcome = try program.run(input)
            #expect(outcome.action == TCAction.ok, "\(destination)")
            #expect(outcome.packet == input, "\(destination): unchanged")
        }
        #expect(try program.packets(.deliveredLocal) == 0)
        #expect(try program.packets(.passedHost) == 4)
    }

    @Test("A UDP length of 0, or one shorter or longer than the packet, is left to the kernel's UDP receive, which refuses it")
    func aUDPLengthThatIsNotThePacketsIsNotTaken() throws {
        let program = try vxlanNode()
        let good = fromPeer(peerPod).bytes
        let actual = Int(good[38]) << 8 | Int(good[39])
        for length in [0, 7, actual - 1, actual + 1, 0xffff] {
            var input = good
            input[38] = UInt8(length >> 8)
            input[39] = UInt8(length & 0xff)
            let outcome = try program.run(input)
            #expect(outcome.action == TCAction.ok, "UDP length \(length)")
            #expect(outcome.packet == input, "UDP length \(length): unchanged")
        }
        #expect(try program.packets(.deliveredLocal) == 0)
        #expect(try program.run(good).action == TCAction.redirect)
    }

    @Test("An inner frame for another MAC than our VTEP's is dropped, as the kernel drops it; a broadcast one goes to the kernel")
    func anInnerFrameForAnotherMACIsDropped() throws {
        let program = try vxlanNode()
        var forOther = peerPod
        forOther.destinationMAC = MACAddress("0a:58:0a:f4:01:05")!
        #expect(try program.run(fromPeer(forOther).bytes).action == TCAction.shot)
        #expect(try program.packets(.droppedOtherHost) == 1)
        var broadcast = peerPod
        broadcast.destinationMAC = MACAddress("ff:ff:ff:ff:ff:ff")!
        let input = fromPeer(broadcast).bytes
        let outcome = try program.run(input)
        #expect(outcome.action == TCAction.ok)
        #expect(outcome.packet == input)
        #expect(try program.packets(.deliveredLocal) == 0)
    }

    @Test("VXLAN from a peer for a third node's pod is a reflection: dropped and counted, not routed back into the tunnel")
    func transitFromTheOverlayToTheOverlayIsDropped() throws {
        let program = try vxlanNode()
        var reflected = peerPod
        reflected.destination = IPv4Address("10.244.3.4")!
        let outcome = try program.run(fromPeer(reflected).bytes)
        #expect(outcome.action == TCAction.shot)
        #expect(try program.packets(.droppedOverlayTransit) == 1)
        // Our own subnet's addresses that are no pod (the gateway) are the kernel's.
        var toGateway = peerPod
        toGateway.destination = IPv4Address("10.244.1.1")!
        #expect(try program.run(fromPeer(toGateway).bytes).action == TCAction.ok)
    }

    @Test("A VXLAN peer on this link is checked as a direct peer is: the same packet from another host's MAC is dropped before any path is chosen, aggregates among them")
    func aVXLANPeerSpokenForByAnotherHostIsDropped() throws {
        let program = try vxlanNode()
        let underlay = try Underlay()
        var spoofed = fromPeer(peerPod)
        spoofed.sourceMAC = MACAddress("02:00:00:00:00:66")!
        #expect(try underlay.run(program, spoofed).action == TCAction.shot)
        #expect(try program.packets(.droppedUnderlayWrongHop) == 1)
        var genuine = fromPeer(peerPod)
        genuine.sourceMAC = underlay.peerMAC
        #expect(try underlay.run(program, genuine).action == TCAction.redirect)
        // Peer 198.18.0.3 has no neighbour entry: nothing to check against, so it is taken.
        var unverified = Frame.vxlan(Frame(destinationMAC: LoadedProgram.ourVTEP, source: IPv4Address("10.244.3.7")!, destination: IPv4Address("10.244.1.5")!),
                                     from: IPv4Address("198.18.0.3")!, to: IPv4Address("198.18.0.1")!)
        unverified.sourceMAC = MACAddress("02:00:00:00:00:66")!
        #expect(try underlay.run(program, unverified).action == TCAction.redirect)
        #expect(try program.packets(.deliveredLocal) == 2)
    }

    /// A TCP segment (its ports: the payload's first bytes) of flow `flow` from a peer pod to ours.
    private func tcpSegment(flow: UInt8) -> Frame {
        var segment = peerPod
        segment.ipProtocol = 6
        segment.payload = [0x30, flow, 0x1f, 0x90] + Array(segment.payload.dropFirst(4))
        return segment
    }

    private let podMAC = MACAddress("0a:58:0a:f4:01:05")!
    private let hostMAC = MACAddress("ee:ee:ee:ee:ee:05")!
    private let peerPod = Frame(destinationMAC: LoadedProgram.ourVTEP, source: IPv4Address("10.244.2.7")!, destination: IPv4Address("10.244.1.5")!)

    private func fromPeer(_ inner: Frame) -> Frame {
        Frame.vxlan(inner, from: IPv4Address("198.18.0.2")!, to: IPv4Address("198.18.0.1")!)
    }

    @Test func aVXLANPacketFromAPeerIsDecapsulatedIntoThePod() throws {
        let program = try vxlanNode()
        let input = fromPeer(peerPod).bytes
        let outcome = try program.run(input)
        #expect(outcome.action == TCAction.redirect)
        #expect(outcome.packet.count == input.count - 50, "outer IPv4, UDP, VXLAN and inner Ethernet are gone")
        #expect(outcome.packet.destinationMAC == podMAC)
        #expect(outcome.packet.sourceMAC == hostMAC)
        #expect(Array(outcome.packet[26..<34]) == [10, 244, 2, 7, 10, 244, 1, 5], "the inner addresses")
        #expect(outcome.packet.ttl == 63)
        #expect(outcome.packet.ipv4ChecksumIsValid)
        #expect(Array(outcome.packet.suffix(32)) == peerPod.payload)
        #expect(try program.packets(.deliveredLocal) == 1)
    }

    @Test("The probe for decapsulating aggregates agrees with the running kernel's own BTF: the flag is there exactly when the kernel names it")
    func theAggregateProbeMatchesTheKernel() throws {
        let btf = try Data(contentsOf: URL(fileURLWithPath: "/sys/kernel/btf/vmlinux"))
        let named = btf.range(of: Data("BPF_F_ADJ_ROOM_DECAP_L4_UDP".utf8)) != nil
        #expect(KernelFeatures.decapsulationClearsTunnelGSO() == named)
    }

    @Test("Where the kernel cannot reset tunnel GSO state from BPF, GRO aggregates go to the vxlan device unchanged; single UDP and TCP segments are taken")
    func aggregatesTakeTheDeviceWithoutTheKernelsHelp() throws {
        let program = try vxlanNode()
        let udp = fromPeer(peerPod).bytes
        let asAggregate = try program.run(udp, gsoSize: 1398)
        #expect(asAggregate.action == TCAction.ok)
        #expect(asAggregate.packet == udp)
        #expect(try program.packets(.passedSlowPath) == 1)
        #expect(try program.run(udp).action == TCAction.redirect)
        let segment = try program.run(fromPeer(tcpSegment(flow: 1)).bytes)
        #expect(segment.action == TCAction.redirect, "a TCP segment of a flow with nothing on the device goes straight in")
        #expect(segment.packet.count == fromPeer(tcpSegment(flow: 1)).bytes.count - 50)
    }

    @Test("A TCP flow's segments follow its aggregate onto the vxlan device until from_overlay has seen them all, so none overtakes it; other flows go straight in")
    func segmentsFollowTheirFlowsAggregateOntoTheDevice() throws {
        let program = try vxlanNode()
        let overlay = try LoadedProgram("from_overlay", pins: pins)
        let flow = fromPeer(tcpSegment(flow: 1)).bytes
        #expect(try program.run(flow, gsoSize: 1398).action == TCAction.ok, "the aggregate takes the device")
        for _ in 0..<2 {
            let behind = try program.run(flow)
            #expect(behind.action == TCAction.ok, "a segment behind it follows")
            #expect(behind.packet == flow, "unchanged")
        }
        #expect(try program.run(fromPeer(tcpSegment(flow: 2)).bytes).action == TCAction.redirect, "another flow is not held up")
        // The device delivers the three to from_overlay, which counts them through.
        for count in 1...3 {
            _ = try overlay.run(tcpSegment(flow: 1).bytes)
            let next = try program.run(flow)
            if count < 3 {
                #expect(next.action == TCAction.ok, "after \(count) of 3 through the device, still behind them")
                _ = try overlay.run(tcpSegment(flow: 1).bytes)
            } else {
                #expect(next.action == TCAction.redirect, "all through: the flow goes straight in again")
            }
        }
    }

    @Test("Forced on (the probe overridden), decapsulating aggregates follows the kernel: delivered where it resets tunnel GSO state, otherwise to the vxlan device unchanged, never dropped or damaged")
    func aggregatesForcedOnFollowTheKernel() throws {
        var globals = LoadedProgram.globals
        globals.decapsulateAggregates = true
        let program = try vxlanNode(globals: globals)
        let kernelResets = KernelFeatures.decapsulationClearsTunnelGSO()
        var tcp = peerPod
        tcp.ipProtocol = 6
        for (name, input, gsoSize) in [("TCP segment", fromPeer(tcp).bytes, UInt32(0)), ("UDP", fromPeer(peerPod).bytes, 0),
                                       ("TCP aggregate", fromPeer(tcp).bytes, 1398)] {
            let outcome = try program.run(input, gsoSize: gsoSize)
            if kernelResets && gsoSize == 0 {
                #expect(outcome.action == TCAction.redirect, "\(name)")
                #expect(outcome.packet.count == input.count - 50, "\(name)")
                #expect(outcome.packet.ipv4ChecksumIsValid, "\(name)")
            } else if !kernelResets {
                #expect(outcome.action == TCAction.ok, "\(name)")
                #expect(outcome.packet == input, "\(name): unchanged")
            }
            // A test run's aggregate has no GSO type, which a kernel with the flag may refuse to
            // shrink; either way it is never dropped.
            #expect(outcome.action != TCAction.shot, "\(name)")
        }
        if !kernelResets {
            #expect(try program.packets(.passedSlowPath) == 3)
            #expect(try program.packets(.deliveredLocal) == 0)
        }
    }

    @Test("A VXLAN frame tagged for another VLAN, arriving on a real veth, is left to the kernel's VLAN handling; untagged, the same frame is decapsulated")
    func aVLANTaggedFrameOnTheUnderlayIsTheKernels() throws {
        let program = try vxlanNode()
        let underlay = try Underlay()
        try underlay.namespaces.must(underlay.namespace, ["ip", "link", "set", "u0peer", "up"])
        let descriptor = try program.object.programDescriptor("from_underlay")
        try NetworkNamespace.entered("/run/netns/\(underlay.namespace)") { () throws(SystemCallError) in
            try TCAttachment(interfaceIndex: Int32(underlay.interfaceIndex), direction: .ingress).attach(programDescriptor: descriptor, name: "from_underlay")
        }
        let u0MAC = try underlay.namespaces.must(underlay.namespace, ["cat", "/sys/class/net/u0/address"]).trimmingCharacters(in: .whitespacesAndNewlines)
        var frame = fromPeer(peerPod)
        frame.destinationMAC = MACAddress(u0MAC)!
        frame.sourceMAC = underlay.peerMAC
        for vlan in [7, 0] {
            let sent = try RawFrames.send(frame.bytes, namespace: underlay.namespace, interface: "u0peer", vlan: vlan)
            #expect(sent.succeeded, "\(sent.stderr)")
        }
        #expect(try waitUntil(seconds: 3) { try program.packets(.deliveredLocal) == 1 }, "the untagged frame is taken")
        #expect(try program.packets(.passedVLANTagged) == 1, "the tagged one is the kernel's")
    }

    @Test(arguments: NotForTheFastPath.allCases)
    func whatTheFastPathDoesNotTakeGoesToTheVXLANDeviceUnchanged(_ packet: NotForTheFastPath) throws {
        let program = try vxlanNode()
        let input = packet.bytes(peerPod)
        let outcome = try program.run(input)
        #expect(outcome.action == TCAction.ok)
        #expect(outcome.packet == input)
        #expect(try program.packets(.deliveredLocal) == 0)
    }
}

/// A namespace with an underlay link 198.18.0.1/24 whose neighbour table knows the direct peer
/// 198.18.0.2 by `peerMAC`: the FIB and neighbour data `from_underlay` checks a hop against.
/// Programs run with the test's thread inside it, the packet arriving on that link.
struct Underlay {
    let namespaces = Namespaces()
    let namespace: String
    let interfaceIndex: UInt32
    let peerMAC = MACAddress("02:00:00:00:00:aa")!

    init() throws {
        namespace = try namespaces.topology.addNode("underlay")
        try namespaces.topology.addLoneLink(.init(namespace, "u0", "198.18.0.1/24"))
        try namespaces.must(namespace, ["ip", "neigh", "add", "198.18.0.2", "lladdr", "\(peerMAC)", "dev", "u0", "nud", "permanent"])
        let index = try namespaces.must(namespace, ["cat", "/sys/class/net/u0/ifindex"]).trimmingCharacters(in: .whitespacesAndNewlines)
        interfaceIndex = UInt32(index) ?? 0
    }

    func run(_ program: LoadedProgram, _ frame: Frame) throws -> ProgramTestRun.Outcome {
        var outcome: Result<ProgramTestRun.Outcome, any Error>?
        try NetworkNamespace.entered("/run/netns/\(namespace)") {
            outcome = Result { try program.run(frame.bytes, ingressInterface: interfaceIndex) }
        }
        return try outcome!.get()
    }
}

/// VXLAN packets from_underlay leaves to the vxlan device and from_overlay, each for its reason.
enum NotForTheFastPath: String, CaseIterable, CustomTestStringConvertible {
    case otherVNI = "a VNI that is not ours"
    case outerChecksum = "an outer UDP checksum the kernel must verify"
    case badOuterHeader = "an outer IPv4 header whose checksum is wrong"
    case paddedFrame = "a frame longer than its outer IPv4 packet"
    case unknownPeer = "an outer source that is no peer"
    case spoofedSource = "an inner source outside the sender's subnet"
    case noLocalPod = "an inner destination that is no local pod"
    case otherHost = "a frame addressed to another host's MAC"

    var testDescription: String { rawValue }

    private func frame(_ inner: Frame) -> Frame {
        var inner = inner
        var peer = IPv4Address("198.18.0.2")!
        var vni: UInt32 = 1
        switch self {
        case .otherVNI: vni = 2
        case .unknownPeer: peer = IPv4Address("198.18.0.9")!
        case .spoofedSource: inner.source = IPv4Address("10.244.3.7")!
        case .noLocalPod: inner.destination = IPv4Address("10.244.1.99")!
        case .outerChecksum, .badOuterHeader, .paddedFrame, .otherHost: break
        }
        var outer = Frame.vxlan(inner, from: peer, to: IPv4Address("198.18.0.1")!, vni: vni)
        if self == .outerChecksum { outer.udpChecksum = 0x1234 }
        if self == .otherHost { outer.destinationMAC = MACAddress("02:00:00:00:00:77")! }
        return outer
    }

    /// The frame on the wire: the outer packet, damaged where the case says.
    func bytes(_ inner: Frame) -> [UInt8] {
        var bytes = frame(inner).bytes
        if self == .badOuterHeader { bytes[14 + 10] ^= 0xff }
        if self == .paddedFrame { bytes += [0, 0, 0, 0] }
        return bytes
    }
}
