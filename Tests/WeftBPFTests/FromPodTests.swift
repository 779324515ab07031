import Testing
import WeftBPF
import WeftCore

@Suite(.enabled(if: isRoot, "loading BPF programs needs root"))
struct FromPodTests {
    let pins: PinDirectory

    // A failure here fails each test with the error, where `try!` would crash the runner.
    init() throws {
        pins = try PinDirectory()
    }
    let peerVTEP = MACAddress("a6:12:34:56:78:9a")!
    /// The sending pod: 10.244.1.2 (`Frame`'s default source) behind veth 7.
    static let senderVeth: UInt32 = 7

    /// from_pod with two peers and the sending pod registered; its packets arrive on the pod's veth.
    struct Program {
        let loaded: LoadedProgram
        var peers: PeerMap { loaded.peers }
        var endpoints: EndpointMap { loaded.endpoints }
        func run(_ packet: [UInt8], ingressInterface: UInt32 = FromPodTests.senderVeth) throws -> ProgramTestRun.Outcome {
            try loaded.run(packet, ingressInterface: ingressInterface)
        }
        func packets(_ counter: DataplaneCounter) throws -> UInt64 { try loaded.packets(counter) }
    }

    func program(globals: DataplaneGlobals = LoadedProgram.globals) throws -> Program {
        let program = try LoadedProgram("from_pod", pins: pins, globals: globals)
        try program.endpoints.set(IPv4Address("10.244.1.2")!, LocalEndpoint(hostInterfaceIndex: Self.senderVeth,
                                                                             podMAC: MACAddress("02:00:00:00:00:aa")!, hostMAC: MACAddress("02:00:00:00:00:fe")!))
        try program.peers.set(IPv4Prefix("10.244.2.0/24")!, PeerRoute(underlayIP: IPv4Address("198.18.0.2")!, vtepMAC: peerVTEP, mode: .vxlan))
        try program.peers.set(IPv4Prefix("10.244.3.0/24")!, PeerRoute(underlayIP: IPv4Address("198.18.0.3")!, vtepMAC: peerVTEP, mode: .direct))
        return Program(loaded: program)
    }

    /// from_pod writing the VXLAN headers itself, from node 198.18.0.1.
    func encapsulatingProgram() throws -> Program {
        var globals = LoadedProgram.globals
        globals.encapsulateInProgram = true
        return try program(globals: globals)
    }

    @Test("Encapsulated in the program: the outer IPv4, UDP and VXLAN headers as Linux's vxlan device writes them, byte for byte, and the inner frame a Flannel VTEP accepts")
    func aPacketToAVXLANPeerIsEncapsulatedInTheProgram() throws {
        let program = try encapsulatingProgram()
        let input = Frame().bytes
        let outcome = try program.run(input)
        #expect(outcome.action == TCAction.redirect)
        let packet = outcome.packet
        try #require(packet.count == input.count + 50, "outer IPv4, UDP, VXLAN and the inner Ethernet header")
        #expect(Array(packet[12..<14]) == [0x08, 0x00])
        let outer = Array(packet[14..<34])
        #expect(outer[0] == 0x45 && outer[1] == 0, "IPv4, no options, the inner packet's ECN (none)")
        #expect(Int(outer[2]) << 8 | Int(outer[3]) == input.count - 14 + 50, "total length: outer IPv4, UDP, VXLAN and inner Ethernet headers, then the inner packet")
        #expect(Array(outer[6..<8]) == [0, 0], "no DF, as the vxlan device sends by default")
        #expect(outer[8] == 64 && outer[9] == 17, "TTL 64, UDP")
        #expect(Array(outer[12..<16]) == [198, 18, 0, 1] && Array(outer[16..<20]) == [198, 18, 0, 2])
        #expect(Frame.checksum(outer) == 0, "the outer header checksum")
        let udp = Array(packet[34..<42])
        let sourcePort = Int(udp[0]) << 8 | Int(udp[1])
        #expect((32768...60999).contains(sourcePort), "a flow-hashed port in the local port range: \(sourcePort)")
        #expect(Array(udp[2..<4]) == [0x21, 0x18], "8472")
        #expect(Int(udp[4]) << 8 | Int(udp[5]) == input.count - 14 + 30, "UDP length")
        #expect(Array(udp[6..<8]) == [0, 0], "no UDP checksum, as Flannel's device")
        #expect(Array(packet[42..<50]) == [0x08, 0, 0, 0, 0, 0, 1, 0], "the I flag and VNI 1")
        let inner = Array(packet[50...])
        #expect(inner.destinationMAC == peerVTEP && inner.sourceMAC == LoadedProgram.ourVTEP)
        #expect(inner.ttl == 63 && inner.ipv4ChecksumIsValid)
        #expect(Array(inner[34...]) == Array(input[34...]), "the payload is untouched")
        // One flow keeps its port.
        let again = try program.run(input)
        #expect(Array(again.packet[34..<36]) == Array(udp[0..<2]))
        #expect(try program.packets(.encapsulated) == 2)
    }

    @Test("With encapsulation in the program off (the device path), the frame gets Flannel's inner headers and a tunnel key")
    func aPacketToAVXLANPeerIsEncapsulatedWithFlannelsInnerHeaders() throws {
        let program = try program()
        let input = Frame().bytes
        let outcome = try program.run(input)
        #expect(outcome.action == TCAction.redirect)
        #expect(outcome.packet.destinationMAC == peerVTEP, "a Flannel node drops frames not addressed to its VTEP MAC")
        #expect(outcome.packet.sourceMAC == LoadedProgram.ourVTEP)
        #expect(outcome.packet.ttl == 63)
        #expect(outcome.packet.ipv4ChecksumIsValid)
        #expect(Array(outcome.packet[34...]) == Array(input[34...]), "the payload is untouched")
        #expect(try program.packets(.encapsulated) == 1)
    }

    @Test func aPacketToADirectPeerIsRoutedToItsUnderlayIP() throws {
        let program = try program()
        let outcome = try program.run(Frame(destination: IPv4Address("10.244.3.9")!).bytes)
        #expect(outcome.action == TCAction.redirect)
        #expect(outcome.packet.ttl == 63)
        #expect(outcome.packet.ipv4ChecksumIsValid)
        #expect(try program.packets(.routedDirect) == 1)
        #expect(try program.packets(.encapsulated) == 0)
    }

    @Test func aPacketToALocalPodIsDeliveredStraightToIt() throws {
        let program = try program()
        let podMAC = MACAddress("0a:58:0a:f4:01:05")!
        let hostMAC = MACAddress("ee:ee:ee:ee:ee:05")!
        try program.endpoints.set(IPv4Address("10.244.1.5")!, LocalEndpoint(hostInterfaceIndex: 1, podMAC: podMAC, hostMAC: hostMAC))
        let outcome = try program.run(Frame(destination: IPv4Address("10.244.1.5")!).bytes)
        #expect(outcome.action == TCAction.redirect)
        #expect(outcome.packet.destinationMAC == podMAC)
        #expect(outcome.packet.sourceMAC == hostMAC)
        #expect(outcome.packet.ttl == 63)
        #expect(outcome.packet.ipv4ChecksumIsValid)
        #expect(try program.packets(.deliveredLocal) == 1)
    }

    @Test func whatTheProgramDoesNotHandleGoesToTheKernelUnchanged() throws {
        let program = try program()
        let cases: [(String, Frame, DataplaneCounter)] = [
            ("ARP", Frame(etherType: 0x0806), .passedNotIPv4),
            ("IPv6", Frame(etherType: 0x86dd, payload: [0x60] + [UInt8](repeating: 0, count: 39) + [UInt8](repeating: 7, count: 8)), .passedNotIPv4),
            ("TTL 1, for ICMP time exceeded", Frame(ttl: 1), .passedTTLExpiring),
            ("an unknown destination", Frame(destination: IPv4Address("192.0.2.1")!), .passedNoRoute),
            ("larger than the tunnel MTU, with DF: reported as a drop too", Frame(payload: [UInt8](repeating: 1, count: 1500)), .passedTooBigDF),
        ]
        for (reason, frame, counter) in cases {
            let before = try program.packets(counter)
            let outcome = try program.run(frame.bytes)
            #expect(outcome.action == TCAction.ok, "\(reason)")
            #expect(outcome.packet == frame.bytes, "\(reason): unchanged")
            #expect(try program.packets(counter) == before + 1, "\(reason) is counted as \(counter)")
        }
        #expect(try program.packets(.encapsulated) == 0)
    }

    @Test func theLongestPrefixWins() throws {
        let program = try program()
        let otherVTEP = MACAddress("a6:00:00:00:00:99")!
        try program.peers.set(IPv4Prefix("10.244.2.128/25")!, PeerRoute(underlayIP: IPv4Address("198.18.0.9")!, vtepMAC: otherVTEP, mode: .vxlan))
        #expect(try program.run(Frame(destination: IPv4Address("10.244.2.200")!).bytes).packet.destinationMAC == otherVTEP)
        #expect(try program.run(Frame(destination: IPv4Address("10.244.2.100")!).bytes).packet.destinationMAC == peerVTEP)
    }

    @Test("A pod sends from its own address on its own veth only: five foreign sources are dropped and counted")
    func spoofedPodSourcesAreDropped() throws {
        let program = try program()
        try program.endpoints.set(IPv4Address("10.244.1.9")!, LocalEndpoint(hostInterfaceIndex: 9, podMAC: MACAddress("02:00:00:00:00:09")!,
                                                                             hostMAC: MACAddress("02:00:00:00:00:fe")!))
        // The gateway, the network address, another pod (on another veth), another node's pod, the internet.
        for source in ["10.244.1.1", "10.244.1.0", "10.244.1.9", "10.244.2.3", "192.0.2.9"] {
            var frame = Frame()
            frame.source = IPv4Address(source)!
            #expect(try program.run(frame.bytes).action == TCAction.shot, "\(source)")
        }
        // The pod's own address, but on another pod's veth.
        #expect(try program.run(Frame().bytes, ingressInterface: 9).action == TCAction.shot)
        #expect(try program.packets(.droppedPodSpoofedSource) == 6)
        #expect(try program.run(Frame().bytes).action == TCAction.redirect, "its own address on its own veth passes")
        #expect(try program.packets(.encapsulated) == 1)
    }

    /// An ARP message from the sending pod's veth: `operation` 1 asks, 2 answers.
    func arp(operation: UInt8 = 2, senderMAC: String = "02:00:00:00:00:aa", senderIP: String = "10.244.1.2", targetIP: String = "10.244.1.1") -> Frame {
        let body: [UInt8] = [0, 1, 0x08, 0x00, 6, 4, 0, operation] + MACAddress(senderMAC)!.bytes + IPv4Address(senderIP)!.octets
            + [0xee, 0xee, 0xee, 0xee, 0xee, 0x01] + IPv4Address(targetIP)!.octets
        return Frame(destinationMAC: MACAddress("ff:ff:ff:ff:ff:ff")!, sourceMAC: MACAddress(senderMAC)!, etherType: 0x0806, payload: body)
    }

    @Test("A pod's ARP answer claiming another pod's or the gateway's address, or another MAC, is dropped; a request from a foreign address goes on as a probe (sender 0.0.0.0); its own ARP, and probes, go on unchanged")
    func spoofedARPFromAPodIsDroppedOrAnonymised() throws {
        let program = try program()
        try program.endpoints.set(IPv4Address("10.244.1.9")!, LocalEndpoint(hostInterfaceIndex: 9, podMAC: MACAddress("02:00:00:00:00:09")!,
                                                                             hostMAC: MACAddress("02:00:00:00:00:fe")!))
        let spoofed = [
            arp(senderIP: "10.244.1.9"),                                   // another pod's address
            arp(senderMAC: "02:00:00:00:00:09", senderIP: "10.244.1.9"),  // another pod's address and MAC
            arp(senderIP: "10.244.1.1"),                                   // the gateway's
            arp(senderMAC: "02:00:00:00:00:66"),                           // its own address with another MAC
            arp(senderIP: "10.244.2.3", targetIP: "10.244.2.3"),           // a gratuitous answer for another node's pod
        ]
        for frame in spoofed {
            #expect(try program.run(frame.bytes).action == TCAction.shot)
        }
        #expect(try program.run(arp().bytes, ingressInterface: 9).action == TCAction.shot, "its own answer on another pod's veth")
        #expect(try program.packets(.droppedPodARPSpoofed) == 6)
        for request in [arp(operation: 1, senderIP: "10.244.1.9"), arp(operation: 1, senderIP: "10.244.2.3", targetIP: "10.244.2.3")] {
            let outcome = try program.run(request.bytes)
            #expect(outcome.action == TCAction.ok)
            var probe = request.bytes
            probe[28..<32] = [0, 0, 0, 0]
            #expect(outcome.packet == probe, "the sender address is gone, nothing else changed")
        }
        #expect(try program.packets(.passedARPAsProbe) == 2)
        for (reason, frame) in [("its own answer", arp()), ("its own request", arp(operation: 1)), ("a probe", arp(operation: 1, senderIP: "0.0.0.0"))] {
            let outcome = try program.run(frame.bytes)
            #expect(outcome.action == TCAction.ok, "\(reason)")
            #expect(outcome.packet == frame.bytes, "\(reason): unchanged")
        }
        #expect(try program.packets(.passedNotIPv4) == 3)
    }

    @Test("With the check off, a pod's ARP is the kernel's, as Flannel leaves it")
    func arpCheckFollowsTheSourceCheck() throws {
        var globals = LoadedProgram.globals
        globals.checkPodSource = false
        let program = try program(globals: globals)
        #expect(try program.run(arp(senderIP: "10.244.1.1").bytes).action == TCAction.ok)
        #expect(try program.packets(.droppedPodARPSpoofed) == 0)
    }

    @Test("A frame longer than its IP packet is cut to it before the tunnel-fit check, as ip_rcv cuts it: 1450 declared and 1454 carried leaves as 1500, never 1504; a frame shorter than its packet is dropped")
    func theTunnelFitMeasuresWhatTheEncapsulationSends() throws {
        let program = try encapsulatingProgram()
        let declared = Frame(payload: [UInt8](repeating: 1, count: 1450 - 28)).bytes
        let padded = declared + [9, 9, 9, 9]
        let outcome = try program.run(padded)
        #expect(outcome.action == TCAction.redirect)
        #expect(outcome.packet.count == 14 + 1500, "the outer packet is the underlay's MTU")
        #expect(Int(outcome.packet[16]) << 8 | Int(outcome.packet[17]) == 1500, "outer total length")
        #expect(Array(outcome.packet.suffix(1422)) == Array(declared.suffix(1422)), "the payload, without the junk after it")
        let truncated = Array(declared.dropLast(4))
        #expect(try program.run(truncated).action == TCAction.shot)
        #expect(try program.packets(.droppedMalformed) == 1)
        // Short frames padded to Ethernet's minimum are cut and sent as well.
        let small = Frame(payload: [1, 2]).bytes + [UInt8](repeating: 0, count: 14)
        let sent = try program.run(small)
        #expect(sent.action == TCAction.redirect)
        #expect(sent.packet.count == small.count - 14 + 50)
    }

    @Test("With the check off (--no-pod-source-check) a foreign source passes")
    func sourceCheckCanBeTurnedOff() throws {
        var globals = LoadedProgram.globals
        globals.checkPodSource = false
        let program = try program(globals: globals)
        var frame = Frame()
        frame.source = IPv4Address("10.244.1.77")!
        #expect(try program.run(frame.bytes).action == TCAction.redirect)
        #expect(try program.packets(.droppedPodSpoofedSource) == 0)
    }
}
