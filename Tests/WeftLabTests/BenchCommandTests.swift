import Foundation
import Testing
import WeftTestSupport

/// `weft bench` end to end, kept short: what it prints and writes, not how fast anything is.
@Suite("weft bench", .serialized, .enabled(if: isRoot, "needs root for namespaces and BPF"))
struct BenchCommandTests {
    @Test("A short run prints the table with ratios and writes every sample as JSON and a chart as SVG")
    func dataplaneBench() throws {
        let files = try TemporaryDirectory()
        let result = try Command.run([WeftProcess.binary, "bench", "--modes", "underlay,kernel-vxlan,kernel-vxlan-flannel,bpf-vxlan", "--rounds", "1",
                                      "--duration", "1", "--json", files.file("bench.json"), "--svg", files.file("bench.svg")])
        #expect(result.succeeded, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("bpf-vxlan / kernel-vxlan"))
        #expect(result.stdout.contains("bpf-vxlan / underlay"))
        #expect(result.stdout.contains("bpf-vxlan / kernel-vxlan-flannel"), "Flannel as deployed, with its masquerade rules")
        #expect(result.stdout.contains("sender and node 1's receive processing on CPU 0, receiver and node 2's on CPU 1 (taskset, threaded NAPI); GRO on the underlay interfaces"),
                "the placement is stated")
        let json = try #require(FileManager.default.contents(atPath: files.file("bench.json")))
        let document = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        let samples = try #require(document["samples"] as? [[String: Any]])
        #expect(samples.count == 4 * 7, "one sample per mode and metric")
        // The sendmmsg generator's datagrams arrived at the sink in every mode, and the paced run cost CPU.
        for sample in samples where sample["metric"] as? String == "udp64_kpps" || sample["metric"] as? String == "cpu_ns_per_packet_fixed_rate" {
            #expect((sample["value"] as? Double ?? 0) > 0, "\(sample)")
        }
        #expect((document["placement"] as? String)?.contains("threaded NAPI") == true)
        #expect(try String(contentsOfFile: files.file("bench.svg"), encoding: .utf8).hasPrefix("<svg"))
        let leftovers = try Command.must(["ip", "netns", "list"]).split(separator: "\n").filter { $0.hasPrefix("weft-bench-") }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }

    @Test("The control-plane run times both dataplanes and reads the daemon's memory")
    func controlPlaneBench() throws {
        let result = try Command.run([WeftProcess.binary, "bench", "control-plane", "--peers", "200"])
        #expect(result.succeeded, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("200 "))
        #expect(result.stdout.contains("daemon resident memory with 200 peers"))
    }
}
