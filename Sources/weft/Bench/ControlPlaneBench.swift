import ArgumentParser
import Foundation
import Glibc
import Logging
import WeftBPF
import WeftCore
import WeftDataplane
import WeftShell
import WeftTopology
import WeftStore

extension BenchCommand {
    /// `weft bench control-plane`: how long applying N peers takes on each dataplane, and the
    /// daemon's resident memory holding them.
    struct ControlPlane: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "control-plane",
            abstract: "Time to apply 1,000 and 10,000 peers to the BPF maps and to the kernel; the daemon's memory with 10,000 peers.")
        @Option(help: "Comma-separated peer counts.") var peers: String = "1000,10000"

        func run() throws {
            guard getuid() == 0 else { throw CommandFailure("weft bench needs root") }
            let counts = peers.split(separator: ",").compactMap { Int($0) }
            let weft = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
            let root = "/run/weft-bench-cp"
            let topology = Topology(prefix: "weft-bench-cp")
            let cleanup = {
                _ = try? Topology.remove(prefix: topology.prefix)
                BPFFilesystem.unmount("\(root)/pins")
                try? FileManager.default.removeItem(atPath: root)
            }
            cleanup()
            defer { cleanup() }
            try FileManager.default.createDirectory(atPath: "\(root)/pins", withIntermediateDirectories: true)
            let namespace = try topology.addNamespace("")
            try topology.addLoneLink(.init(namespace, "u1", "198.18.0.1/16"))
            print("peers   bpf maps (s)   kernel (s)   kernel / bpf")
            var results: [String: Any] = [:]
            for count in counts {
                var seconds: [String: Double] = [:]
                for dataplane in ["bpf", "kernel"] {
                    let output = try Command.must(["ip", "netns", "exec", namespace, weft, "bench", "apply-peers", "--count", "\(count)",
                                                   "--dataplane", dataplane, "--pin-dir", "\(root)/pins"])
                    seconds[dataplane] = Double(output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? .nan
                    _ = try Command.run(["ip", "netns", "exec", namespace, weft, "dataplane", "down", "--pin-dir", "\(root)/pins",
                                         "--net-config-path", "\(root)/net-conf.json", "--iface", "u1"])
                }
                let ratio = seconds["kernel"]! / seconds["bpf"]!
                print(String(format: "%-7d %-14.3f %-12.3f %.1fx", count, seconds["bpf"]!, seconds["kernel"]!, ratio))
                results["\(count)"] = ["bpf_seconds": seconds["bpf"]!, "kernel_seconds": seconds["kernel"]!]
            }
            let present = counts.max() ?? 10000
            let burst = min(5000, present)
            let direct = try applyPeers(burst, dataplane: "bpf", weft: weft, root: root, namespace: namespace)
            let figures = try leaseBurst(burst: burst, present: present, weft: weft, root: root, namespace: namespace)
            let endToEnd = figures["burst_seconds"] ?? .nan
            print(String(format: "%d new leases in etcd to the BPF maps: %.3f s end to end (writing them took %.3f s; the maps held them %.3f s after the last write); straight to the maps: %.3f s; end to end / straight: %.1fx",
                         burst, endToEnd, figures["write_seconds"] ?? .nan, figures["after_last_write_seconds"] ?? .nan, direct, endToEnd / direct))
            print(String(format: "one lease change with %d peers present, to the BPF map: p50 %.1f ms, p99 %.1f ms (100 changes)",
                         present, (figures["change_p50_seconds"] ?? .nan) * 1000, (figures["change_p99_seconds"] ?? .nan) * 1000))
            let rss = try daemonMemory(peers: present, weft: weft, root: root, namespace: namespace)
            print(String(format: "daemon resident memory with %d peers (BPF dataplane): %.1f MiB", present, rss))
        }

        /// `weft bench apply-peers` in the namespace: seconds to write `count` peers straight to a fresh dataplane.
        private func applyPeers(_ count: Int, dataplane: String, weft: String, root: String, namespace: String) throws -> Double {
            let output = try Command.must(["ip", "netns", "exec", namespace, weft, "bench", "apply-peers", "--count", "\(count)",
                                           "--dataplane", dataplane, "--pin-dir", "\(root)/pins"])
            _ = try Command.run(["ip", "netns", "exec", namespace, weft, "dataplane", "down", "--pin-dir", "\(root)/pins",
                                 "--net-config-path", "\(root)/net-conf.json", "--iface", "u1"])
            return Double(output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? .nan
        }

        /// A daemon on an etcd of the bench's own (both in the namespace, on its loopback), then
        /// `weft bench lease-burst` beside them.
        private func leaseBurst(burst: Int, present: Int, weft: String, root: String, namespace: String) throws -> [String: Double] {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/etcd") else {
                throw CommandFailure("the lease-burst figures need etcd: install etcd-server (scripts/setup does)")
            }
            let endpoint = "http://127.0.0.1:23790"
            let etcd = try ChildProcess(["ip", "netns", "exec", namespace, "/usr/bin/etcd", "--name", "bench", "--data-dir", "\(root)/etcd",
                                         "--listen-client-urls", endpoint, "--advertise-client-urls", endpoint,
                                         "--listen-peer-urls", "http://127.0.0.1:23800", "--initial-advertise-peer-urls", "http://127.0.0.1:23800",
                                         "--initial-cluster", "bench=http://127.0.0.1:23800"],
                                        output: .file("\(root)/etcd.log"), error: .file("\(root)/etcd.log"))
            defer { etcd.kill() }
            try BenchCommand.syntheticConfig.write(toFile: "\(root)/net-conf.json", atomically: true, encoding: .utf8)
            var configured = false
            for _ in 0..<100 where !configured {
                configured = (try? Command.run(["ip", "netns", "exec", namespace, weft, "config", "put", "\(root)/net-conf.json",
                                                "--etcd-endpoints", endpoint]))?.succeeded == true
                if !configured { usleep(100_000) }
            }
            guard configured else { throw CommandFailure("the bench's etcd did not start; see \(root)/etcd.log") }
            // Mounted here, where the helper sees it: a mount the daemon made inside its own
            // `ip netns exec` would be that process's alone.
            try BPFFilesystem.ensureMounted(at: "\(root)/pins")
            let daemon = try ChildProcess(["ip", "netns", "exec", namespace, weft, "daemon", "--etcd-endpoints", endpoint, "--iface", "u1",
                                           "--subnet-file", "\(root)/subnet-etcd.env", "--status-file", "\(root)/status-etcd.json",
                                           "--pin-dir", "\(root)/pins", "--dataplane", "bpf", "--log-level", "warning"],
                                          output: .file("\(root)/daemon-etcd.log"), error: .file("\(root)/daemon-etcd.log"))
            defer {
                daemon.signal(SIGTERM)
                daemon.wait()
                _ = try? Command.run(["ip", "netns", "exec", namespace, weft, "dataplane", "down", "--pin-dir", "\(root)/pins",
                                      "--net-config-path", "\(root)/net-conf.json", "--iface", "u1"])
            }
            for _ in 0..<300 {
                if ((try? String(contentsOfFile: "\(root)/status-etcd.json", encoding: .utf8)) ?? "").contains(#""ready":true"#) { break }
                usleep(100_000)
            }
            let output = try Command.must(["ip", "netns", "exec", namespace, weft, "bench", "lease-burst", "--etcd-endpoints", endpoint,
                                           "--pin-dir", "\(root)/pins", "--burst", "\(burst)", "--present", "\(present)"])
            guard case .object(let members) = try JSONValue.parse(output) else { throw CommandFailure("lease-burst printed \(output)") }
            return members.compactMapValues { value in
                switch value {
                case .number(let number): number
                case .integer(let number): Double(number)
                default: nil
                }
            }
        }

        /// Fills an embedded store with `peers` leases, starts a daemon on it in the namespace,
        /// and reads its VmRSS once it is ready.
        private func daemonMemory(peers: Int, weft: String, root: String, namespace: String) throws -> Double {
            let store = "\(root)/leases.db"
            try Command.must([weft, "bench", "fill-store", "--count", "\(peers)", "--store-file", store])
            let daemon = try ChildProcess(["ip", "netns", "exec", namespace, weft, "daemon", "--store-file", store, "--iface", "u1",
                                           "--subnet-file", "\(root)/subnet.env", "--status-file", "\(root)/status.json",
                                           "--pin-dir", "\(root)/pins", "--dataplane", "bpf", "--log-level", "warning"],
                                          output: .null, error: .null)
            defer {
                daemon.signal(SIGTERM)
                daemon.wait()
            }
            for _ in 0..<600 {
                if ((try? String(contentsOfFile: "\(root)/status.json", encoding: .utf8)) ?? "").contains(#""ready":true"#) { break }
                usleep(100_000)
            }
            sleep(1)
            let status = try String(contentsOfFile: "/proc/\(daemon.pid)/status", encoding: .utf8)
            let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
            let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
            return kilobytes / 1024
        }
    }

    /// Peer leases for the control-plane benchmark: subnets of 10.0.0.0/8, VXLAN, public
    /// IPs in 198.18.0.0/15.
    static func syntheticPeers(_ count: Int) -> [Lease] {
        (0..<count).map { index in
            let a = UInt8((index + 256) >> 8 & 0xff), b = UInt8((index + 256) & 0xff)
            return Lease(subnet: IPv4Prefix(network: IPv4Address(10, a, b, 0), length: 24)!,
                         attributes: .vxlan(publicIP: IPv4Address(198, 18 + UInt8(index >> 16), a, b), vni: 1,
                                            vtepMAC: MACAddress(bytes: [0x0a, 0x58, 0, UInt8(index >> 16), a, b])!))
        }
    }

    static let syntheticConfig = #"{"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"vxlan"}}"#

    /// Inside a node namespace: set up a dataplane and time one apply of `count` new peers.
    struct ApplyPeers: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "apply-peers", shouldDisplay: false)
        @Option var count: Int
        @Option var dataplane: DataplaneMode
        @Option var pinDir: String

        func run() throws {
            let config = try NetworkConfigParser.parse(BenchCommand.syntheticConfig).config
            try BenchCommand.syntheticConfig.write(toFile: (pinDir as NSString).deletingLastPathComponent + "/net-conf.json", atomically: true, encoding: .utf8)
            let settings = NodeSettings(network: config.network, subnetLength: config.subnetLength, subnet: IPv4Prefix("10.0.0.0/24")!, publicIP: IPv4Address("198.18.0.1")!,
                                        underlayInterface: "u1", backend: config.backend, vtepMAC: MACAddress("0a:58:00:00:00:01")!)
            var logger = Logger(label: "weft.bench")
            logger.logLevel = .warning
            let plane: any Dataplane = dataplane == .bpf
                ? try BPFDataplane(settings: settings, pinDirectory: pinDir, programs: BPFPrograms.locate(), logger: logger)
                : try KernelDataplane(settings: settings, logger: logger)
            try plane.setUp()
            let peers = BenchCommand.syntheticPeers(count).enumerated().map { PeerLease($1, since: Int64($0)) }
            let start = ContinuousClock.now
            try plane.apply(plane.plan(peers: peers))
            let elapsed = ContinuousClock.now - start
            print(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        }
    }

    /// Writes the network config and `count` peer leases into an embedded store.
    struct FillStore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "fill-store", shouldDisplay: false)
        @Option var count: Int
        @Option var storeFile: String

        func run() async throws {
            let registry = SubnetRegistry(store: try EmbeddedStore(path: storeFile))
            try await registry.setNetworkConfig(BenchCommand.syntheticConfig)
            for lease in BenchCommand.syntheticPeers(count) {
                _ = try await registry.createLease(subnet: lease.subnet, attributes: lease.attributes, ttlSeconds: 3600)
            }
        }
    }
}

extension DataplaneMode: ExpressibleByArgument {}
