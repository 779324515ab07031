import Foundation
import Testing
import WeftBench

@Suite("Benchmark parsing and reports")
struct BenchReportTests {
    @Test func iperf3TCPSummariesAreRead() throws {
        let tcp = #"{"start":{},"end":{"sum_sent":{"bits_per_second":2.1e10},"sum_received":{"bits_per_second":2.0e10}}}"#
        #expect(try ToolOutput.iperfTCPGbps(tcp) == 20)
        let failed = #"{"error":"unable to connect to server: Connection refused"}"#
        let error = #expect(throws: BenchError.self) { try ToolOutput.iperfTCPGbps(failed) }
        #expect(error?.description == "iperf3: unable to connect to server: Connection refused")
    }

    @Test func sockperfPercentilesAreRead() throws {
        let text = """
        sockperf: ---> percentile 99.000 =   41.872
        sockperf: ---> percentile 90.000 =   34.541
        sockperf: ---> percentile 50.000 =   30.279
        """
        let latency = try ToolOutput.sockperfLatency(text)
        #expect(latency.median == 30.279 && latency.p99 == 41.872)
        #expect(throws: BenchError.self) { try ToolOutput.sockperfLatency("sockperf: ERROR") }
    }

    @Test func cpuJiffiesCountBusyTimeOnly() {
        let stat = "cpu  100 5 50 1000 20 0 5 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"
        let jiffies = ToolOutput.cpuJiffies(stat)
        #expect(jiffies.total == 1180)
        #expect(jiffies.busy == 160)
    }

    @Test("A paced generator's batches fall due evenly; the sink's count and the CPU per packet read as they should")
    func pacingAndPacketCounts() throws {
        let schedule = PacingSchedule(rate: 50_000, batch: 32)
        #expect(schedule.offset(ofBatch: 0) == 0)
        #expect(schedule.offset(ofBatch: 1) == 32.0 / 50_000)
        #expect(abs(schedule.offset(ofBatch: 50_000 / 32) - 0.99968) < 1e-9, "a second's worth of batches in just under a second")
        let count = try JSONDecoder().decode(PacketCount.self, from: Data(#"{"packets":250000,"seconds":5}"#.utf8))
        #expect(count.kpps == 50)
        #expect(PacketCount(packets: 10, seconds: 0).kpps == 0)
        // 150 busy jiffies at 100 Hz over 250000 packets: 6 us each.
        #expect(ToolOutput.cpuNanosecondsPerPacket(busyJiffies: 150, ticksPerSecond: 100, packets: 250_000) == 6000)
        #expect(ToolOutput.cpuNanosecondsPerPacket(busyJiffies: 150, ticksPerSecond: 100, packets: 0) == nil)
    }

    @Test func mediansSpreadsAndRatiosComeFromEverySample() throws {
        var report = BenchReport(machine: "test", date: "now", rounds: 3, durationSeconds: 5, modes: ["kernel-vxlan", "bpf-vxlan", "underlay"],
                                 placement: "sender pinned to CPU 0, receiver to CPU 1")
        for (round, values) in [(1, [10.0, 13.0, 20.0]), (2, [12.0, 14.0, 21.0]), (3, [11.0, 15.0, 19.0])] {
            report.record(round: round, mode: "kernel-vxlan", .tcp1, values[0])
            report.record(round: round, mode: "bpf-vxlan", .tcp1, values[1])
            report.record(round: round, mode: "underlay", .tcp1, values[2])
        }
        let summary = try #require(report.summary("bpf-vxlan", .tcp1))
        #expect(summary.median == 14 && summary.low == 13 && summary.high == 15)
        #expect(report.ratio("bpf-vxlan", to: "kernel-vxlan", .tcp1) == 14.0 / 11.0)
        #expect(report.ratio("bpf-vxlan", to: "underlay", .tcp1) == 14.0 / 20.0)
        let table = report.table()
        #expect(table.contains("bpf-vxlan / kernel-vxlan"))
        #expect(table.contains("1.27x"))
        #expect(table.hasPrefix("sender pinned to CPU 0, receiver to CPU 1\n"), "the placement heads the table")
        let decoded = try JSONDecoder().decode(BenchReport.self, from: try report.json())
        #expect(decoded.samples.count == 9)
        let svg = report.svg()
        #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>"))
        #expect(svg.contains("; sender pinned to CPU 0, receiver to CPU 1"))
        #expect(svg.components(separatedBy: "<rect").count - 1 >= 1 + 3 + 3, "background, legend and one bar per mode")
    }
}
