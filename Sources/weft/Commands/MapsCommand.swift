import WeftSystem
import ArgumentParser
import WeftBPF
import WeftCore

/// `weft maps`: what the BPF dataplane of this node holds right now.
struct MapsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maps",
        abstract: "Show what the BPF dataplane's pinned maps hold: peers, local endpoints, counters.",
        subcommands: [Peers.self, Endpoints.self, Counters.self]
    )

    struct Location: ParsableArguments {
        @Option(help: "The bpffs directory the node's dataplane pins its maps in.")
        var pinDir: String = NodeEnvironment.pinDirectory

        @Flag(help: "Print JSON.")
        var json = false

        func open() throws -> PinnedMaps {
            do {
                return try PinnedMaps(directory: pinDir)
            } catch {
                throw CommandFailure("\(error)")
            }
        }
    }

    struct Peers: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Peer subnets: underlay IP, VTEP MAC and how each is reached.")
        @OptionGroup var location: Location

        func run() throws {
            let entries = try location.open().peers.entries().sorted { $0.key < $1.key }
            if location.json {
                print(JSONValue.array(entries.map { subnet, route in
                    .object(["subnet": .string(subnet.description), "underlayIP": .string(route.underlayIP.description),
                             "vtepMAC": .string(route.vtepMAC.description), "mode": .string(route.mode.name)])
                }).serialized(keyOrder: ["subnet", "underlayIP", "vtepMAC", "mode"]))
                return
            }
            var table = TextTable("SUBNET", "UNDERLAY-IP", "VTEP-MAC", "MODE")
            for (subnet, route) in entries {
                table.add(subnet.description, route.underlayIP.description, route.vtepMAC.description, route.mode.name)
            }
            print(table.rendered())
        }
    }

    struct Endpoints: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pods on this node the dataplane delivers to directly.")
        @OptionGroup var location: Location

        func run() throws {
            let entries = try location.open().endpoints.entries().sorted { $0.key < $1.key }
            if location.json {
                print(JSONValue.array(entries.map { address, endpoint in
                    .object(["ip": .string(address.description), "ifindex": .integer(Int64(endpoint.hostInterfaceIndex)),
                             "podMAC": .string(endpoint.podMAC.description), "hostMAC": .string(endpoint.hostMAC.description)])
                }).serialized(keyOrder: ["ip", "ifindex", "podMAC", "hostMAC"]))
                return
            }
            var table = TextTable("POD-IP", "HOST-IFINDEX", "POD-MAC", "HOST-MAC")
            for (address, endpoint) in entries {
                table.add(address.description, String(endpoint.hostInterfaceIndex), endpoint.podMAC.description, endpoint.hostMAC.description)
            }
            print(table.rendered())
        }
    }

    struct Counters: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Packets and bytes by outcome, summed over CPUs.")
        @OptionGroup var location: Location

        func run() throws {
            let totals: [DataplaneCounter: (packets: UInt64, bytes: UInt64)]
            do {
                totals = try location.open().counters.totals()
            } catch let error as SystemCallError {
                throw CommandFailure("\(error)")
            }
            if location.json {
                var members: [String: JSONValue] = [:]
                for counter in DataplaneCounter.allCases {
                    let value = totals[counter] ?? (0, 0)
                    members[counter.description] = .object(["packets": .integer(Int64(value.packets)), "bytes": .integer(Int64(value.bytes))])
                }
                print(JSONValue.object(members).serialized(keyOrder: DataplaneCounter.allCases.map(\.description) + ["packets", "bytes"]))
                return
            }
            var table = TextTable("OUTCOME", "PACKETS", "BYTES")
            for counter in DataplaneCounter.allCases {
                let value = totals[counter] ?? (0, 0)
                table.add(counter.description, String(value.packets), String(value.bytes))
            }
            print(table.rendered())
        }
    }
}

extension PeerRoute.Mode {
    var name: String { "\(self)" }
}
