import WeftSystem
import ArgumentParser
import Foundation
import WeftBPF
import WeftCore

/// `weft maps`: what the BPF dataplane of this node holds right now.
struct MapsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maps",
        abstract: "Show what the BPF dataplane's pinned maps hold: peers, tunnels, local endpoints, counters; look up an address.",
        subcommands: [Peers.self, Tunnels.self, Endpoints.self, Counters.self, Lookup.self, Usage.self, Events.self]
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

    struct Tunnels: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Underlay IPs of peers and the subnet each owns: what the VXLAN and underlay checks trust.")
        @OptionGroup var location: Location

        func run() throws {
            let entries = try location.open().tunnels.entries().sorted { $0.key < $1.key }
            if location.json {
                print(JSONValue.array(entries.map { ip, subnet in
                    .object(["underlayIP": .string(ip.description), "subnet": .string(subnet.description)])
                }).serialized(keyOrder: ["underlayIP", "subnet"]))
                return
            }
            var table = TextTable("UNDERLAY-IP", "SUBNET")
            for (ip, subnet) in entries { table.add(ip.description, subnet.description) }
            print(table.rendered())
        }
    }

    struct Counters: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Packets and bytes by outcome and hook, summed over CPUs.")
        @OptionGroup var location: Location
        @Flag(help: "With --json: each outcome's kind (forwarded, passed, dropped) and its count per hook.") var byHook = false

        func run() throws {
            let counts: [DataplaneHook: [DataplaneCounter: CounterMap.Totals]]
            do {
                counts = try location.open().counters.byHook()
            } catch let error as SystemCallError {
                throw CommandFailure("\(error)")
            }
            func total(_ counter: DataplaneCounter) -> CounterMap.Totals {
                DataplaneHook.allCases.reduce(into: CounterMap.Totals()) { sum, hook in
                    sum.packets += counts[hook]?[counter]?.packets ?? 0
                    sum.bytes += counts[hook]?[counter]?.bytes ?? 0
                }
            }
            if location.json {
                var members: [String: JSONValue] = [:]
                for counter in DataplaneCounter.allCases {
                    let value = total(counter)
                    var member: [String: JSONValue] = ["packets": .integer(Int64(value.packets)), "bytes": .integer(Int64(value.bytes))]
                    if byHook {
                        var hooks: [String: JSONValue] = [:]
                        for hook in DataplaneHook.allCases {
                            let count = counts[hook]?[counter] ?? CounterMap.Totals()
                            if count.packets > 0 { hooks[hook.description] = .object(["packets": .integer(Int64(count.packets)), "bytes": .integer(Int64(count.bytes))]) }
                        }
                        member["outcome"] = .string(counter.outcome?.rawValue ?? "unknown")
                        member["hooks"] = .object(hooks)
                    }
                    members[counter.description] = .object(member)
                }
                print(JSONValue.object(members).serialized(keyOrder: DataplaneCounter.allCases.map(\.description)
                    + ["outcome", "packets", "bytes", "hooks"] + DataplaneHook.allCases.map(\.description)))
                return
            }
            var table = TextTable("OUTCOME", "KIND", "PACKETS", "BYTES", "BY HOOK")
            for counter in DataplaneCounter.allCases {
                let value = total(counter)
                let hooks = DataplaneHook.allCases.compactMap { hook in
                    (counts[hook]?[counter]?.packets ?? 0) > 0 ? "\(hook) \(counts[hook]![counter]!.packets)" : nil
                }
                table.add(counter.description, counter.outcome?.rawValue ?? "?", String(value.packets), String(value.bytes), hooks.joined(separator: ", "))
            }
            print(table.rendered())
        }
    }

    struct Lookup: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Which endpoint, peer or tunnel entry an address hits, and the path a pod's packet to it takes.")
        @Argument(help: "An IPv4 address: a pod, a peer's pod, a node, anything.") var address: String
        @OptionGroup var location: Location

        func run() throws {
            guard let ip = IPv4Address(address) else { throw CommandFailure("\(address): expected an IPv4 address") }
            let maps = try location.open()
            let lookup: PathLookup
            do {
                lookup = PathLookup(ip, endpoints: try maps.endpoints.entries(), peers: try maps.peers.entries(), tunnels: try maps.tunnels.entries())
            } catch {
                throw CommandFailure("\(error)")
            }
            let (entry, path) = lookup.explanation
            if location.json {
                print(JSONValue.object(["address": .string(ip.description), "kind": .string(lookup.kind), "entry": .string(entry), "path": .string(path)])
                    .serialized(keyOrder: ["address", "kind", "entry", "path"]))
                return
            }
            print("\(ip): \(lookup.kind)\n  entry: \(entry)\n  path:  \(path)")
        }
    }

    struct Events: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The event stream weft monitor reads: how many monitors trace, and drop reports the rate limit held back.")
        @OptionGroup var location: Location

        func run() throws {
            let tracers: UInt32
            let suppressed: UInt64
            do {
                let maps = try location.open()
                tracers = try maps.monitor.tracers()
                suppressed = try maps.eventBudget.suppressed()
            } catch {
                throw CommandFailure("\(error)")
            }
            if location.json {
                print(JSONValue.object(["tracingMonitors": .integer(Int64(tracers)), "suppressedDropReports": .integer(Int64(suppressed)),
                                        "dropReportsPerCPUPerSecond": .integer(Int64(EventBudgetMap.dropEventsPerSecond))])
                    .serialized(keyOrder: ["tracingMonitors", "suppressedDropReports", "dropReportsPerCPUPerSecond"]))
                return
            }
            print("tracing monitors: \(tracers)\ndrop reports held back by the limit of \(EventBudgetMap.dropEventsPerSecond) per CPU and second: \(suppressed)")
        }
    }

    struct Usage: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Each map's entries against its capacity.")
        @OptionGroup var location: Location

        func run() throws {
            let rows: [MapUsage]
            do {
                rows = try MapUsage.read(location.open())
            } catch {
                throw CommandFailure("\(error)")
            }
            if location.json {
                print(JSONValue.array(rows.map { row in
                    .object(["map": .string(row.name), "entries": .integer(Int64(row.entries)), "capacity": .integer(Int64(row.capacity))])
                }).serialized(keyOrder: ["map", "entries", "capacity"]))
                return
            }
            var table = TextTable("MAP", "ENTRIES", "CAPACITY", "FILL")
            for row in rows { table.add(row.name, String(row.entries), String(row.capacity), String(format: "%.1f%%", row.fill * 100)) }
            print(table.rendered())
        }
    }
}

extension PeerRoute.Mode {
    var name: String { "\(self)" }
}
