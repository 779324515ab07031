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
        metric("weft_ready", "gauge", "1 once subnet.env is written and the dataplane programmed.", [("", state.ready ? "1" : "0")])
        metric("weft_dataplane_mode", "gauge", "The dataplane this node runs.",
               [("{mode=\"\(state.mode?.rawValue ?? "none")\"}", "1")])
        metric("weft_peers", "gauge", "Peer subnets this node programs.", [("", "\(state.peers.count)")])
        metric("weft_peers_ignored", "gauge", "Peer leases this backend cannot use.", [("", "\(state.ignoredPeers.count)")])
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
