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
}
