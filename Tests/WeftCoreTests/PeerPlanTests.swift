import Testing
import WeftCore

/// A vxlan node 10.244.1.0/24 at 198.18.0.1 in 10.244.0.0/16 (SubnetLen 24, VNI 1).
let vxlanNode = PlanningNode(network: IPv4Prefix("10.244.0.0/16")!, subnetLength: 24, subnet: IPv4Prefix("10.244.1.0/24")!,
                             publicIP: IPv4Address("198.18.0.1")!, backend: .vxlan(VXLANOptions()))

func vxlanLease(_ subnet: String, _ ip: String, _ mac: String = "0a:58:00:00:00:02", vni: UInt32 = 1) -> Lease {
    Lease(subnet: IPv4Prefix(subnet)!, attributes: .vxlan(publicIP: IPv4Address(ip)!, vni: vni, vtepMAC: MACAddress(mac)!))
}

func hostGatewayLease(_ subnet: String, _ ip: String) -> Lease {
    Lease(subnet: IPv4Prefix(subnet)!, attributes: .hostGateway(publicIP: IPv4Address(ip)!))
}

/// Leases aged in the order given.
func aged(_ leases: [Lease]) -> [PeerLease] {
    leases.enumerated().map { PeerLease($1, since: Int64($0 + 1)) }
}

@Suite("The planner: what the dataplane holds, and every lease it rejects with the reason")
struct PeerPlanTests {
    let onLink = [IPv4Prefix("198.18.0.0/24")!]

    func plan(_ leases: [Lease], node: PlanningNode = vxlanNode) -> PeerPlan {
        PeerPlan(node: node, peers: aged(leases), onLinkNetworks: onLink)
    }

    func rejection(of lease: Lease, node: PlanningNode = vxlanNode) -> LeaseRejection? {
        let plan = plan([lease], node: node)
        #expect(plan.paths.isEmpty, "a rejected lease has no path")
        return plan.rejected.first { $0.subnet == lease.subnet }?.reason
    }

    @Test func vxlanTunnelsToEveryVXLANLeaseAndRejectsOtherBackends() {
        let plan = plan([vxlanLease("10.244.2.0/24", "198.18.0.2"), hostGatewayLease("10.244.3.0/24", "198.18.0.3")])
        #expect(plan.paths == [IPv4Prefix("10.244.2.0/24")!: .vxlan(underlayIP: IPv4Address("198.18.0.2")!, vtepMAC: MACAddress("0a:58:00:00:00:02")!)])
        #expect(plan.tunnels == [IPv4Address("198.18.0.2")!: IPv4Prefix("10.244.2.0/24")!])
        #expect(plan.rejected == [RejectedLease(hostGatewayLease("10.244.3.0/24", "198.18.0.3"), .foreignBackend("host-gw"))])
        #expect(plan.directRoutes.isEmpty)
    }

    @Test func directRoutingRoutesOnLinkPeersAndTunnelsTheRest() {
        var node = vxlanNode
        node.backend = .vxlan(VXLANOptions(directRouting: true))
        let plan = plan([vxlanLease("10.244.2.0/24", "198.18.0.2"), vxlanLease("10.244.3.0/24", "203.0.113.3")], node: node)
        #expect(plan.paths[IPv4Prefix("10.244.2.0/24")!] == .direct(underlayIP: IPv4Address("198.18.0.2")!))
        #expect(plan.paths[IPv4Prefix("10.244.3.0/24")!]?.underlayIP == IPv4Address("203.0.113.3")!)
        #expect(plan.directRoutes == [IPv4Prefix("10.244.2.0/24")!: IPv4Address("198.18.0.2")!])
        #expect(plan.tunnels == [IPv4Address("198.18.0.2")!: IPv4Prefix("10.244.2.0/24")!, IPv4Address("203.0.113.3")!: IPv4Prefix("10.244.3.0/24")!],
                "every peer's underlay IP, direct ones too: the programs check senders against it")
    }

    @Test func hostGatewayNeedsOnLinkPeers() {
        var node = vxlanNode
        node.backend = .hostGateway
        let plan = plan([hostGatewayLease("10.244.2.0/24", "198.18.0.2"), hostGatewayLease("10.244.3.0/24", "203.0.113.3")], node: node)
        #expect(plan.paths == [IPv4Prefix("10.244.2.0/24")!: .direct(underlayIP: IPv4Address("198.18.0.2")!)])
        #expect(plan.rejected.map(\.reason) == [.notOnLink(IPv4Address("203.0.113.3")!)])
        #expect(plan.rejected.first?.reason.description.contains("203.0.113.3 is not on the underlay's L2 segment") == true)
    }

    @Test("0.0.0.0-0 would take every pod's egress: rejected, outside the network")
    func theWholeInternetIsRejected() {
        #expect(rejection(of: vxlanLease("0.0.0.0/0", "198.18.0.9")) == .outsideNetwork(IPv4Prefix("10.244.0.0/16")!))
    }

    @Test func aSubnetOutsideTheNetworkIsRejected() {
        #expect(rejection(of: vxlanLease("10.99.2.0/24", "198.18.0.9")) == .outsideNetwork(IPv4Prefix("10.244.0.0/16")!))
    }

    @Test("10.244.84.0-25 next to a live 10.244.84.0/24: rejected, and the live node keeps its subnet")
    func halfALiveSubnetIsRejected() {
        let live = vxlanLease("10.244.84.0/24", "198.18.0.84")
        let thief = vxlanLease("10.244.84.0/25", "198.18.0.9")
        let plan = plan([live, thief])
        #expect(plan.paths.keys.sorted() == [IPv4Prefix("10.244.84.0/24")!])
        #expect(plan.rejected == [RejectedLease(thief, .wrongPrefixLength(expected: 24))])
    }

    @Test func anotherVNIIsRejected() {
        #expect(rejection(of: vxlanLease("10.244.2.0/24", "198.18.0.2", vni: 7)) == .foreignVNI(7))
    }

    @Test func aVXLANLeaseWithoutAVTEPMACIsRejected() {
        let lease = Lease(subnet: IPv4Prefix("10.244.2.0/24")!, attributes: LeaseAttributes(publicIP: IPv4Address("198.18.0.2")!, backendType: "vxlan"))
        #expect(rejection(of: lease) == .missingVTEPMAC)
    }

    @Test("A PublicIP that is not unicast is rejected", arguments: ["0.0.0.0", "127.0.0.1", "224.0.0.5", "240.0.0.1", "255.255.255.255"])
    func nonUnicastPublicIPs(ip: String) {
        #expect(rejection(of: vxlanLease("10.244.2.0/24", ip)) == .publicIPNotUnicast(IPv4Address(ip)!))
    }

    @Test("Our own PublicIP on another subnet (our lease from before an interface change, or a forgery) is never a peer")
    func ownPublicIPOnAnotherSubnet() {
        #expect(rejection(of: vxlanLease("10.244.7.0/24", "198.18.0.1")) == .claimsOwnPublicIP(IPv4Address("198.18.0.1")!))
    }

    @Test("Our own lease is no peer, and is not reported as rejected")
    func ownLeaseIsPassedOver() {
        let plan = plan([vxlanLease("10.244.1.0/24", "198.18.0.1"), vxlanLease("10.244.2.0/24", "198.18.0.2")])
        #expect(plan.paths.keys.sorted() == [IPv4Prefix("10.244.2.0/24")!])
        #expect(plan.rejected.isEmpty)
    }

    @Test("A lease inside our own subnet is rejected (a network config whose SubnetLen changed under a running node)")
    func overlapWithOurOwnSubnet() {
        var node = vxlanNode
        node.subnetLength = 25
        #expect(rejection(of: vxlanLease("10.244.1.128/25", "198.18.0.9"), node: node) == .overlapsOwnSubnet(IPv4Prefix("10.244.1.0/24")!))
    }

    @Test("120 host-gw leases in a vxlan cluster: every one rejected as another backend, none programmed")
    func mixedClusterLeases() {
        let hostGateway = (2..<122).map { hostGatewayLease("10.244.\($0).0/24", "198.18.0.\($0)") }
        let plan = plan(hostGateway + [vxlanLease("10.244.200.0/24", "198.18.0.200")])
        #expect(plan.paths.count == 1)
        #expect(plan.rejected.count == 120)
        #expect(Set(plan.rejected.map(\.reason)) == [.foreignBackend("host-gw")])
    }

    @Test("A standing rejection is reported once; a new or changed one again")
    func rejectionsAreLoggedOnce() {
        let first = plan([hostGatewayLease("10.244.3.0/24", "198.18.0.3")]).rejected
        #expect(RejectedLease.newlyRejected(first, since: []) == first)
        #expect(RejectedLease.newlyRejected(first, since: first).isEmpty)
        let moved = plan([hostGatewayLease("10.244.3.0/24", "198.18.0.4"), vxlanLease("10.244.4.0/24", "0.0.0.0")]).rejected
        #expect(RejectedLease.newlyRejected(moved, since: first).map(\.subnet) == [IPv4Prefix("10.244.3.0/24")!, IPv4Prefix("10.244.4.0/24")!])
    }

    @Test("Every reason has its own metric label")
    func reasonNames() {
        let reasons: [LeaseRejection] = [.outsideNetwork(vxlanNode.network), .wrongPrefixLength(expected: 24), .publicIPNotUnicast(IPv4Address(0)),
                                         .claimsOwnPublicIP(IPv4Address(0)), .foreignBackend("udp"), .foreignVNI(2), .missingVTEPMAC,
                                         .notOnLink(IPv4Address(0)), .overlapsOwnSubnet(vxlanNode.subnet), .overlapsOlderLease(vxlanNode.subnet)]
        #expect(Set(reasons.map(\.name)).count == reasons.count)
    }

    @Test func aDiffWritesOnlyWhatChangedAndRemovesWhatIsGone() {
        let diff = KeyedDiff(current: [1: "a", 2: "b", 3: "c"], desired: [2: "b", 3: "C", 4: "d"])
        #expect(diff.upserts.map(\.key) == [3, 4])
        #expect(diff.upserts.map(\.value) == ["C", "d"])
        #expect(diff.removals == [1])
        #expect(KeyedDiff(current: [1: "a"], desired: [1: "a"]).isEmpty)
    }
}

@Suite("The node's own lease and the store's history")
struct OwnLeaseTests {
    let ours = LeaseAttributes.vxlan(publicIP: IPv4Address("198.18.0.1")!, vni: 1, vtepMAC: MACAddress("0a:58:00:00:00:01")!)

    @Test func intactMissingOrOverwritten() {
        #expect(OwnLeaseVerdict.judge(ours: ours, stored: ours) == .intact)
        #expect(OwnLeaseVerdict.judge(ours: ours, stored: nil) == .missing)
        let forged = LeaseAttributes.vxlan(publicIP: IPv4Address("198.18.0.66")!, vni: 1, vtepMAC: MACAddress("0a:58:00:00:00:66")!)
        #expect(OwnLeaseVerdict.judge(ours: ours, stored: forged) == .overwritten(forged))
        #expect(forged.summary == "PublicIP 198.18.0.66, backend vxlan, VNI 1, VtepMAC 0a:58:00:00:00:66")
    }

    @Test("A store whose current revision goes down went back in time; old watch events do not; starting over accepts the new revisions")
    func storeGoesBackInTime() {
        var history = StoreHistory(revision: 500)
        let wentBack = [501, 501, 12].map { history.observe(current: $0) }
        #expect(wentBack == [false, false, true])
        history.observe(event: 620)
        history.observe(event: 610)
        #expect(history.highestRevision == 620, "a late event is old news, not a store going back")
        history.restart(at: 12)
        let afterRestart = history.observe(current: 13)
        #expect(!afterRestart)
        #expect(history.highestRevision == 13)
    }

    @Test("A node restarted on another interface keeps the subnet its old address still names")
    func reclaimAfterAnInterfaceChange() throws {
        let config = try NetworkConfigParser.parse(#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}"#).config
        let old = vxlanLease("10.244.5.0/24", "198.19.0.1")
        let plan = ReclaimPlan.make(publicIP: IPv4Address("198.18.0.1")!, previousSubnet: IPv4Prefix("10.244.5.0/24")!, leases: [old],
                                    config: config, hostAddresses: [IPv4Address("198.18.0.1")!, IPv4Address("198.19.0.1")!])
        #expect(plan.action == .renew(old))
        let elsewhere = ReclaimPlan.make(publicIP: IPv4Address("198.18.0.1")!, previousSubnet: IPv4Prefix("10.244.5.0/24")!, leases: [old],
                                         config: config, hostAddresses: [IPv4Address("198.18.0.1")!])
        #expect(elsewhere.action == .allocate, "the subnet is another host's now")
        let sameDevice = ReclaimPlan.make(publicIP: IPv4Address("198.18.0.1")!, previousSubnet: IPv4Prefix("10.244.5.0/24")!, leases: [old],
                                          config: config, hostAddresses: [IPv4Address("198.18.0.1")!], vtepMAC: MACAddress("0a:58:00:00:00:02")!)
        #expect(sameDevice.action == .renew(old), "the old address is gone, but the lease names this host's VTEP MAC")
        let clone = ReclaimPlan.make(publicIP: IPv4Address("198.18.0.1")!, previousSubnet: nil, leases: [old],
                                     config: config, hostAddresses: [IPv4Address("198.18.0.1")!], vtepMAC: MACAddress("0a:58:00:00:00:02")!)
        #expect(clone.action == .allocate, "a machine with the same MAC but not that subnet file is another node")
    }
}
