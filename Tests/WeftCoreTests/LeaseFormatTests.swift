import Foundation
import Testing
@testable import WeftCore

@Suite struct LeaseFormatTests {
    /// Flannel's own lease values, byte for byte as flanneld writes them.
    static let flannelVXLAN = #"{"PublicIP":"198.18.0.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"a6:12:34:56:78:9a"}}"#
    static let flannelHostGateway = #"{"PublicIP":"198.18.0.4","PublicIPv6":null,"BackendType":"host-gw"}"#

    @Test(arguments: [flannelVXLAN, flannelHostGateway])
    func flannelLeasesRoundTripByteForByte(_ text: String) throws {
        let attributes = try LeaseAttributes.parse(Data(text.utf8))
        #expect(attributes.serialized() == text)
    }

    @Test func vxlanFieldsAreReadFieldForField() throws {
        let attributes = try LeaseAttributes.parse(Data(Self.flannelVXLAN.utf8))
        #expect(attributes.publicIP == IPv4Address("198.18.0.3"))
        #expect(attributes.publicIPv6 == nil)
        #expect(attributes.backendType == "vxlan")
        #expect(attributes.vxlan == VXLANLeaseData(vni: 1, vtepMAC: MACAddress("a6:12:34:56:78:9a")!))
        #expect(attributes == .vxlan(publicIP: IPv4Address("198.18.0.3")!, vni: 1, vtepMAC: MACAddress("a6:12:34:56:78:9a")!))
    }

    @Test func hostGatewayLeasesHaveNoBackendData() throws {
        let attributes = LeaseAttributes.hostGateway(publicIP: IPv4Address("198.18.0.4")!)
        #expect(attributes.serialized() == Self.flannelHostGateway)
        #expect(attributes.vxlan == nil)
    }

    @Test func otherFieldOrdersAndUnknownBackendsAreRead() throws {
        let reordered = try LeaseAttributes.parse(Data(#"{"BackendType":"wireguard","BackendData":{"PublicKey":"abc="},"PublicIP":"198.18.0.9"}"#.utf8))
        #expect(reordered.publicIP == IPv4Address("198.18.0.9"))
        #expect(reordered.backendType == "wireguard")
        #expect(reordered.backendData == .object(["PublicKey": .string("abc=")]))
    }

    @Test func malformedLeasesSayWhatIsWrong() {
        let cases: [(String, String)] = [
            ("not json", "not valid JSON: Invalid value around character 1."),
            ("[]", "the value is an array, not a JSON object"),
            (#"{"PublicIP":"198.18.0"}"#, "PublicIP is missing or not an IPv4 address"),
            (#"{"PublicIP":"198.18.0.1","BackendType":"vxlan","BackendData":{"VNI":1}}"#,
             #"a vxlan lease needs BackendData with a numeric VNI and a VtepMAC such as "a6:12:34:56:78:9a""#),
        ]
        for (text, reason) in cases {
            #expect(throws: LeaseFormatError(reason: reason)) { try LeaseAttributes.parse(Data(text.utf8)) }
        }
    }

    @Test func subnetKeys() {
        #expect(SubnetKey.format(IPv4Prefix("10.244.3.0/24")!) == "10.244.3.0-24")
        #expect(SubnetKey.parse("10.244.3.0-24") == IPv4Prefix("10.244.3.0/24"))
        #expect(SubnetKey.parse("10.244.3.1-24") == nil)
        #expect(SubnetKey.parse("10.244.3.0") == nil)
        #expect(SubnetKey.parse("garbage-24") == nil)
    }

    @Test func leaseDiffSortsPeersIntoAddedChangedAndRemoved() {
        func lease(_ subnet: String, _ ip: String, mac: String = "a6:00:00:00:00:01") -> Lease {
            Lease(subnet: IPv4Prefix(subnet)!, attributes: .vxlan(publicIP: IPv4Address(ip)!, vni: 1, vtepMAC: MACAddress(mac)!))
        }
        let old = [lease("10.244.1.0/24", "198.18.0.1"), lease("10.244.2.0/24", "198.18.0.2"), lease("10.244.3.0/24", "198.18.0.3")]
        var renewed = lease("10.244.1.0/24", "198.18.0.1")
        renewed.expiration = Date()
        let new = [renewed, lease("10.244.2.0/24", "198.18.0.2", mac: "a6:00:00:00:00:02"), lease("10.244.4.0/24", "198.18.0.4")]
        let diff = LeaseDiff(from: old, to: new)
        #expect(diff.added.map(\.subnet) == [IPv4Prefix("10.244.4.0/24")!])
        #expect(diff.changed.map(\.subnet) == [IPv4Prefix("10.244.2.0/24")!])
        #expect(diff.removed == [IPv4Prefix("10.244.3.0/24")!])
        #expect(LeaseDiff(from: old, to: old).isEmpty)
    }
}
