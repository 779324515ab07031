import Testing
@testable import WeftCore

@Suite struct SubnetEnvTests {
    let env = SubnetEnv(network: IPv4Prefix("10.244.0.0/16")!, subnet: IPv4Prefix("10.244.1.0/24")!, mtu: 1450, ipMasquerade: true)

    @Test func rendersFlannelsFile() {
        #expect(env.rendered() == "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n")
    }

    @Test func parsesWhatItRendersAndWhatFlannelWrites() throws {
        #expect(try SubnetEnv.parse(env.rendered()) == env)
        let flannels = "# written by flanneld\nFLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\nFLANNEL_IPV6_NETWORK=\n"
        #expect(try SubnetEnv.parse(flannels) == env)
    }

    @Test func errorsNameTheLineOrTheKey() {
        #expect(throws: SubnetEnvError(line: nil, message: "FLANNEL_MTU is missing")) {
            try SubnetEnv.parse("FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_IPMASQ=true\n")
        }
        #expect(throws: SubnetEnvError(line: 3, message: "FLANNEL_MTU=big is not an MTU from 68 to 65535")) {
            try SubnetEnv.parse("FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=big\nFLANNEL_IPMASQ=true\n")
        }
        #expect(throws: SubnetEnvError(line: 1, message: "\"what\" is not KEY=VALUE")) {
            try SubnetEnv.parse("what\n")
        }
    }

    @Test("The daemon's WEFT_ lines for weft-cni: rendered after Flannel's, read back, and wrong values named")
    func weftLines() throws {
        var bpf = env
        bpf.dataplane = .bpf
        bpf.pinDirectory = "/sys/fs/bpf/weft"
        #expect(bpf.rendered() == env.rendered() + "WEFT_DATAPLANE=bpf\nWEFT_PIN_DIR=/sys/fs/bpf/weft\n")
        #expect(try SubnetEnv.parse(bpf.rendered()) == bpf)
        #expect(try SubnetEnv.parse(env.rendered()).dataplane == nil, "a file flanneld wrote names no dataplane")
        #expect(throws: SubnetEnvError(line: 5, message: "WEFT_DATAPLANE=ebpf is not bpf or kernel; the Weft daemon writes this file, restart it")) {
            try SubnetEnv.parse(env.rendered() + "WEFT_DATAPLANE=ebpf\n")
        }
        #expect(throws: SubnetEnvError(line: 5, message: "WEFT_PIN_DIR=pins is not an absolute path; the Weft daemon writes this file, restart it")) {
            try SubnetEnv.parse(env.rendered() + "WEFT_PIN_DIR=pins\n")
        }
    }
}
