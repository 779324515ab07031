import ArgumentParser
import Foundation
import WeftCore
import WeftStore

/// `weft leases`: what the lease store holds, and the operator's tools on it.
struct LeasesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leases",
        abstract: "List, watch, acquire, write or revoke subnet leases in the lease store.",
        subcommands: [List.self, Watch.self, Acquire.self, Put.self, Revoke.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every lease: subnet, public IP, backend, VTEP MAC, expiry.")

        @OptionGroup var storeOptions: StoreOptions
        @OptionGroup var logging: LoggingOptions
        @Flag(help: "Print JSON: one object per lease, with Flannel's lease attributes.")
        var json = false

        func run() async throws {
            logging.bootstrap()
            let listing = try await storeOptions.makeRegistry(reading: true).leases(expirations: true)
            for skipped in listing.skipped {
                FileHandle.standardError.write(Data("warning: skipped \(skipped.key): \(skipped.reason)\n".utf8))
            }
            if json {
                print(JSONValue.array(listing.leases.map { LeaseJSON.encode($0.lease) }).serialized(keyOrder: LeaseJSON.keyOrder))
                return
            }
            var table = TextTable("SUBNET", "PUBLIC-IP", "BACKEND", "VTEP-MAC", "EXPIRES")
            for registered in listing.leases {
                let lease = registered.lease
                table.add(lease.subnet.description, lease.attributes.publicIP.description, lease.attributes.backendType,
                          lease.attributes.vxlan?.vtepMAC.description ?? "-",
                          lease.expiration.map(LeaseJSON.timestamp) ?? "never")
            }
            print(table.rendered())
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print lease changes as they happen, one per line, in revision order.")

        @OptionGroup var storeOptions: StoreOptions
        @OptionGroup var logging: LoggingOptions
        @Option(help: "Replay history from this revision (default: only changes from now on).")
        var fromRevision: Int64?
        @Option(help: "Exit after printing this many changes.")
        var limit: Int?
        @Flag(help: "Print each change as one JSON object per line.")
        var json = false

        func run() async throws {
            logging.bootstrap()
            let registry = try storeOptions.makeRegistry(reading: true)
            var start = fromRevision ?? 0
            var known: [Lease] = []
            if fromRevision == nil {
                let listing = try await registry.leases()
                start = listing.revision + 1
                known = listing.leases.map(\.lease)
            }
            var printed = 0
            for try await event in registry.watchLeases(fromRevision: start, known: known) {
                let line = json ? LeaseJSON.encode(event).serialized(keyOrder: LeaseJSON.keyOrder) : LeaseJSON.line(event)
                // Unbuffered, so that a pipe sees each change as it happens.
                FileHandle.standardOutput.write(Data((line + "\n").utf8))
                printed += 1
                if let limit, printed >= limit { return }
            }
        }
    }

    struct Acquire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Acquire (or reclaim) the lease for a public IP and print its subnet.",
            discussion: "The node daemon does this itself; this command reserves a subnet by hand or from a script."
        )

        @OptionGroup var storeOptions: StoreOptions
        @OptionGroup var logging: LoggingOptions
        @Option(help: "The node's public (underlay) IPv4 address.")
        var publicIP: String
        @Option(help: "The VTEP MAC to publish for a vxlan network (default: a random local address).")
        var vtepMAC: String?
        @Option(help: "A subnet to take back if it is free, as from a previous subnet.env.")
        var previousSubnet: String?
        @Option(help: "Read the network config from this file instead of <prefix>/config in the store.")
        var netConfigPath: String?
        @Option(help: "The lease's time to live, in seconds.")
        var ttl: Int64 = LeaseAcquirer.defaultTTLSeconds
        @Flag(help: "Print the lease as JSON.")
        var json = false

        func validate() throws {
            guard IPv4Address(publicIP) != nil else {
                throw ValidationError("--public-ip \(publicIP) is not an IPv4 address such as 198.18.0.3")
            }
            if let vtepMAC, MACAddress(vtepMAC) == nil {
                throw ValidationError("--vtep-mac \(vtepMAC) is not a MAC address such as a6:12:34:56:78:9a")
            }
            if let previousSubnet, IPv4Prefix(previousSubnet) == nil {
                throw ValidationError("--previous-subnet \(previousSubnet) is not a subnet such as 10.244.3.0/24")
            }
            guard ttl > 0 else { throw ValidationError("--ttl must be a positive number of seconds") }
        }

        func run() async throws {
            logging.bootstrap()
            let registry = try storeOptions.makeRegistry()
            let config = try await NetworkConfigSource.load(path: netConfigPath, registry: registry)
            let address = IPv4Address(publicIP)!
            let attributes: LeaseAttributes
            switch config.backend {
            case .vxlan(let options):
                var generator = SystemRandomNumberGenerator()
                let mac = vtepMAC.flatMap { MACAddress($0) } ?? MACAddress.randomLocal(using: &generator)
                attributes = .vxlan(publicIP: address, vni: options.vni, vtepMAC: mac)
            case .hostGateway:
                attributes = .hostGateway(publicIP: address)
            }
            let acquirer = LeaseAcquirer(registry: registry, config: config, ttlSeconds: ttl)
            let lease = try await acquirer.acquire(attributes: attributes, previousSubnet: previousSubnet.flatMap { IPv4Prefix($0) })
            print(json ? LeaseJSON.encode(lease.lease).serialized(keyOrder: LeaseJSON.keyOrder) : lease.lease.subnet.description)
        }
    }

    struct Put: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a lease by hand: a reservation (no TTL, as Flannel keeps them) or a repair.",
            discussion: """
                The value is Flannel's lease JSON, checked before it is written. A node whose own subnet is written this way \
                puts its own lease back within seconds; peers check every lease before they program it.
                """
        )

        @OptionGroup var storeOptions: StoreOptions
        @OptionGroup var logging: LoggingOptions
        @Argument(help: "The subnet, such as 10.244.3.0/24.")
        var subnet: String
        @Option(help: #"The lease JSON, such as {"PublicIP":"198.18.0.3","BackendType":"host-gw"}."#)
        var value: String
        @Option(help: "The lease's time to live in seconds; 0 keeps it until it is revoked.")
        var ttl: Int64 = 0

        func run() async throws {
            logging.bootstrap()
            guard let prefix = IPv4Prefix(subnet) else {
                throw CommandFailure("\(subnet) is not a subnet such as 10.244.3.0/24")
            }
            do {
                _ = try LeaseAttributes.parse(Data(value.utf8))
            } catch {
                throw CommandFailure("--value: \(error.reason); give Flannel's lease JSON, such as {\"PublicIP\":\"198.18.0.3\",\"BackendType\":\"host-gw\"}")
            }
            let registry = try storeOptions.makeRegistry()
            let lease = ttl > 0 ? try await registry.store.grantLease(ttlSeconds: ttl).id : 0
            _ = try await registry.store.put(registry.key(for: prefix), value: Array(value.utf8), lease: lease, ifModRevision: nil)
            print("wrote the lease of \(prefix)" + (ttl > 0 ? " for \(ttl) s" : ", with no TTL"))
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a lease, such as that of a node that is gone for good; its subnet becomes free."
        )

        @OptionGroup var storeOptions: StoreOptions
        @OptionGroup var logging: LoggingOptions
        @Argument(help: "The leased subnet, such as 10.244.3.0/24.")
        var subnet: String

        func run() async throws {
            logging.bootstrap()
            guard let prefix = IPv4Prefix(subnet) else {
                throw CommandFailure("\(subnet) is not a subnet such as 10.244.3.0/24")
            }
            let registry = try storeOptions.makeRegistry()
            guard try await registry.deleteLease(subnet: prefix) else {
                throw CommandFailure("no lease for \(prefix) in \(registry.store.location); `weft leases` lists the leases there are")
            }
            print("revoked the lease of \(prefix)")
        }
    }
}

/// Where a command finds the network config: a file when given, else the store.
enum NetworkConfigSource {
    static func load(path: String?, registry: SubnetRegistry) async throws -> NetworkConfig {
        do {
            return try await registry.networkConfig(file: path)
        } catch let error as NetworkConfigLoadError {
            throw CommandFailure(error.description)
        }
    }
}

/// Leases and lease events as JSON and as text lines.
enum LeaseJSON {
    static let keyOrder = [
        "revision", "type", "subnet", "publicIP", "backendType", "vtepMAC", "expiration", "attributes", "leases",
        "PublicIP", "PublicIPv6", "BackendType", "BackendData", "VNI", "VtepMAC",
    ]

    static func encode(_ lease: Lease) -> JSONValue {
        var members: [String: JSONValue] = [
            "subnet": .string(lease.subnet.description),
            "publicIP": .string(lease.attributes.publicIP.description),
            "backendType": .string(lease.attributes.backendType),
            "attributes": (try? JSONValue.parse(lease.attributes.serialized())) ?? .null,
        ]
        members["vtepMAC"] = lease.attributes.vxlan.map { .string($0.vtepMAC.description) }
        members["expiration"] = lease.expiration.map { .string(timestamp($0)) }
        return .object(members)
    }

    static func encode(_ event: LeaseWatchEvent) -> JSONValue {
        switch event {
        case .put(let lease, let revision):
            guard case .object(var members) = encode(lease) else { return .null }
            members["type"] = .string("put")
            members["revision"] = .integer(revision)
            return .object(members)
        case .delete(let subnet, let revision):
            return .object(["type": .string("delete"), "subnet": .string(subnet.description), "revision": .integer(revision)])
        }
    }

    static func line(_ event: LeaseWatchEvent) -> String {
        switch event {
        case .put(let lease, let revision):
            "\(revision) put \(lease.subnet) \(lease.attributes.publicIP) \(lease.attributes.backendType) \(lease.attributes.vxlan?.vtepMAC.description ?? "-")"
        case .delete(let subnet, let revision):
            "\(revision) delete \(subnet)"
        }
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}

extension LeaseJSON {
    /// Reads leases in the form `weft leases list --json` prints: objects with `subnet`
    /// and Flannel's `attributes`. Errors name the entry and the field.
    static func decodeList(_ data: Data, source: String) throws -> [Lease] {
        guard case .array(let entries) = try JSONValue.parse(data) else {
            throw CommandFailure("\(source): expected a JSON array of leases, as `weft leases list --json` prints")
        }
        return try entries.enumerated().map { index, entry in
            guard case .string(let subnetText)? = entry.member("subnet")?.value, let subnet = IPv4Prefix(subnetText) else {
                throw CommandFailure("\(source): lease \(index): `subnet` must be a CIDR such as 10.244.2.0/24")
            }
            guard let attributes = entry.member("attributes")?.value else {
                throw CommandFailure("\(source): lease \(index) (\(subnet)): missing `attributes` (the lease's Flannel JSON)")
            }
            do {
                return Lease(subnet: subnet, attributes: try LeaseAttributes.parse(Data(attributes.serialized().utf8)))
            } catch {
                throw CommandFailure("\(source): lease \(index) (\(subnet)): \(error)")
            }
        }
    }
}
