import Testing
import WeftBPF
import WeftCore

/// from_overlay under BPF_PROG_TEST_RUN. A test run cannot attach tunnel metadata, so
/// the decap checks (VNI, known peer, spoofed source) are tested end to end in
/// WeftDataplaneTests; here, what arrives without a tunnel is left to the kernel.
@Suite(.enabled(if: isRoot, "loading BPF programs needs root"))
struct FromOverlayTests {
    let pins: PinDirectory

    // A failure here fails each test with the error, where `try!` would crash the runner.
    init() throws {
        pins = try PinDirectory()
    }

    @Test func aFrameWithoutTunnelMetadataGoesToTheKernelUntouched() throws {
        let program = try LoadedProgram("from_overlay", pins: pins)
        try program.endpoints.set(IPv4Address("10.244.2.3")!, LocalEndpoint(
            hostInterfaceIndex: 1, podMAC: MACAddress("0a:58:0a:f4:02:03")!, hostMAC: MACAddress("ee:ee:ee:ee:ee:03")!))
        let input = Frame().bytes
        let outcome = try program.run(input)
        #expect(outcome.action == TCAction.ok)
        #expect(outcome.packet == input)
        #expect(try program.packets(.passedSlowPath) == 1)
        #expect(try program.packets(.deliveredLocal) == 0)
    }
}
