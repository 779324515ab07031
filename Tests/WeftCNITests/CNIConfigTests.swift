import Foundation
import Testing
import WeftCNI
import WeftCore

@Suite("CNI config and delegate rendering")
struct CNIConfigTests {
    let env = SubnetEnv(network: IPv4Prefix("10.244.0.0/16")!, subnet: IPv4Prefix("10.244.1.0/24")!, mtu: 1450, ipMasquerade: false)

    func parse(_ text: String) throws(CNIError) -> CNIConfig { try CNIConfig.parse(Data(text.utf8)) }

    @Test func theDelegateIsFlannelsBridgeWithHostLocalOverTheNodeSubnet() throws {
        let config = try parse(#"{"cniVersion":"0.4.0","name":"cbr0","type":"weft-cni","delegate":{"hairpinMode":true}}"#)
        #expect(config.subnetFile == "/run/flannel/subnet.env")
        #expect(config.dataDirectory == "/var/lib/cni/flannel")
        let delegate = config.delegateConfig(env)
        #expect(delegate["type"] == .string("bridge"))
        #expect(delegate["bridge"] == .string("cni0"))
        #expect(delegate["isGateway"] == .bool(true))
        #expect(delegate["ipMasq"] == .bool(true), "the node does not masquerade, so the bridge does")
        #expect(delegate["mtu"] == .integer(1450))
        #expect(delegate["hairpinMode"] == .bool(true))
        #expect(delegate["cniVersion"] == .string("0.4.0"))
        #expect(JSONValue.object(["ipam": delegate["ipam"]!]).serialized()
            == #"{"ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}]],"routes":[{"dst":"10.244.0.0/16","gw":"10.244.1.1"}],"type":"host-local"}}"#)
    }

    @Test func whatTheUserSetInDelegateWins() throws {
        let config = try parse(#"{"cniVersion":"1.0.0","name":"cbr0","delegate":{"bridge":"weft0","mtu":1400,"ipMasq":false}}"#)
        let delegate = config.delegateConfig(env)
        #expect(delegate["bridge"] == .string("weft0"))
        #expect(delegate["mtu"] == .integer(1400))
        #expect(delegate["ipMasq"] == .bool(false))
    }

    /// Flannel's plugin starts the delegate's ipam from the config's own: its type and keys
    /// stay, its ranges become the node's subnet, the cluster route joins its routes.
    @Test func theConfigsIPAMIsHonouredAsFlannelDoes() throws {
        let config = try parse(#"{"cniVersion":"1.0.0","name":"cbr0","ipam":{"type":"host-local","dataDir":"/var/lib/mine","#
            + #""ranges":[[{"subnet":"192.168.0.0/24"}]],"routes":[{"dst":"10.96.0.0/12"}]}}"#)
        let ipam = try #require(config.delegateConfig(env)["ipam"])
        #expect(JSONValue.object(["ipam": ipam]).serialized()
            == #"{"ipam":{"dataDir":"/var/lib/mine","ranges":[[{"subnet":"10.244.1.0/24"}]],"routes":[{"dst":"10.96.0.0/12"},{"dst":"10.244.0.0/16","gw":"10.244.1.1"}],"type":"host-local"}}"#)
        let other = try parse(#"{"cniVersion":"1.0.0","name":"cbr0","ipam":{"type":"whereabouts"}}"#)
        #expect(other.delegateConfig(env)["ipam"]?.member("type")?.value == .string("whereabouts"))
        #expect(throws: CNIError.self) { try parse(#"{"cniVersion":"1.0.0","name":"cbr0","ipam":"host-local"}"#) }
        #expect(throws: CNIError.self) { try parse(#"{"cniVersion":"1.0.0","name":"cbr0","ipam":{"routes":{"dst":"10.96.0.0/12"}}}"#) }
    }

    @Test func badConfigsGetTheSpecsCodesAndSayWhatToFix() {
        let cases: [(String, Int, String)] = [
            ("{not json", CNIError.decodingFailure, "not JSON"),
            (#"{"name":"cbr0"}"#, CNIError.invalidConfig, "cniVersion is missing"),
            (#"{"cniVersion":"0.2.0","name":"cbr0"}"#, CNIError.incompatibleVersion, "cniVersion 0.2.0 is not supported"),
            (#"{"cniVersion":"1.0.0"}"#, CNIError.invalidConfig, "name is missing"),
            (#"{"cniVersion":"1.0.0","name":"x","delegate":[1]}"#, CNIError.invalidConfig, "delegate must be a JSON object"),
        ]
        for (text, code, message) in cases {
            let error = #expect(throws: CNIError.self) { try parse(text) }
            #expect(error?.code == code, "\(text)")
            #expect(error?.message.contains(message) == true, "\(text): \(error?.message ?? "")")
        }
    }

    @Test func theBridgeResultNamesThePodAddressMACAndHostVeth() throws {
        let result = #"""
        {"cniVersion":"1.0.0","interfaces":[{"name":"cni0","mac":"2e:03:34:f1:6e:6b"},{"name":"vethd1fee810","mac":"ae:31:b5:e9:36:47"},
         {"name":"eth0","mac":"da:0e:d5:74:9f:21","sandbox":"/run/netns/p"}],
         "ips":[{"interface":2,"address":"10.244.7.2/24","gateway":"10.244.7.1"}]}
        """#
        let pod = try PodAttachment.from(result: Data(result.utf8), containerInterface: "eth0", bridge: "cni0")
        #expect(pod == PodAttachment(address: IPv4Address("10.244.7.2")!, podMAC: MACAddress("da:0e:d5:74:9f:21")!, hostInterface: "vethd1fee810"))
    }
}
