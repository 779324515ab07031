import Foundation
import Logging
import Testing
import WeftDaemon

@Suite("Logs and process metrics, as a collector reads them")
struct ObservabilityTests {
    @Test("--log-format json: one object per line with the text format's fields, metadata at the top level, clashes kept apart")
    func jsonLogLine() throws {
        let line = JSONLogHandler.line(time: Date(timeIntervalSince1970: 1_800_000_000), level: .warning, label: "weft.daemon",
                                       message: "rejected a lease; it is not programmed", source: "WeftDaemon",
                                       metadata: ["subnet": "10.244.9.0/24", "level": "clash", "peers": .array(["a", "b"])])
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["level"] as? String == "warning")
        #expect(object["label"] as? String == "weft.daemon")
        #expect(object["message"] as? String == "rejected a lease; it is not programmed")
        #expect(object["source"] as? String == "WeftDaemon")
        #expect(object["subnet"] as? String == "10.244.9.0/24")
        #expect(object["metadata.level"] as? String == "clash")
        #expect(object["peers"] as? [String] == ["a", "b"])
        #expect((object["time"] as? String)?.hasPrefix("2027-01-15T08:00:00") == true, "\(object["time"] ?? "")")
        #expect(line.hasPrefix(#"{"time":"#))
    }

    @Test("Process readings from /proc: a command name with spaces and parentheses, ticks and pages converted")
    func processReadings() throws {
        // Fields 14/15 utime 250 and stime 150 ticks, 22 starttime 1000 ticks, 24 rss 2048 pages.
        let stat = "4242 (weft (daemon) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 9 0 1000 300000000 2048 18446744073709551615"
        let readings = try #require(ProcessReadings.parse(stat: stat, systemStat: "cpu  1 2 3\nbtime 1700000000\nprocesses 9\n",
                                                          ticksPerSecond: 100, pageSize: 4096, openFileDescriptors: 12, maxFileDescriptors: 1024))
        #expect(readings.cpuSeconds == 4.0)
        #expect(readings.residentBytes == 2048 * 4096)
        #expect(readings.startTimeSeconds == 1_700_000_010)
        #expect(readings.openFileDescriptors == 12)
        #expect(ProcessReadings.parse(stat: "garbage", systemStat: "", ticksPerSecond: 100, pageSize: 4096, openFileDescriptors: 0, maxFileDescriptors: 0) == nil)
        #expect(ProcessReadings.read() != nil, "this process's own")
    }
}
