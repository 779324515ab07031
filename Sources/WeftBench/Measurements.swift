import Foundation
import WeftCore

/// What one benchmark run measures, per mode, and how the tools' outputs are read.
public enum Metric: String, CaseIterable, Codable, Sendable {
    case tcp1 = "tcp_1_stream_gbps"
    case tcp4 = "tcp_4_streams_gbps"
    case rrMedian = "tcp_rr_median_us"
    case rrP99 = "tcp_rr_p99_us"
    case udpPPS = "udp64_kpps"
    case cpuPerGbit = "cpu_ms_per_gbit"
    case cpuPerPacket = "cpu_ns_per_packet_fixed_rate"

    public var title: String {
        switch self {
        case .tcp1: "TCP 1 stream (Gbit/s)"
        case .tcp4: "TCP 4 streams (Gbit/s)"
        case .rrMedian: "TCP RR median (us)"
        case .rrP99: "TCP RR p99 (us)"
        case .udpPPS: "UDP 64 B, 4 flows (kpps)"
        case .cpuPerGbit: "CPU per Gbit (ms)"
        case .cpuPerPacket: "CPU per packet, fixed rate (ns)"
        }
    }

    /// Whether a larger value is better (throughput) or worse (latency, CPU).
    public var higherIsBetter: Bool { self == .tcp1 || self == .tcp4 || self == .udpPPS }
}

/// Readers of iperf3 JSON and sockperf text. Pure.
public enum ToolOutput {
    /// Receiver-side throughput of an iperf3 TCP run, in Gbit/s.
    public static func iperfTCPGbps(_ json: String) throws -> Double {
        let end = try iperfEnd(json)
        guard let received = end["sum_received"] as? [String: Any], let bits = received["bits_per_second"] as? Double else {
            throw BenchError("iperf3 reported no sum_received.bits_per_second")
        }
        return bits / 1e9
    }

    static func iperfEnd(_ json: String) throws -> [String: Any] {
        guard let document = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
            throw BenchError("iperf3 printed no JSON")
        }
        if let error = document["error"] as? String { throw BenchError("iperf3: \(error)") }
        guard let end = document["end"] as? [String: Any] else { throw BenchError("iperf3 printed no end summary") }
        return end
    }

    /// The median and 99th percentile latency sockperf ping-pong printed, in microseconds.
    public static func sockperfLatency(_ text: String) throws -> (median: Double, p99: Double) {
        func percentile(_ label: String) -> Double? {
            for line in text.split(separator: "\n") where line.contains("percentile \(label)") {
                if let value = line.split(separator: "=").last.flatMap({ Double($0.trimmingCharacters(in: .whitespaces)) }) { return value }
            }
            return nil
        }
        guard let median = percentile("50.000"), let p99 = percentile("99.000") else {
            throw BenchError("sockperf printed no percentiles: \(text.suffix(300))")
        }
        return (median, p99)
    }

    /// CPU nanoseconds per packet delivered: busy jiffies over the run (every CPU, the
    /// generator's included) at `ticksPerSecond`, divided by the packets that arrived.
    public static func cpuNanosecondsPerPacket(busyJiffies: UInt64, ticksPerSecond: Double, packets: UInt64) -> Double? {
        guard packets > 0, ticksPerSecond > 0 else { return nil }
        return Double(busyJiffies) / ticksPerSecond * 1e9 / Double(packets)
    }

    /// Busy and total jiffies from /proc/stat's first line.
    public static func cpuJiffies(_ procStat: String) -> (busy: UInt64, total: UInt64) {
        guard let line = procStat.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }) else { return (0, 0) }
        let fields = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
        guard fields.count >= 5 else { return (0, 0) }
        let total = fields.reduce(0, +)
        let idle = fields[3] + fields[4]
        return (total - idle, total)
    }
}

public struct BenchError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
