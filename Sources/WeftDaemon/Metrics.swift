import WeftCore

/// The Prometheus text exposition of a daemon snapshot and its BPF counters.
public enum Metrics {
    public static func render(_ state: DaemonState.Snapshot, counters: [(name: String, packets: UInt64, bytes: UInt64)]) -> String {
        var lines: [String] = []
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: String)]) {
            lines.append("# HELP \(name) \(help)")
            lines.append("# TYPE \(name) \(type)")
            for sample in samples { lines.append("\(name)\(sample.labels) \(sample.value)") }
        }
        metric("weft_build_info", "gauge", "Always 1; the labels say which Weft this is.", [("{version=\"\(WeftVersion.current)\"}", "1")])
        metric("weft_ready", "gauge", "1 while subnet.env is written, the dataplane is as planned and the store answers.", [("", state.ready ? "1" : "0")])
        metric("weft_dataplane_mode", "gauge", "The dataplane this node runs.",
               [("{mode=\"\(state.mode?.rawValue ?? "none")\"}", "1")])
        metric("weft_peers", "gauge", "Peer subnets this node programs.", [("", "\(state.peers.count)")])
        let rejections = Dictionary(grouping: state.rejectedLeases, by: \.reason.name).mapValues(\.count)
        metric("weft_leases_rejected", "gauge", "Leases in the store this node does not program, by reason.",
               rejections.keys.sorted().map { ("{reason=\"\($0)\"}", "\(rejections[$0]!)") })
        metric("weft_lease_defended_total", "counter", "Times this node found its own lease changed or missing and wrote it back.",
               [("", "\(state.leaseDefended)")])
        metric("weft_store_resyncs_total", "counter", "Times the lease store went back in time and was listed again.",
               [("", "\(state.storeResyncs)")])
        metric("weft_lease_events_total", "counter", "Lease changes seen in the store.", [("", "\(state.leaseEvents)")])
        metric("weft_dataplane_applies_total", "counter", "Peer sets applied to the dataplane.", [("", "\(state.applies)")])
        metric("weft_dataplane_apply_seconds_total", "counter", "Time spent applying peer sets.", [("", "\(state.applySeconds)")])
        metric("weft_dataplane_repairs_total", "counter", "Entries the dataplane supervisor had to put back.", [("", "\(state.repairs)")])
        if !counters.isEmpty {
            metric("weft_bpf_packets_total", "counter", "Packets by BPF program outcome.",
                   counters.map { ("{outcome=\"\($0.name)\"}", "\($0.packets)") })
            metric("weft_bpf_bytes_total", "counter", "Bytes by BPF program outcome.",
                   counters.map { ("{outcome=\"\($0.name)\"}", "\($0.bytes)") })
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
