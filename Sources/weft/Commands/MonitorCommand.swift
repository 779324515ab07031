import ArgumentParser
import Foundation
import Synchronization
import WeftBPF
import WeftCore

/// `weft monitor`: the BPF dataplane's drops, with their reasons, as they happen; with
/// `--type trace`, every decision too. In the manner of `cilium-dbg monitor`.
struct MonitorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "monitor",
        abstract: "Print the BPF dataplane's drops as they happen, each with its reason; with --type trace, every decision.",
        discussion: """
            Drops are always reported, at most \(EventBudgetMap.dropEventsPerSecond) per CPU and second (the rest are counted as \
            suppressed). --type trace switches tracing on in the programs while this runs: one line per packet forwarded, \
            delivered or left to the kernel, and why. This renews a 3 s lease on tracing every second, so tracing ends \
            within 3 s of the end of the last tracing monitor, however it ends (killed, hung up, a closed pipe). In a lab: weft lab exec n1 -- weft monitor.
            """)

    enum EventType: String, ExpressibleByArgument, CaseIterable {
        case drop, trace
    }

    @Option(help: "drop, or trace (drops and every decision).") var type: EventType = .drop
    @Option(help: "Only events whose source or destination is this pod IP.") var pod: String?
    @Option(help: "Only events that came from or go to this peer (its underlay IP).") var peer: String?
    @Option(help: "Only events whose source, destination or peer is this address.") var address: String?
    @Option(help: "Stop after this many events.") var count: Int?
    @Option(help: "Stop after this many seconds.") var duration: Double?
    @Option(help: "The bpffs directory the node's dataplane pins its maps in.") var pinDir: String = NodeEnvironment.pinDirectory
    @Flag(help: "One JSON object per line.") var json = false

    func run() throws {
        let filters = try [("pod", pod), ("peer", peer), ("address", address)].map { flag, text in
            try text.map { text in
                guard let address = IPv4Address(text) else { throw CommandFailure("--\(flag) \(text): expected an IPv4 address") }
                return address
            }
        }
        let maps: PinnedMaps
        let reader: EventReader
        do {
            maps = try PinnedMaps(directory: pinDir)
            reader = try maps.events()
        } catch {
            throw CommandFailure("\(error)")
        }
        let stopped = Atomic(false)
        let stop = StopSignal { stopped.store(true, ordering: .relaxed) }
        if type == .trace {
            do { try maps.monitor.startTracing() } catch { throw CommandFailure("\(error)") }
        }
        defer { if type == .trace { try? maps.monitor.stopTracing() } }
        var renewed = ContinuousClock.now
        if !json {
            print("listening for \(type == .trace ? "drops and decisions" : "drops") in \(pinDir); Ctrl-C to stop")
            fflush(nil)
        }
        let deadline = duration.map { Date().addingTimeInterval($0) }
        var printed = 0
        while !stopped.load(ordering: .relaxed), deadline.map({ Date() < $0 }) ?? true, count.map({ printed < $0 }) ?? true {
            let events: [DataplaneEvent]
            do {
                if type == .trace && ContinuousClock.now - renewed >= .seconds(1) {
                    try maps.monitor.renewTracing()
                    renewed = ContinuousClock.now
                }
                events = try reader.poll(timeoutMilliseconds: 200)
            } catch {
                throw CommandFailure("\(error)")
            }
            for event in events where matches(event, pod: filters[0], peer: filters[1], address: filters[2]) {
                print(json ? event.json.serialized(keyOrder: DataplaneEvent.jsonKeyOrder) : event.line)
                printed += 1
                if let count, printed >= count { break }
            }
            fflush(nil)
        }
        withExtendedLifetime(stop) {}
    }

    private func matches(_ event: DataplaneEvent, pod: IPv4Address?, peer: IPv4Address?, address: IPv4Address?) -> Bool {
        if type == .drop && event.kind != .drop { return false }
        if let pod, event.source != pod && event.destination != pod { return false }
        if let peer, event.peer != peer { return false }
        if let address, !event.involves(address) { return false }
        return true
    }

}
