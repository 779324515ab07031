import Testing
import WeftCore

@Suite("Peer plans and table diffs")
struct PeerPlanTests {
    let onLink = [IPv4Prefix("198.18.0.0/24")!]

    func vxlanLease(_ subnet: String, _ ip: String, _ mac: String = "0a:58:00:00:00:02") -> Lease {
        Lease(subnet: IPv4Prefix(subnet)!, attributes: .vxlan(publicIP: IPv4Address(ip)!, vni: 1, vtepMAC: MACAddress(mac)!))
    }

    func hostGatewayLease(_ subnet: String, _ ip: String) -> Lease {
        Lease(subnet: IPv4Prefix(subnet)!, attributes: .hostGateway(publicIP: IPv4Address(ip)!))
    }

    @Test func vxlanTunnelsToEveryVXLANLeaseAndIgnoresOthersWithAReason() {
        let plan = PeerPlan(peers: [vxlanLease("10.244.2.0/24", "198.18.0.2"), hostGatewayLease("10.244.3.0/24", "198.18.0.3")],
                            backend: .vxlan(VXLANOptions()), onLinkNetworks: onLink)
        #expect(plan.paths == [IPv4Prefix("10.244.2.0/24")!: .vxlan(underlayIP: IPv4Address("198.18.0.2")!, vtepMAC: MACAddress("0a:58:00:00:00:02")!)])
        #expect(plan.ignored.map(\.subnet) == [IPv4Prefix("10.244.3.0/24")!])
        #expect(plan.ignored.first?.reason == "backend host-gw, not vxlan")
        #expect(plan.directRoutes.isEmpty)
    }

    @Test func directRoutingRoutesOnLinkPeersAndTunnelsTheRest() {
        let plan = PeerPlan(peers: [vxlanLease("10.244.2.0/24", "198.18.0.2"), vxlanLease("10.244.3.0/24", "203.0.113.3")],
                            backend: .vxlan(VXLANOptions(directRouting: true)), onLinkNetworks: onLink)
        #expect(plan.paths[IPv4Prefix("10.244.2.0/24")!] == .direct(underlayIP: IPv4Address("198.18.0.2")!))
        #expect(plan.paths[IPv4Prefix("10.244.3.0/24")!] == .vxlan(underlayIP: IPv4Address("203.0.113.3")!, vtepMAC: MACAddress("0a:58:00:00:00:02")!))
        #expect(plan.directRoutes == [IPv4Prefix("10.244.2.0/24")!: IPv4Address("198.18.0.2")!])
    }

    @Test func hostGatewayNeedsEveryPeerOnLink() {
        let plan = PeerPlan(peers: [hostGatewayLease("10.244.2.0/24", "198.18.0.2"), hostGatewayLease("10.244.3.0/24", "203.0.113.3")],
                            backend: .hostGateway, onLinkNetworks: onLink)
        #expect(plan.directRoutes == [IPv4Prefix("10.244.2.0/24")!: IPv4Address("198.18.0.2")!])
        #expect(plan.ignored.count == 1)
        #expect(plan.ignored.first?.reason.contains("203.0.113.3 is not on the underlay's L2 segment") == true)
    }

    @Test func aVXLANLeaseWithoutAVTEPMACIsIgnored() {
        let lease = Lease(subnet: IPv4Prefix("10.244.2.0/24")!, attributes: LeaseAttributes(publicIP: IPv4Address("198.18.0.2")!, backendType: "vxlan"))
        let plan = PeerPlan(peers: [lease], backend: .vxlan(VXLANOptions()), onLinkNetworks: onLink)
        #expect(plan.paths.isEmpty)
        #expect(plan.ignored.first?.reason == "vxlan lease without a VtepMAC in BackendData")
    }

    @Test func aDiffWritesOnlyWhatChangedAndRemovesWhatIsGone() {
        let diff = KeyedDiff(current: [1: "a", 2: "b", 3: "c"], desired: [2: "b", 3: "C", 4: "d"])
        #expect(diff.upserts.map(\.key) == [3, 4])
        #expect(diff.upserts.map(\.value) == ["C", "d"])
        #expect(diff.removals == [1])
        #expect(KeyedDiff(current: [1: "a"], desired: [1: "a"]).isEmpty)
    }
}
