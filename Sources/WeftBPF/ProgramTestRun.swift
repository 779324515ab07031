import WeftSystem
import CWeftBPF

/// Runs a loaded TC program once on a crafted packet (`BPF_PROG_TEST_RUN`): the action it
/// returned and the packet as it left the program.
public enum ProgramTestRun {
    public struct Outcome: Sendable {
        public let action: UInt32
        public let packet: [UInt8]
    }

    /// - Parameters:
    ///   - ingressInterface: the interface the packet arrives on (`skb->ingress_ifindex`).
    ///   - gsoSize: a segment size, making the packet a GSO packet as GRO leaves one (0: none).
    public static func run(programDescriptor: Int32, name: String, packet: [UInt8], ingressInterface: UInt32 = 0,
                           gsoSize: UInt32 = 0) throws(SystemCallError) -> Outcome {
        var output = [UInt8](repeating: 0, count: packet.count + 256)
        var outputSize = UInt32(output.count)
        var action: UInt32 = 0
        let result = packet.withUnsafeBytes { input in
            output.withUnsafeMutableBytes { out in
                weft_prog_test_run(programDescriptor, input.baseAddress, UInt32(input.count), out.baseAddress, &outputSize, &action,
                                   ingressInterface, gsoSize)
            }
        }
        guard result == 0 else { throw SystemCallError("test-run program", name, errno: result) }
        return Outcome(action: action, packet: Array(output.prefix(Int(outputSize))))
    }
}
