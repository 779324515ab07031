import ArgumentParser
import Foundation
import WeftBPF
import WeftCore
import WeftStore

extension BenchCommand {
    /// Inside the bench namespace, next to a running daemon on etcd: writes a burst of new
    /// leases and times until the daemon's BPF peer map holds them all; fills the store up to
    /// `present` leases; then changes one lease at a time and times until each change is in
    /// the map. Prints JSON.
    struct LeaseBurst: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "lease-burst", shouldDisplay: false)
        @Option var etcdEndpoints: String
        @Option var pinDir: String
        @Option var burst: Int
        @Option var present: Int
        @Option var changes: Int = 100

        func run() async throws {
            let store = try EtcdStore(EtcdConnection(endpoints: etcdEndpoints.split(separator: ",").map(String.init)))
            let registry = SubnetRegistry(store: store)
            let maps = try PinnedMaps(directory: pinDir)
            let leases = BenchCommand.syntheticPeers(present)
            let grant = try await registry.store.grantLease(ttlSeconds: 3600)
            let clock = ContinuousClock()
            // In transactions of 128, as a restore or a burst of joins lands: the store's own
            // write path is not what is measured.
            func write(_ batch: ArraySlice<Lease>) async throws {
                try await store.putAll(batch.map { (registry.key(for: $0.subnet), Array($0.attributes.serialized().utf8)) }, lease: grant.id)
            }
            func waitForPeers(_ count: Int) async throws {
                let waiting = clock.now
                while try maps.peers.entries().count < count {
                    if clock.now - waiting > .seconds(120) { throw CommandFailure("the daemon did not program \(count) peers within 120 s") }
                    try await Task.sleep(for: .milliseconds(5))
                }
            }

            let start = clock.now
            try await write(leases[0..<burst])
            let written = clock.now
            try await waitForPeers(burst)
            let programmed = clock.now
            try await write(leases[burst...])
            try await waitForPeers(present)

            // One lease at a time: a new public IP for an existing peer, until the map has it.
            var latencies: [Double] = []
            for change in 0..<changes {
                let lease = leases[change % leases.count]
                let ip = IPv4Address(198, 19, UInt8(change >> 8 & 0xff), UInt8(change & 0xff))
                let vtep = lease.attributes.vxlan!.vtepMAC
                let attributes = LeaseAttributes.vxlan(publicIP: ip, vni: 1, vtepMAC: vtep)
                let sent = clock.now
                _ = try await registry.store.put(registry.key(for: lease.subnet), value: Array(attributes.serialized().utf8),
                                                 lease: grant.id, ifModRevision: nil)
                while try maps.peers.lookup(lease.subnet)?.underlayIP != ip {
                    if clock.now - sent > .seconds(10) { throw CommandFailure("a lease change did not reach the map within 10 s") }
                    try await Task.sleep(for: .microseconds(200))
                }
                latencies.append((clock.now - sent).seconds)
            }
            let sorted = latencies.sorted()
            func percentile(_ p: Double) -> Double { sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)] }
            print(JSONValue.object([
                "write_seconds": .number((written - start).seconds),
                "burst_seconds": .number((programmed - start).seconds),
                "after_last_write_seconds": .number((programmed - written).seconds),
                "change_p50_seconds": .number(percentile(0.5)),
                "change_p99_seconds": .number(percentile(0.99)),
            ]).serialized())
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
