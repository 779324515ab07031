import ArgumentParser
import Foundation
import WeftStore

/// Where the leases live: the embedded store (a SQLite file shared by the processes of
/// one machine) or etcd, with flanneld's `--etcd-*` flags. Both use Flannel's layout under
/// `--etcd-prefix`. Each flag falls back to its `FLANNELD_*` variable.
struct StoreOptions: ParsableArguments {
    static let defaultStoreFile = "/var/lib/weft/leases.db"

    @Option(name: .long, help: "The lease store: embedded (a SQLite file on this machine) or etcd. [default: etcd when --etcd-endpoints is given, else embedded]")
    var store: StoreKind?

    @Option(name: .long, help: "The embedded store's database file.")
    var storeFile: String = NodeEnvironment.storeFile

    @Option(name: .long, help: "The key prefix of the network config and leases, as in flanneld. [default: /coreos.com/network]")
    var etcdPrefix: String?

    @Option(name: .long, help: "Comma-separated etcd endpoints, e.g. https://10.0.0.1:2379,https://10.0.0.2:2379.")
    var etcdEndpoints: String?
    @Option(name: .long, help: "The CA that signed etcd's certificate.") var etcdCafile: String?
    @Option(name: .long, help: "This client's certificate for etcd.") var etcdCertfile: String?
    @Option(name: .long, help: "This client's private key for etcd.") var etcdKeyfile: String?
    @Option(name: .long, help: "etcd username.") var etcdUsername: String?
    @Option(name: .long, help: "etcd password (FLANNELD_ETCD_PASSWORD keeps it off the command line).") var etcdPassword: String?
    @Option(name: .long, help: "A file holding the etcd password (its first line), such as a mounted Secret.") var etcdPasswordFile: String?

    enum StoreKind: String, ExpressibleByArgument, CaseIterable {
        case embedded, etcd
    }

    private func env(_ flag: String) -> String? {
        NodeEnvironment.flanneld(flag)
    }

    var connection: EtcdConnection? {
        guard let endpoints = etcdEndpoints ?? env("etcd-endpoints") else { return nil }
        return EtcdConnection(endpoints: endpoints.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) },
                              caFile: etcdCafile ?? env("etcd-cafile"), certFile: etcdCertfile ?? env("etcd-certfile"),
                              keyFile: etcdKeyfile ?? env("etcd-keyfile"), username: etcdUsername ?? env("etcd-username"),
                              password: etcdPassword ?? env("etcd-password") ?? passwordFromFile)
    }

    /// The first line of `--etcd-password-file` (`makeRegistry` refuses a file it cannot read).
    private var passwordFromFile: String? {
        guard let path = etcdPasswordFile ?? env("etcd-password-file"),
              let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return String(text.prefix { $0 != "\n" && $0 != "\r" })
    }

    /// The embedded store is in use: a file shared only by the processes of this machine.
    var usesEmbeddedStore: Bool { (store ?? (connection == nil ? .embedded : .etcd)) == .embedded }

    /// - Parameter reading: the command only reads; it never creates a store that is not there.
    func makeRegistry(reading: Bool = false) throws -> SubnetRegistry {
        let prefix = etcdPrefix ?? env("etcd-prefix") ?? SubnetRegistry.defaultPrefix
        switch store ?? (connection == nil ? .embedded : .etcd) {
        case .embedded:
            if reading && !FileManager.default.fileExists(atPath: storeFile) {
                throw CommandFailure("no lease store at \(storeFile): nothing has written one there (weft daemon and weft config put create it); check --store-file, or give --etcd-endpoints")
            }
            do {
                return SubnetRegistry(store: try EmbeddedStore(path: storeFile), prefix: prefix)
            } catch {
                throw CommandFailure("cannot open the embedded lease store: \(error)")
            }
        case .etcd:
            if let path = etcdPasswordFile ?? env("etcd-password-file"), !FileManager.default.isReadableFile(atPath: path) {
                throw CommandFailure("--etcd-password-file \(path): cannot be read; check the path and its mode")
            }
            guard let connection else { throw CommandFailure("--store etcd needs --etcd-endpoints (or FLANNELD_ETCD_ENDPOINTS)") }
            do {
                return SubnetRegistry(store: try EtcdStore(connection), prefix: prefix)
            } catch {
                throw CommandFailure("cannot use etcd: \(error)")
            }
        }
    }
}
