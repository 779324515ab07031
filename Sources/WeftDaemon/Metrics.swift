import Prometheus
import WeftBPF
import WeftCore
import WeftDataplane

/// The daemon's metrics, through swift-prometheus: what happens (lease events, applies,
/// repairs, store round trips) is recorded as it happens; what is (readiness, peers,
/// rejected leases, the programs' counters, map fill, the process) is read at each scrape.
/// Names and units follow the Prometheus conventions: `_total` counters, `_seconds` and
/// `_bytes` units, `_info` for build information.
public final class DaemonMetrics: Sendable {
    private let events = PrometheusCollectorRegistry()
    private let applyDuration: DurationHistogram
    private let applies: Counter
    private let repairs: Counter

    static let durationBuckets: [Duration] = [.microseconds(100), .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                                              .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
                                              .seconds(2.5), .seconds(5), .seconds(10)]

    public init() {
        applyDuration = events.makeDurationHistogram(name: "weft_dataplane_apply_duration_seconds", buckets: Self.durationBuckets,
                                                     help: "Time to plan and apply one change of the peer set to the dataplane.")
        applies = events.makeCounter(name: "weft_dataplane_applies_total", help: "Plans applied to the dataplane.")
        repairs = events.makeCounter(name: "weft_dataplane_repairs_total", help: "Entries or rules the supervisor found missing or wrong and put back.")
        for type in ["put", "delete"] { recordLeaseEvent(type, count: 0) }
    }

    /// A lease change seen in the store: "put" or "delete".
    public func recordLeaseEvent(_ type: String, count: Int64 = 1) {
        events.makeCounter(name: "weft_lease_events_total", labels: [("type", type)], help: "Lease changes seen in the store, by type.")
            .increment(by: count)
    }

    public func record(_ observation: DataplaneSupervisor.Observation) {
        switch observation {
        case .applied(_, _, let seconds):
            applies.increment()
            applyDuration.record(.nanoseconds(Int64(seconds * 1e9)))
        case .repaired(let count):
            repairs.increment(by: Int64(count))
        case .failed, .succeeded, .screened:
            break
        }
    }

    /// One request to the lease store and its answer (or failure).
    public func recordStoreRoundTrip(_ operation: String, _ duration: Duration) {
        events.makeDurationHistogram(name: "weft_store_request_duration_seconds", labels: [("operation", operation)],
                                     buckets: Self.durationBuckets, help: "Round trips to the lease store, by operation.")
            .record(duration)
    }

    /// What the BPF dataplane's maps say, read for one scrape.
    public struct DataplaneReadings: Sendable {
        public var counters: [DataplaneHook: [DataplaneCounter: CounterMap.Totals]]
        public var maps: [MapUsage]
        public var suppressedDropReports: UInt64

        public init(counters: [DataplaneHook: [DataplaneCounter: CounterMap.Totals]], maps: [MapUsage], suppressedDropReports: UInt64) {
            self.counters = counters
            self.maps = maps
            self.suppressedDropReports = suppressedDropReports
        }

        public static func read(pinDirectory: String) -> DataplaneReadings? {
            guard let maps = try? PinnedMaps(directory: pinDirectory), let counters = try? maps.counters.byHook() else { return nil }
            return DataplaneReadings(counters: counters, maps: (try? MapUsage.read(maps)) ?? [], suppressedDropReports: (try? maps.eventBudget.suppressed()) ?? 0)
        }
    }

    /// The exposition text for one scrape.
    public func render(_ state: DaemonState.Snapshot, dataplane: DataplaneReadings?, process: ProcessReadings?) -> String {
        let now = PrometheusCollectorRegistry()
        now.makeGauge(name: "weft_build_info", labels: [("version", WeftVersion.current)], help: "Always 1; the labels say which Weft this is.").set(to: 1)
        now.makeGauge(name: "weft_ready", help: "1 while subnet.env is written, the dataplane is as planned and the store answers.").set(to: state.ready ? 1 : 0)
        now.makeGauge(name: "weft_dataplane_mode", labels: [("mode", state.mode?.rawValue ?? "none")], help: "The dataplane this node runs.").set(to: 1)
        now.makeGauge(name: "weft_peers", help: "Peer subnets this node programs.").set(Double(state.peers.count))
        var rejections: [String: Int] = [:]
        for rejection in state.plannedRejections { rejections[rejection.reason.name, default: 0] += 1 }
        for rejection in state.screenedLeases.values { rejections[rejection.reason.name, default: 0] += 1 }
        for reason in rejections.keys.sorted() {
            now.makeGauge(name: "weft_leases_rejected", labels: [("reason", reason)], help: "Leases in the store this node does not program, by reason.")
                .set(Double(rejections[reason]!))
        }
        now.makeCounter(name: "weft_lease_defended_total", help: "Times this node found its own lease changed or missing and wrote it back.")
            .increment(by: Int64(state.leaseDefended))
        now.makeCounter(name: "weft_store_resyncs_total", help: "Times the lease store went back in time and was listed again.")
            .increment(by: Int64(state.storeResyncs))
        if let dataplane { Self.add(dataplane, to: now) }
        if let process { process.add(to: now) }
        var buffer: [UInt8] = []
        now.emit(into: &buffer)
        events.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    private static func add(_ dataplane: DataplaneReadings, to registry: PrometheusCollectorRegistry) {
        for (hook, counters) in dataplane.counters.sorted(by: { $0.key.index < $1.key.index }) {
            for (counter, totals) in counters.sorted(by: { $0.key.index < $1.key.index }) where totals.packets > 0 {
                guard let outcome = counter.outcome else { continue }
                let labels = [("reason", counter.reason), ("hook", hook.description), ("direction", hook.direction)]
                registry.makeCounter(name: "weft_bpf_\(outcome.rawValue)_packets_total", labels: labels,
                                     help: "Packets the BPF programs \(Self.verb(outcome)), by reason, hook and direction.")
                    .increment(by: Int64(totals.packets))
                registry.makeCounter(name: "weft_bpf_\(outcome.rawValue)_bytes_total", labels: labels,
                                     help: "Bytes the BPF programs \(Self.verb(outcome)), by reason, hook and direction.")
                    .increment(by: Int64(totals.bytes))
            }
        }
        for map in dataplane.maps {
            registry.makeGauge(name: "weft_bpf_map_entries", labels: [("map", map.name)], help: "Entries in each BPF map.").set(Double(map.entries))
            registry.makeGauge(name: "weft_bpf_map_capacity", labels: [("map", map.name)], help: "The most entries each BPF map holds.").set(Double(map.capacity))
            registry.makeGauge(name: "weft_bpf_map_pressure", labels: [("map", map.name)], help: "Each BPF map's entries as a fraction of its capacity.").set(map.fill)
        }
        registry.makeCounter(name: "weft_bpf_drop_reports_suppressed_total",
                             help: "Drop reports for weft monitor held back by the per-CPU rate limit (the drops are counted all the same).")
            .increment(by: Int64(dataplane.suppressedDropReports))
    }

    private static func verb(_ outcome: DataplaneCounter.Outcome) -> String {
        switch outcome {
        case .forwarded: "forwarded themselves"
        case .passed: "left to the kernel"
        case .dropped: "dropped"
        }
    }
}
