import Testing
@testable import WeftCore

@Suite struct NetworkConfigTests {
    func parse(_ text: String) throws -> NetworkConfig {
        try NetworkConfigParser.parse(text).config
    }

    /// The problems a config yields, as the lines `weft config check` prints.
    func problems(_ text: String) -> [String] {
        do {
            _ = try NetworkConfigParser.parse(text)
            return []
        } catch {
            return error.problems.map(\.description)
        }
    }

    @Test func flannelDocsExampleGetsFlannelDefaults() throws {
        let config = try parse(#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}"#)
        #expect(config.network == IPv4Prefix("10.244.0.0/16"))
        #expect(config.subnetLength == 24)
        #expect(config.subnetMin == IPv4Address("10.244.1.0"))
        #expect(config.subnetMax == IPv4Address("10.244.255.0"))
        #expect(config.backend == .vxlan(VXLANOptions(vni: 1, port: 8472, directRouting: false, mtu: nil)))
        #expect(config.allocatableSubnetCount == 255)
        #expect(config.flannelJSONText == #"{"Network":"10.244.0.0/16","SubnetLen":24,"SubnetMin":"10.244.1.0","SubnetMax":"10.244.255.0","Backend":{"Type":"vxlan","VNI":1,"Port":8472,"DirectRouting":false,"MTU":0}}"#)
    }

    @Test func enableNFTablesChoosesTheRulesTool() throws {
        #expect(try parse(#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}"#).enableNFTables == false)
        #expect(try parse(#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"},"EnableNFTables":true}"#).enableNFTables)
        let found = problems(#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"},"EnableNFTables":"yes"}"#)
        #expect(found.contains { $0.contains("EnableNFTables") && $0.contains("must be true or false") }, "\(found)")
    }

    @Test func keysMatchCaseInsensitivelyAsInGo() throws {
        let config = try parse(#"{"network":"10.1.0.0/16","subnetlen":26,"backend":{"type":"VXLAN","vni":42,"port":0,"directrouting":true,"mtu":1400}}"#)
        #expect(config.subnetLength == 26)
        #expect(config.backend == .vxlan(VXLANOptions(vni: 42, port: 8472, directRouting: true, mtu: 1400)))
    }

    @Test func subnetLengthDefaultsFollowTheNetworkSize() throws {
        #expect(try parse(#"{"Network":"10.0.0.0/22","Backend":{"Type":"host-gw"}}"#).subnetLength == 24)
        #expect(try parse(#"{"Network":"10.0.0.0/23","Backend":{"Type":"host-gw"}}"#).subnetLength == 25)
        let small = try parse(#"{"Network":"10.0.0.0/28","Backend":{"Type":"host-gw"}}"#)
        #expect(small.subnetLength == 30)
        #expect(small.subnetMin == IPv4Address("10.0.0.4"))
        #expect(small.subnetMax == IPv4Address("10.0.0.12"))
        #expect(try parse(#"{"Network":"10.0.0.0/16","SubnetLen":0,"Backend":{"Type":"host-gw"}}"#).subnetLength == 24)
    }

    @Test func explicitBoundsAndHostGateway() throws {
        let config = try parse(#"{"Network":"10.244.0.0/16","SubnetMin":"10.244.10.0","SubnetMax":"10.244.20.0","Backend":{"Type":"host-gw"}}"#)
        #expect(config.subnetMin == IPv4Address("10.244.10.0"))
        #expect(config.subnetMax == IPv4Address("10.244.20.0"))
        #expect(config.backend == .hostGateway)
        #expect(config.allocatableSubnetCount == 11)
        #expect(config.flannelJSONText.hasSuffix(#""Backend":{"Type":"host-gw"}}"#))
    }

    @Test func networkWithHostBitsIsMaskedWithAWarning() throws {
        let parsed = try NetworkConfigParser.parse(#"{"Network":"10.244.7.1/16","Backend":{"Type":"vxlan"},"Bogus":1}"#)
        #expect(parsed.config.network == IPv4Prefix("10.244.0.0/16"))
        #expect(parsed.warnings == [
            "Bogus: unknown key, ignored (Flannel ignores it too); check its spelling",
            #"Network: "10.244.7.1/16" has host bits set; read as 10.244.0.0/16, as Flannel does"#,
        ])
    }

    @Test func tooSmallNetwork() {
        #expect(problems(#"{"Network":"10.244.0.0/29","Backend":{"Type":"vxlan"}}"#) == [
            #"Network: "10.244.0.0/29": must be a /28 or larger network (a prefix length of 28 or less), to hold at least four subnets"#,
        ])
    }

    @Test func subnetLengthBounds() {
        #expect(problems(#"{"Network":"10.244.0.0/16","SubnetLen":17,"Backend":{"Type":"vxlan"}}"#) == [
            "SubnetLen: 17: must be at least the Network's prefix length + 2 (18), so the network holds at least four subnets",
        ])
        #expect(problems(#"{"Network":"10.244.0.0/16","SubnetLen":31,"Backend":{"Type":"vxlan"}}"#) == [
            "SubnetLen: 31: must be 30 or less: each subnet needs room for a gateway and hosts",
        ])
    }

    @Test func boundsMustBeAlignedAndInside() {
        #expect(problems(#"{"Network":"10.244.0.0/16","SubnetMin":"10.244.1.128","Backend":{"Type":"vxlan"}}"#) == [
            #"SubnetMin: "10.244.1.128": must be aligned to SubnetLen /24, such as "10.244.1.0""#,
        ])
        #expect(problems(#"{"Network":"10.244.0.0/16","SubnetMax":"10.245.0.0","Backend":{"Type":"vxlan"}}"#) == [
            #"SubnetMax: "10.245.0.0": must lie inside Network 10.244.0.0/16"#,
        ])
        #expect(problems(#"{"Network":"10.244.0.0/16","SubnetMin":"10.244.9.0","SubnetMax":"10.244.2.0","Backend":{"Type":"vxlan"}}"#) == [
            #"SubnetMin: "10.244.9.0": must not be above SubnetMax (10.244.2.0); no subnet could ever be handed out"#,
        ])
    }

    @Test func backends() {
        #expect(problems(#"{"Network":"10.244.0.0/16","Backend":{"Type":"carrier-pigeon"}}"#) == [
            #"Backend.Type: "carrier-pigeon": is not a known backend type; use "vxlan" or "host-gw""#,
        ])
        #expect(problems(#"{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}"#) == [
            #"Backend.Type: "udp": is a Flannel backend that Weft does not support; use "vxlan" or "host-gw""#,
        ])
        #expect(problems(#"{"Network":"10.244.0.0/16"}"#) == [
            #"Backend: missing; Flannel would pick "udp", which Weft does not support: add "Backend":{"Type":"vxlan"}"#,
        ])
        #expect(problems(#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","GBP":true}}"#) == [
            "Backend.GBP: true: is not supported by Weft; remove it or set it to false",
        ])
    }

    @Test func wrongValueTypesAreEachReported() {
        #expect(problems(#"{"Network":16,"SubnetLen":"24","Backend":{"Type":"vxlan","VNI":"1","Port":1.5,"DirectRouting":"yes","MTU":20}}"#) == [
            "Network: 16: must be an IPv4 CIDR string such as \"10.244.0.0/16\"",
            #"SubnetLen: "24": must be a whole number (a prefix length such as 24)"#,
            #"Backend.VNI: "1": must be a whole number from 0 to 16777215 (24 bits)"#,
            "Backend.Port: 1.5: must be a UDP port from 0 to 65535 (0 means 8472)",
            #"Backend.DirectRouting: "yes": must be true or false"#,
            "Backend.MTU: 20: must be 0 (the interface's MTU) or the underlay MTU to assume, from 118 to 65535 (pods get 50 less)",
        ])
        #expect(problems(#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":16777216}}"#) == [
            "Backend.VNI: 16777216: must be a whole number from 0 to 16777215 (24 bits)",
        ])
    }

    @Test func notJSONAtAll() {
        #expect(problems("Network=10.244.0.0/16") == [
            "(document): not valid JSON: Invalid value around character 0. A net-conf.json is one JSON object.",
        ])
        #expect(problems("[1,2]") == [
            #"(document): an array: must be a JSON object such as {"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}"#,
        ])
    }

    @Test func ipv6IsRefusedClearly() {
        #expect(problems(#"{"Network":"10.244.0.0/16","EnableIPv6":true,"Backend":{"Type":"vxlan"}}"#) == [
            "EnableIPv6: true: Weft does not support IPv6 overlays yet; remove it or set it to false",
        ])
    }

    @Test("Backend.MTU is the underlay MTU to assume, as in current Flannel: pods get 50 bytes less")
    func mtuRule() throws {
        let explicit = try parse(#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","MTU":1500}}"#)
        #expect(explicit.backend.podMTU(underlayMTU: 9000) == 1450, "the configured MTU replaces the interface's")
        let implicit = try parse(#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}"#)
        #expect(implicit.backend.podMTU(underlayMTU: 1500) == 1450)
        let hostGateway = try parse(#"{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}"#)
        #expect(hostGateway.backend.podMTU(underlayMTU: 1500) == 1500)
        #expect(problems(#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","MTU":100}}"#).first?.contains("from 118 to 65535") == true)
    }
}
