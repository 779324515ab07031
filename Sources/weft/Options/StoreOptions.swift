import ArgumentParser
import Foundation
import WeftStore

/// Where the leases live. The embedded store is a SQLite file shared by the processes of
/// one machine; it uses Flannel's etcd layout under `--etcd-prefix` all the same.
struct StoreOptions: ParsableArguments {
    static let defaultStoreFile = "/var/lib/weft/leases.db"

    @Option(name: .long, help: "The lease store: 'embedded' (a SQLite file on this machine).")
    var store: StoreKind = .embedded

    @Option(name: .long, help: "The embedded store's database file.")
    var storeFile: String = NodeEnvironment.storeFile

    @Option(name: .long, help: "The key prefix of the network config and leases, as in flanneld.")
    var etcdPrefix: String = SubnetRegistry.defaultPrefix

    enum StoreKind: String, ExpressibleByArgument, CaseIterable {
        case embedded
    }

    func makeRegistry() throws -> SubnetRegistry {
        switch store {
        case .embedded:
            do {
                return SubnetRegistry(store: try EmbeddedStore(path: storeFile), prefix: etcdPrefix)
            } catch {
                throw CommandFailure("cannot open the embedded lease store: \(error)")
            }
        }
    }
}
