import Foundation
import Testing
import WeftCore
@testable import WeftStore

@Suite struct SubnetRegistryTests {
    let directory: TemporaryDirectory

    // A failure here fails each test with the error, where `try!` would crash the runner.
    init() throws {
        directory = try TemporaryDirectory()
    }
    let clock = ManualClock()
    let recorder = LogRecorder()
    let config = try! NetworkConfigParser.parse(#"{"Network":"10.10.0.0/24","SubnetLen":28,"Backend":{"Type":"vxlan"}}"#).config

    func registry() throws -> SubnetRegistry {
        let clock = clock
        let store = try EmbeddedStore(path: directory.file("leases.db"), pollInterval: .milliseconds(10), now: { clock.now })
        return SubnetRegistry(store: store, logger: recorder.logger())
    }

    func vxlan(_ ip: String, _ mac: String = "a6:00:00:00:00:01") -> LeaseAttributes {
        .vxlan(publicIP: IPv4Address(ip)!, vni: 1, vtepMAC: MACAddress(mac)!)
    }

    @Test func aLeaseWrittenByFlannelIsReadAsAPeer() async throws {
        let registry = try registry()
        let flannel = #"{"PublicIP":"198.18.0.7","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"de:ad:be:ef:00:07"}}"#
        _ = try await registry.store.put("/coreos.com/network/subnets/10.10.0.112-28", value: bytes(flannel), lease: 0, ifModRevision: nil)
        let leases = try await registry.leases().leases.map(\.lease)
        #expect(leases == [Lease(subnet: IPv4Prefix("10.10.0.112/28")!, attributes: vxlan("198.18.0.7", "de:ad:be:ef:00:07"))])
    }

    @Test func weftWritesFlannelsKeyAndValue() async throws {
        let registry = try registry()
        let lease = try #require(try await registry.createLease(subnet: IPv4Prefix("10.10.0.32/28")!, attributes: vxlan("198.18.0.2"), ttlSeconds: 60))
        let stored = try #require(try await registry.store.get("/coreos.com/network/subnets/10.10.0.32-28"))
        #expect(String(decoding: stored.value, as: UTF8.self)
            == #"{"PublicIP":"198.18.0.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"a6:00:00:00:00:01"}}"#)
        #expect(stored.lease == lease.storeLease && stored.lease != 0)
    }

    @Test func aCorruptLeaseIsSkippedWithAWarningNamingItsKey() async throws {
        let registry = try registry()
        _ = try await registry.createLease(subnet: IPv4Prefix("10.10.0.32/28")!, attributes: vxlan("198.18.0.2"), ttlSeconds: 60)
        _ = try await registry.store.put("/coreos.com/network/subnets/10.10.0.48-28", value: bytes("{not json"), lease: 0, ifModRevision: nil)
        _ = try await registry.store.put("/coreos.com/network/subnets/garbage", value: bytes("{}"), lease: 0, ifModRevision: nil)
        let listing = try await registry.leases()
        #expect(listing.leases.map(\.lease.subnet) == [IPv4Prefix("10.10.0.32/28")!])
        #expect(listing.skipped.map(\.key) == ["/coreos.com/network/subnets/10.10.0.48-28", "/coreos.com/network/subnets/garbage"])
        #expect(listing.skipped.map(\.subnet) == [IPv4Prefix("10.10.0.48/28"), nil])
        let warnings = recorder.messages.filter { $0.hasPrefix("warning") }
        #expect(warnings.count == 2)
        #expect(warnings.contains { $0.contains("key=/coreos.com/network/subnets/10.10.0.48-28") && $0.contains("not valid JSON") })
        #expect(warnings.contains { $0.contains("key=/coreos.com/network/subnets/garbage") })
    }

    @Test func theSubnetOfACorruptLeaseIsNeverHandedOut() async throws {
        let registry = try registry()
        _ = try await registry.store.put("/coreos.com/network/subnets/10.10.0.48-28", value: bytes("garbage"), lease: 0, ifModRevision: nil)
        let acquirer = LeaseAcquirer(registry: registry, config: config, ttlSeconds: 60, logger: recorder.logger())
        var subnets: [IPv4Prefix] = []
        for node in 1...14 {
            subnets.append(try await acquirer.acquire(attributes: vxlan("198.18.0.\(node)")).lease.subnet)
        }
        #expect(Set(subnets).count == 14)
        #expect(!subnets.contains(IPv4Prefix("10.10.0.48/28")!))
        await #expect(throws: OutOfSubnetsError.self) {
            try await acquirer.acquire(attributes: vxlan("198.18.0.99"))
        }
    }

    @Test func reacquiringKeepsTheSubnetAndTheVTEPMAC() async throws {
        let registry = try registry()
        let acquirer = LeaseAcquirer(registry: registry, config: config, ttlSeconds: 60, logger: recorder.logger())
        let first = try await acquirer.acquire(attributes: vxlan("198.18.0.5", "a6:00:00:00:00:05"))
        let again = try await acquirer.acquire(attributes: vxlan("198.18.0.5", "a6:ff:ff:ff:ff:ff"))
        #expect(again.lease.subnet == first.lease.subnet)
        #expect(again.lease.attributes.vxlan?.vtepMAC == MACAddress("a6:00:00:00:00:05"), "peers cached the first MAC")
        #expect(try await registry.leases().leases.count == 1)
    }

    @Test func anExpiredLeaseIsReclaimedFromThePreviousSubnet() async throws {
        let registry = try registry()
        let acquirer = LeaseAcquirer(registry: registry, config: config, ttlSeconds: 60, logger: recorder.logger())
        let first = try await acquirer.acquire(attributes: vxlan("198.18.0.5"))
        clock.advance(seconds: 61)
        #expect(try await registry.leases().leases.isEmpty)
        let back = try await acquirer.acquire(attributes: vxlan("198.18.0.5"), previousSubnet: first.lease.subnet)
        #expect(back.lease.subnet == first.lease.subnet)
    }

    @Test func renewalExtendsAndALapsedLeaseIsReported() async throws {
        let registry = try registry()
        let lease = try #require(try await registry.createLease(subnet: IPv4Prefix("10.10.0.32/28")!, attributes: vxlan("198.18.0.2"), ttlSeconds: 60))
        clock.advance(seconds: 50)
        let renewed = try await registry.renewLease(lease)
        #expect(renewed.lease.expiration == clock.now.addingTimeInterval(60))
        clock.advance(seconds: 61)
        await #expect(throws: StoreError.leaseNotFound(lease.storeLease)) { try await registry.renewLease(renewed) }
    }

    @Test func watchReportsPutsDeletesAndExpiry() async throws {
        let registry = try registry()
        let start = try await registry.leases().revision + 1
        let events = registry.watchLeases(fromRevision: start)
        _ = try await registry.createLease(subnet: IPv4Prefix("10.10.0.32/28")!, attributes: vxlan("198.18.0.2"), ttlSeconds: 60)
        _ = try await registry.createLease(subnet: IPv4Prefix("10.10.0.48/28")!, attributes: vxlan("198.18.0.3"), ttlSeconds: 600)
        _ = try await registry.deleteLease(subnet: IPv4Prefix("10.10.0.48/28")!)
        clock.advance(seconds: 61)
        let seen = try await collect(4, from: events)
        let summary = seen.map { event -> String in
            switch event {
            case .put(let lease, _): "put \(lease.subnet)"
            case .delete(let subnet, _): "delete \(subnet)"
            }
        }
        #expect(summary == ["put 10.10.0.32/28", "put 10.10.0.48/28", "delete 10.10.0.48/28", "delete 10.10.0.32/28"])
    }

    @Test func aWatcherBehindACompactionReportsExactlyTheChangesItMissed() async throws {
        let registry = try registry()
        let a = try #require(try await registry.createLease(subnet: IPv4Prefix("10.10.0.32/28")!, attributes: vxlan("198.18.0.2"), ttlSeconds: 600))
        let b = try #require(try await registry.createLease(subnet: IPv4Prefix("10.10.0.48/28")!, attributes: vxlan("198.18.0.3"), ttlSeconds: 600))
        let resumeFrom = try await registry.leases().revision + 1
        // While the watcher is away: one node joins, one leaves, and history is compacted.
        let c = try #require(try await registry.createLease(subnet: IPv4Prefix("10.10.0.64/28")!, attributes: vxlan("198.18.0.4"), ttlSeconds: 600))
        _ = try await registry.deleteLease(subnet: a.lease.subnet)
        try (registry.store as! EmbeddedStore).compact(revision: try (registry.store as! EmbeddedStore).currentRevision())
        let missed = try await collect(2, from: registry.watchLeases(fromRevision: resumeFrom, known: [a.lease, b.lease]))
        #expect(missed.count == 2)
        guard case .put(let joined, _)? = missed.first, case .delete(let left, _)? = missed.last else {
            Issue.record("expected a put and a delete, got \(missed)")
            return
        }
        #expect(joined.subnet == c.lease.subnet)
        #expect(left == a.lease.subnet)
    }
}
