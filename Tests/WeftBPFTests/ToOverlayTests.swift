import Testing
import WeftBPF
import WeftCore

/// to_overlay: what the kernel itself routes into the collect_md vxlan device.
@Suite(.enabled(if: isRoot, "loading BPF programs needs root"))
struct ToOverlayTests {
    let pins: PinDirectory

    // A failure here fails each test with the error, where `try!` would crash the runner.
    init() throws {
        pins = try PinDirectory()
    }
    let peerVTEP = MACAddress("a6:12:34:56:78:9a")!

    func program() throws -> LoadedProgram {
        let program = try LoadedProgram("to_overlay", pins: pins)
        try program.peers.set(IPv4Prefix("10.244.2.0/24")!, PeerRoute(underlayIP: IPv4Address("198.18.0.2")!, vtepMAC: peerVTEP, mode: .vxlan))
        try program.peers.set(IPv4Prefix("10.244.3.0/24")!, PeerRoute(underlayIP: IPv4Address("198.18.0.3")!, vtepMAC: peerVTEP, mode: .direct))
        return program
    }

    @Test func hostTrafficToAVXLANPeerGetsItsTunnelAndFlannelsInnerHeaders() throws {
        let program = try program()
        let input = Frame(source: IPv4Address("10.244.1.0")!).bytes
        let outcome = try program.run(input)
        #expect(outcome.action == TCAction.ok, "the device itself sends it, with the tunnel key set")
        #expect(outcome.packet.destinationMAC == peerVTEP)
        #expect(outcome.packet.sourceMAC == LoadedProgram.ourVTEP)
        #expect(outcome.packet.ttl == 64, "the kernel already decremented it when it routed the packet")
        #expect(Array(outcome.packet[12...]) == Array(input[12...]))
        #expect(try program.packets(.encapsulatedFromStack) == 1)
    }

    @Test func whatNoVXLANPeerTakesIsDroppedAndCounted() throws {
        let program = try program()
        let cases: [(String, Frame)] = [
            ("a destination outside every peer subnet", Frame(destination: IPv4Address("10.244.9.9")!)),
            ("a direct-routed peer, which never goes through the tunnel", Frame(destination: IPv4Address("10.244.3.3")!)),
            ("IPv6, which the overlay does not carry", Frame(etherType: 0x86dd, payload: [0x60] + [UInt8](repeating: 0, count: 47))),
        ]
        for (index, (name, frame)) in cases.enumerated() {
            let outcome = try program.run(frame.bytes)
            #expect(outcome.action == TCAction.shot, "\(name)")
            #expect(try program.packets(.droppedNoPeer) == UInt64(index + 1), "\(name)")
        }
        #expect(try program.packets(.encapsulatedFromStack) == 0)
    }
}
