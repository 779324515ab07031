import Testing
import WeftBPF
import WeftCore

@Suite(.enabled(if: isRoot, "loading BPF programs needs root"))
struct FromUnderlayTests {
    let pins = try! PinDirectory()

    @Test func peerTrafficToALocalPodIsDeliveredAndTheRestIsTheHosts() throws {
        let program = try LoadedProgram("from_underlay", pins: pins)
        let podMAC = MACAddress("0a:58:0a:f4:01:05")!
        let hostMAC = MACAddress("ee:ee:ee:ee:ee:05")!
        try program.endpoints.set(IPv4Address("10.244.1.5")!, LocalEndpoint(hostInterfaceIndex: 1, podMAC: podMAC, hostMAC: hostMAC))
        try program.peers.set(IPv4Prefix("10.244.2.0/24")!, PeerRoute(underlayIP: IPv4Address("198.18.0.2")!, vtepMAC: podMAC, mode: .direct))

        let fromPeerPod = try program.run(Frame(source: IPv4Address("10.244.2.7")!, destination: IPv4Address("10.244.1.5")!).bytes)
        #expect(fromPeerPod.action == TCAction.redirect)
        #expect(fromPeerPod.packet.destinationMAC == podMAC)
        #expect(fromPeerPod.packet.sourceMAC == hostMAC)
        #expect(fromPeerPod.packet.ttl == 63)
        #expect(fromPeerPod.packet.ipv4ChecksumIsValid)

        let fromStranger = Frame(source: IPv4Address("192.0.2.7")!, destination: IPv4Address("10.244.1.5")!).bytes
        #expect(try program.run(fromStranger).action == TCAction.ok)
        let toTheHost = Frame(source: IPv4Address("10.244.2.7")!, destination: IPv4Address("198.18.0.1")!).bytes
        #expect(try program.run(toTheHost).action == TCAction.ok)
        #expect(try program.packets(.deliveredLocal) == 1)
    }
}
