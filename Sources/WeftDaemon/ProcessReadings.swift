import Foundation
import Prometheus

/// The process metrics Prometheus clients export under the standard names: resident memory,
/// CPU time, open and allowed file descriptors, start time. Parsed from /proc; pure apart
/// from `read`.
public struct ProcessReadings: Sendable, Equatable {
    public var residentBytes: Double
    public var cpuSeconds: Double
    public var openFileDescriptors: Int
    public var maxFileDescriptors: Int
    public var startTimeSeconds: Double

    /// From /proc/self/stat (fields 14-15 utime and stime, 22 starttime, 24 rss pages),
    /// /proc/stat's btime, the clock tick and the page size.
    public static func parse(stat: String, systemStat: String, ticksPerSecond: Double, pageSize: Double,
                             openFileDescriptors: Int, maxFileDescriptors: Int) -> ProcessReadings? {
        // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ").map(String.init)
        // fields[0] is field 3 (state): field n is fields[n - 3].
        guard fields.count > 21, let user = Double(fields[11]), let system = Double(fields[12]), let start = Double(fields[19]),
              let pages = Double(fields[21]),
              let bootLine = systemStat.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
              let boot = Double(bootLine.dropFirst(6).trimmingCharacters(in: .whitespaces))
        else { return nil }
        return ProcessReadings(residentBytes: pages * pageSize, cpuSeconds: (user + system) / ticksPerSecond,
                               openFileDescriptors: openFileDescriptors, maxFileDescriptors: maxFileDescriptors,
                               startTimeSeconds: boot + start / ticksPerSecond)
    }

    public static func read() -> ProcessReadings? {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let systemStat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
        return parse(stat: stat, systemStat: systemStat, ticksPerSecond: Double(sysconf(Int32(_SC_CLK_TCK))),
                     pageSize: Double(sysconf(Int32(_SC_PAGESIZE))), openFileDescriptors: open, maxFileDescriptors: Int(limit.rlim_cur))
    }

    func add(to registry: PrometheusCollectorRegistry) {
        registry.makeGauge(name: "process_resident_memory_bytes", help: "Resident memory size in bytes.").set(residentBytes)
        registry.makeCounter(name: "process_cpu_seconds_total", help: "Total user and system CPU time spent in seconds.").increment(by: cpuSeconds)
        registry.makeGauge(name: "process_open_fds", help: "Number of open file descriptors.").set(Double(openFileDescriptors))
        registry.makeGauge(name: "process_max_fds", help: "Maximum number of open file descriptors.").set(Double(maxFileDescriptors))
        registry.makeGauge(name: "process_start_time_seconds", help: "Start time of the process since unix epoch in seconds.").set(startTimeSeconds)
    }
}
