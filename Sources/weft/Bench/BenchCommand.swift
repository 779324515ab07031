import ArgumentParser
import Foundation
import Glibc
import WeftBench
import WeftShell

/// `weft bench`: Weft's dataplanes against Flannel's kernel path and the bare underlay,
/// measured side by side, round by round, on this machine.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure BPF and kernel dataplanes (VXLAN, host-gw) against the underlay, interleaved round by round.",
        subcommands: [Dataplanes.self, ControlPlane.self, ApplyPeers.self, FillStore.self, LeaseBurst.self, Packets.self],
        defaultSubcommand: Dataplanes.self)

    struct Dataplanes: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dataplane",
            abstract: "TCP throughput (1 and 4 streams), TCP request/response latency, UDP 64-byte packet rate (4 flows, sendmmsg), CPU per Gbit and per packet at a fixed rate; sender and receiver on their own CPUs.")
        @Option(help: "Rounds; every mode is measured once per round.") var rounds: Int = 5
        @Option(help: "The offered rate, in thousands of packets a second, at which CPU per packet is measured; below what every mode delivers.") var fixedRateKpps: Double = 50
        @Option(help: "Seconds per measurement.") var duration: Int = 5
        @Option(help: "Write every sample here as JSON.") var json: String?
        @Option(help: "Write a bar chart here as SVG.") var svg: String?
        @Option(help: "Comma-separated modes; bpf-vxlan-unchecked and bpf-host-gw-unchecked (the source checks off) on request. [default: the five of the README]") var modes: String = BenchTopology.modes.joined(separator: ",")

        func run() throws {
            guard getuid() == 0 else { throw CommandFailure("weft bench needs root: it builds network namespaces and loads BPF programs") }
            let chosen = modes.split(separator: ",").map(String.init)
            let known = BenchTopology.modes + BenchTopology.uncheckedModes
            for mode in chosen where !known.contains(mode) {
                throw CommandFailure("--modes: unknown mode \(mode); choose from \(known.joined(separator: ", "))")
            }
            for tool in ["iperf3", "sockperf", "ethtool", "taskset"] where (try? Command.run(["which", tool]).succeeded) != true {
                throw CommandFailure("\(tool) is missing; scripts/setup installs it")
            }
            let root = "/run/weft-bench"
            let weft = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
            let topologies = chosen.map { BenchTopology(mode: $0, root: root) }
            for stale in topologies { stale.remove() }
            defer {
                for topology in topologies { topology.remove() }
                try? FileManager.default.removeItem(atPath: root)
            }
            for topology in topologies {
                print("==> building \(topology.mode) (\(Date().formatted(.dateTime.hour().minute().second())))")
                try topology.build(weft: weft)
                try topology.startServers()
            }
            var report = BenchReport(machine: Self.machine(), date: Date().formatted(.iso8601), rounds: rounds,
                                     durationSeconds: duration, modes: chosen, placement: BenchTopology.placementDescription)
            for round in 1...rounds {
                for topology in topologies {
                    print("==> round \(round)/\(rounds): \(topology.mode)")
                    try measure(topology, round: round, weft: weft, into: &report)
                }
            }
            print("")
            print(report.table())
            if let json { try report.json().write(to: URL(fileURLWithPath: json)) }
            if let svg { try report.svg().write(toFile: svg, atomically: true, encoding: .utf8) }
        }

        private func measure(_ topology: BenchTopology, round: Int, weft: String, into report: inout BenchReport) throws {
            let seconds = "\(duration)"
            let before = ToolOutput.cpuJiffies(try String(contentsOfFile: "/proc/stat", encoding: .utf8))
            let single = try ToolOutput.iperfTCPGbps(try topology.run(["iperf3", "-c", topology.targetIP, "-p", "5201", "-C", "cubic", "-t", seconds, "-J"]))
            let after = ToolOutput.cpuJiffies(try String(contentsOfFile: "/proc/stat", encoding: .utf8))
            report.record(round: round, mode: topology.mode, .tcp1, single)
            let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
            let cpuMilliseconds = Double(after.busy - before.busy) / ticks * 1000
            if single > 0 { report.record(round: round, mode: topology.mode, .cpuPerGbit, cpuMilliseconds / (single * Double(duration))) }
            let four = try ToolOutput.iperfTCPGbps(try topology.run(["iperf3", "-c", topology.targetIP, "-p", "5201", "-C", "cubic", "-t", seconds, "-P", "4", "-J"]))
            report.record(round: round, mode: topology.mode, .tcp4, four)
            let latency = try ToolOutput.sockperfLatency(try topology.run(["sockperf", "ping-pong", "--tcp", "--mps=max", "-i", topology.targetIP, "-p", "11111", "-t", seconds]))
            report.record(round: round, mode: topology.mode, .rrMedian, latency.median)
            report.record(round: round, mode: topology.mode, .rrP99, latency.p99)
            let flood = try packets(topology, weft: weft, rate: nil)
            report.record(round: round, mode: topology.mode, .udpPPS, flood.count.kpps)
            let paced = try packets(topology, weft: weft, rate: fixedRateKpps * 1000)
            if let nanoseconds = ToolOutput.cpuNanosecondsPerPacket(busyJiffies: paced.busyJiffies, ticksPerSecond: ticks, packets: paced.count.packets) {
                report.record(round: round, mode: topology.mode, .cpuPerPacket, nanoseconds)
            }
        }

        /// 64-byte datagrams in 4 flows from the source pod to a sink on the target, as fast as
        /// they go or at `rate`: what arrived, and the CPU every core spent meanwhile.
        private func packets(_ topology: BenchTopology, weft: String, rate: Double?) throws -> (count: PacketCount, busyJiffies: UInt64) {
            let sink = try topology.startSink(weft: weft, seconds: duration)
            let before = ToolOutput.cpuJiffies(try String(contentsOfFile: "/proc/stat", encoding: .utf8))
            _ = try topology.run([weft, "bench", "packets", "send", "--to", topology.targetIP, "--port", "\(BenchTopology.sinkPort)",
                                  "--flows", "4", "--size", "64", "--duration", "\(duration)"] + (rate.map { ["--rate", "\(Int($0))"] } ?? []))
            let collected = sink.collect()
            let after = ToolOutput.cpuJiffies(try String(contentsOfFile: "/proc/stat", encoding: .utf8))
            guard collected.termination.status == 0,
                  let count = try? JSONDecoder().decode(PacketCount.self, from: Data(collected.output)) else {
                throw CommandFailure("\(topology.mode): the packet sink failed: \(String(decoding: collected.error, as: UTF8.self))")
            }
            return (count, after.busy - before.busy)
        }

        static func machine() -> String {
            var name = utsname()
            uname(&name)
            let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            let cpu = ((try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "").split(separator: "\n")
                .first { $0.hasPrefix("model name") }?.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
            return "Linux \(release), \(ProcessInfo.processInfo.activeProcessorCount) cores, \(cpu)"
        }
    }
}

