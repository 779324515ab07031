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

    func program() throws -> LoadedProgram {
        let program = try LoadedProgram("from_pod", pins: pins)
        try program.peers.set(IPv4Prefix("10.244.2.0/24")!, PeerRoute(underlayIP: IPv4Address("198.18.0.2")!, vtepMAC: peerVTEP, mode: .vxlan))
        try program.peers.set(IPv4Prefix("10.244.3.0/24")!, PeerRoute(underlayIP: IPv4Address("198.18.0.3")!, vtepMAC: peerVTEP, mode: .direct))
        return program
    }

    @Test func aPacketToAVXLANPeerIsEncapsulatedWithFlannelsInnerHeaders() throws {
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
        let cases: [(String, Frame)] = [
            ("ARP", Frame(etherType: 0x0806)),
            ("IPv6", Frame(etherType: 0x86dd, payload: [0x60] + [UInt8](repeating: 0, count: 39) + [UInt8](repeating: 7, count: 8))),
            ("TTL 1, for ICMP time exceeded", Frame(ttl: 1)),
            ("an unknown destination", Frame(destination: IPv4Address("192.0.2.1")!)),
            ("larger than the tunnel MTU", Frame(payload: [UInt8](repeating: 1, count: 1500))),
        ]
        for (reason, frame) in cases {
            let outcome = try program.run(frame.bytes)
            #expect(outcome.action == TCAction.ok, "\(reason)")
            #expect(outcome.packet == frame.bytes, "\(reason): unchanged")
        }
        #expect(try program.packets(.passedToStack) == UInt64(cases.count))
        #expect(try program.packets(.encapsulated) == 0)
    }

    @Test func theLongestPrefixWins() throws {
        let program = try program()
        let otherVTEP = MACAddress("a6:00:00:00:00:99")!
        try program.peers.set(IPv4Prefix("10.244.2.128/25")!, PeerRoute(underlayIP: IPv4Address("198.18.0.9")!, vtepMAC: otherVTEP, mode: .vxlan))
        #expect(try program.run(Frame(destination: IPv4Address("10.244.2.200")!).bytes).packet.destinationMAC == otherVTEP)
        #expect(try program.run(Frame(destination: IPv4Address("10.244.2.100")!).bytes).packet.destinationMAC == peerVTEP)
    }
}
