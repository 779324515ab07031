import Testing
@testable import WeftCore

@Suite struct AllocationTests {
    let config: NetworkConfig

    // A failure here fails each test with the error, where `try!` would crash the runner.
    init() throws {
        config = try NetworkConfigParser.parse(#"{"Network":"10.10.0.0/24","SubnetLen":28,"Backend":{"Type":"host-gw"}}"#).config
    }

    func prefix(_ text: String) -> IPv4Prefix { IPv4Prefix(text)! }

    @Test func theFirstSubnetIsNeverHandedOut() {
        let candidates = SubnetAllocator.freeCandidates(in: config, taken: [])
        #expect(candidates.count == 15)
        #expect(candidates.first == prefix("10.10.0.16/28"))
        #expect(candidates.last == prefix("10.10.0.240/28"))
        #expect(!candidates.contains(prefix("10.10.0.0/28")))
    }

    @Test func everySubnetIsGivenOnceThenOutOfSubnets() throws {
        var generator = SystemRandomNumberGenerator()
        var taken: [IPv4Prefix] = []
        for _ in 0..<15 {
            taken.append(try SubnetAllocator.allocate(in: config, taken: taken, using: &generator))
        }
        #expect(Set(taken).count == 15)
        #expect(taken.allSatisfy(config.canAllocate))
        #expect(throws: OutOfSubnetsError.self) {
            try SubnetAllocator.allocate(in: config, taken: taken, using: &generator)
        }
        let error = OutOfSubnetsError(config: config, leaseCount: 15)
        #expect(error.description.hasPrefix("out of subnets: all 15 /28 subnets from 10.10.0.16 to 10.10.0.240 in 10.10.0.0/24 are leased"))
    }

    @Test func subnetMinAndMaxBoundTheScan() throws {
        let bounded = try NetworkConfigParser.parse(
            #"{"Network":"10.244.0.0/16","SubnetMin":"10.244.5.0","SubnetMax":"10.244.7.0","Backend":{"Type":"vxlan"}}"#).config
        let candidates = SubnetAllocator.freeCandidates(in: bounded, taken: [prefix("10.244.6.0/24")])
        #expect(candidates == [prefix("10.244.5.0/24"), prefix("10.244.7.0/24")])
    }

    @Test func atMostOneHundredCandidatesFromTheBottom() throws {
        let large = try NetworkConfigParser.parse(#"{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}"#).config
        let candidates = SubnetAllocator.freeCandidates(in: large, taken: [prefix("10.0.1.0/24")])
        #expect(candidates.count == 100)
        #expect(candidates.first == prefix("10.0.2.0/24"))
        #expect(candidates.last == prefix("10.0.101.0/24"))
    }

    @Test func aLeaseOfAnotherSizeBlocksWhatItOverlaps() {
        let candidates = SubnetAllocator.freeCandidates(in: config, taken: [prefix("10.10.0.32/27")])
        #expect(!candidates.contains(prefix("10.10.0.32/28")))
        #expect(!candidates.contains(prefix("10.10.0.48/28")))
        #expect(candidates.count == 13)
    }

    // MARK: Reclaim order

    func lease(_ subnet: String, _ ip: String) -> Lease {
        Lease(subnet: prefix(subnet), attributes: .hostGateway(publicIP: IPv4Address(ip)!))
    }

    @Test func reclaimPrefersTheLeaseWithOurPublicIP() {
        let ours = lease("10.10.0.48/28", "198.18.0.2")
        let plan = ReclaimPlan.make(publicIP: IPv4Address("198.18.0.2")!, previousSubnet: prefix("10.10.0.64/28"),
                                    leases: [lease("10.10.0.32/28", "198.18.0.1"), ours], config: config)
        #expect(plan == ReclaimPlan(action: .renew(ours), staleLeases: []))
    }

    @Test func reclaimThenTriesThePreviousSubnetIfFree() {
        let me = IPv4Address("198.18.0.2")!
        let free = ReclaimPlan.make(publicIP: me, previousSubnet: prefix("10.10.0.64/28"),
                                    leases: [lease("10.10.0.32/28", "198.18.0.1")], config: config)
        #expect(free.action == .claimPrevious(prefix("10.10.0.64/28")))
        let takenByOther = ReclaimPlan.make(publicIP: me, previousSubnet: prefix("10.10.0.32/28"),
                                            leases: [lease("10.10.0.32/28", "198.18.0.1")], config: config)
        #expect(takenByOther.action == .allocate)
        let outOfRange = ReclaimPlan.make(publicIP: me, previousSubnet: prefix("10.10.0.0/28"), leases: [], config: config)
        #expect(outOfRange.action == .allocate, "the first subnet is never handed out, even to its previous owner")
        let noPrevious = ReclaimPlan.make(publicIP: me, previousSubnet: nil, leases: [], config: config)
        #expect(noPrevious.action == .allocate)
    }

    @Test func ourLeaseThatNoLongerFitsIsDeletedFirst() {
        let resized = lease("10.10.0.32/27", "198.18.0.2")
        let plan = ReclaimPlan.make(publicIP: IPv4Address("198.18.0.2")!, previousSubnet: prefix("10.10.0.32/28"),
                                    leases: [resized], config: config)
        #expect(plan == ReclaimPlan(action: .claimPrevious(prefix("10.10.0.32/28")), staleLeases: [prefix("10.10.0.32/27")]))
    }
}
