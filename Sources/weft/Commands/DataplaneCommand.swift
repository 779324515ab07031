import ArgumentParser
import Foundation
import Logging
import Synchronization
import WeftBPF
import WeftCore
import WeftDataplane
import WeftNetlink

/// `weft dataplane`: set up, inspect and remove a node's dataplane by hand. The daemon
/// does the same through the same `Dataplane` interface.
struct DataplaneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataplane",
        abstract: "Probe, compile, set up, feed and tear down this node's BPF dataplane.",
        subcommands: [Probe.self, Compile.self, Up.self, Run.self, Endpoint.self, Down.self]
    )

    struct Programs: ParsableArguments {
        @Option(help: "Directory of the compiled programs (*.bpf.o). Default: bpf/out of the checkout weft was built from.")
        var bpfDir: String?

        var programs: BPFPrograms { bpfDir.map(BPFPrograms.init(directory:)) ?? BPFPrograms.locate() }
    }

    struct Probe: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Say whether this kernel and these privileges can run the BPF dataplane, and why not.")
        @OptionGroup var programs: Programs
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let probe = DataplaneProbe.run(programs: programs.programs)
            if json {
                print(JSONValue.object(["bpf": .bool(probe.canRunBPF), "reasons": .array(probe.reasons.map(JSONValue.string))])
                    .serialized(keyOrder: ["bpf", "reasons"]))
            } else if probe.canRunBPF {
                print("bpf: usable (programs in \(programs.programs.directory))")
            } else {
                print("bpf: not usable")
                for reason in probe.reasons { print("  - \(reason)") }
            }
            if !probe.canRunBPF { throw ExitCode(1) }
        }
    }

    struct Compile: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Compile the TC programs in bpf/ with clang (-target bpf -O2 -g).")
        @Option(help: "The bpf/ source directory. Default: the checkout weft was built from.") var source: String?
        @Option(help: "Where to write the objects. Default: <source>/out.") var output: String?
        @Flag(help: "Compile even when the objects are newer than their sources.") var force = false

        func run() throws {
            guard let source = source ?? BPFPrograms.sourceDirectory(near: CommandLine.arguments[0]) else {
                throw CommandFailure("no bpf/ source directory beside this weft binary; pass --source DIR")
            }
            let target = BPFPrograms(directory: output ?? "\(source)/out")
            let compiler = BPFCompiler(sourceDirectory: source)
            guard force || compiler.isStale(target) else {
                print("up to date: \(target.directory)")
                return
            }
            try compiler.compile(into: target)
            print("compiled \(BPFPrograms.names.count) programs into \(target.directory)")
        }
    }

    /// What a node's dataplane is made from: its network, subnet, underlay and identity.
    struct NodeOptions: ParsableArguments {
        @Option(help: "The network config (Flannel's net-conf.json).") var netConfigPath: String
        @Option(help: "This node's subnet, e.g. 10.244.1.0/24.") var subnet: String
        @Option(help: "The underlay interface.") var iface: String
        @Option(help: "This node's public IP. Default: the first IPv4 address of --iface.") var publicIP: String?
        @Option(help: "The VTEP MAC. Default: the vxlan device's current one, else a new random one.") var vtepMAC: String?
        @Option(help: "Peers' leases as `weft leases list --json` prints them.") var peers: String?
        @Option(help: "auto (BPF when the probe passes, else the kernel), bpf or kernel.") var dataplane: DataplaneChoice = .auto
        @Option(help: "The bpffs directory for pins.") var pinDir: String = PinnedMaps.defaultDirectory
        @OptionGroup var programs: Programs

        /// The peers file's leases, older first in the order the file lists them.
        func peerLeases() throws -> PeerSet {
            let leases = try peers.map { try LeaseJSON.decodeList(ConfigFile.read($0, what: "peers file"), source: $0) } ?? []
            return PeerSet(leases.enumerated().map { PeerLease($1, since: Int64($0)) })
        }

        /// Selects the dataplane (logging why once) and builds it.
        func makeDataplane(logger: Logger) throws -> any Dataplane {
            let config = try ConfigFile.load(netConfigPath).config
            guard let subnet = IPv4Prefix(subnet) else { throw CommandFailure("--subnet \(self.subnet): expected a CIDR such as 10.244.1.0/24") }
            let netlink = try NetlinkSocket()
            guard let underlay = try netlink.link(named: iface) else {
                throw CommandFailure("--iface \(iface): no such interface; there are: \(try netlink.links().map(\.name).sorted().joined(separator: ", "))")
            }
            let publicIP = try self.publicIP.map { text in
                guard let ip = IPv4Address(text) else { throw CommandFailure("--public-ip \(text): expected an IPv4 address") }
                return ip
            } ?? netlink.addresses(index: underlay.index).first?.address
            guard let publicIP else { throw CommandFailure("--iface \(iface) has no IPv4 address; give one or pass --public-ip") }
            let selection = try DataplaneSelection.select(dataplane, probe: DataplaneProbe.run(programs: programs.programs))
            logger.notice("dataplane selected", metadata: ["mode": "\(selection.mode.rawValue)", "reason": "\(selection.reason)"])
            let settings = NodeSettings(network: config.network, subnetLength: config.subnetLength, subnet: subnet, publicIP: publicIP, underlayInterface: iface,
                                        backend: config.backend,
                                        vtepMAC: try vtepMAC(config.backend, mode: selection.mode, netlink))
            switch selection.mode {
            case .bpf: return try BPFDataplane(settings: settings, pinDirectory: pinDir, programs: programs.programs, logger: logger)
            case .kernel: return try KernelDataplane(settings: settings, logger: logger)
            }
        }

        private func vtepMAC(_ backend: Backend, mode: DataplaneMode, _ netlink: NetlinkSocket) throws -> MACAddress {
            if let text = vtepMAC {
                guard let mac = MACAddress(text) else { throw CommandFailure("--vtep-mac \(text): expected a MAC such as 0a:58:0a:f4:01:01") }
                return mac
            }
            guard case .vxlan(let options) = backend else { return MACAddress(bytes: [2, 0, 0, 0, 0, 0])! }
            return mode.currentOrNewVTEPMAC(vni: options.vni, netlink)
        }
    }

    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set up (or adopt) this node's dataplane, program its peers, and exit.",
            discussion: "Safe to run again at any time: BPF maps are kept and filters replaced atomically; kernel entries are compared first.")
        @OptionGroup var node: NodeOptions
        @OptionGroup var logging: LoggingOptions

        func run() throws {
            logging.bootstrap()
            let leases = try node.peerLeases()
            let logger = Logger(label: "weft.dataplane")
            let dataplane = try node.makeDataplane(logger: logger)
            try dataplane.setUp()
            let plan = try dataplane.plan(peers: leases.leases)
            let report = try dataplane.apply(plan)
            for rejection in plan.rejected {
                logger.warning("rejected a lease; it is not programmed", metadata: ["subnet": "\(rejection.subnet)", "reason": "\(rejection.reason)"])
            }
            print("\(dataplane.mode.rawValue) dataplane up: \(plan.paths.count) peers, \(report.peersWritten) written, \(report.peersRemoved) removed"
                  + (plan.rejected.isEmpty ? "" : ", \(plan.rejected.count) leases rejected"))
        }
    }

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set up this node's dataplane and keep it that way: repair what the host network loses, until SIGTERM.",
            discussion: "On SIGTERM or SIGINT it exits 0 and leaves the dataplane in place, so pods keep talking.")
        @OptionGroup var node: NodeOptions
        @Option(help: "Seconds between full checks; netlink events trigger one at once as well.") var interval: Int = 2
        @OptionGroup var logging: LoggingOptions

        func run() throws {
            logging.bootstrap()
            let logger = Logger(label: "weft.dataplane")
            let dataplane = try node.makeDataplane(logger: logger)
            try dataplane.setUp()
            let supervisor = DataplaneSupervisor(dataplane: dataplane, peers: try node.peerLeases(), interval: .seconds(interval), logger: logger)
            try supervisor.reconcile()
            let stop = StopSignal { supervisor.stop() }
            logger.notice("dataplane running; SIGTERM to stop", metadata: ["mode": "\(dataplane.mode.rawValue)"])
            try withExtendedLifetime(stop) { try supervisor.run() }
            logger.notice("stopping; the dataplane stays in place")
        }
    }

    struct Endpoint: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register or unregister a pod on this node.", subcommands: [Add.self, Remove.self])

        struct Add: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Deliver to a pod directly and attach from_pod to its veth.")
            @Option(help: "The pod's IPv4 address.") var ip: String
            @Option(help: "The host side of the pod's veth pair.") var iface: String
            @Option(help: "The MAC of the pod's own interface.") var podMAC: String
            @Option(help: "The bpffs directory for pins.") var pinDir: String = PinnedMaps.defaultDirectory

            func run() throws {
                guard let address = IPv4Address(ip) else { throw CommandFailure("--ip \(ip): expected an IPv4 address") }
                guard let mac = MACAddress(podMAC) else { throw CommandFailure("--pod-mac \(podMAC): expected a MAC address") }
                try BPFEndpoints(pinDirectory: pinDir).add(address: address, hostInterface: iface, podMAC: mac)
            }
        }

        struct Remove: ParsableCommand {
            static let configuration = CommandConfiguration(commandName: "del", abstract: "Stop delivering to a pod and detach from its veth.")
            @Option(help: "The pod's IPv4 address.") var ip: String
            @Option(help: "The bpffs directory for pins.") var pinDir: String = PinnedMaps.defaultDirectory

            func run() throws {
                guard let address = IPv4Address(ip) else { throw CommandFailure("--ip \(ip): expected an IPv4 address") }
                try BPFEndpoints(pinDirectory: pinDir).remove(address: address)
            }
        }
    }

    struct Down: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove what the dataplane made in this network namespace.",
            discussion: "Always removes the BPF dataplane's filters, devices, routes and pins. With --net-config-path and --iface it also removes the kernel dataplane's flannel.<VNI> device and peer routes.")
        @Option(help: "The bpffs directory for pins.") var pinDir: String = PinnedMaps.defaultDirectory
        @Option(help: "The network config, to find the kernel dataplane's device and routes.") var netConfigPath: String?
        @Option(help: "The underlay interface the kernel dataplane's routes use.") var iface: String?
        @OptionGroup var logging: LoggingOptions

        func run() throws {
            logging.bootstrap()
            let logger = Logger(label: "weft.dataplane")
            try BPFDataplane.tearDown(pinDirectory: pinDir, logger: logger)
            guard let netConfigPath, let iface else { return }
            let config = try ConfigFile.load(netConfigPath).config
            let settings = NodeSettings(network: config.network, subnetLength: config.subnetLength, subnet: config.network, publicIP: IPv4Address(0), underlayInterface: iface,
                                        backend: config.backend, vtepMAC: MACAddress(bytes: [2, 0, 0, 0, 0, 0])!)
            try KernelDataplane(settings: settings, logger: logger).tearDown()
        }
    }
}

/// SIGTERM and SIGINT, turned into a flag a loop can poll.
/// Runs `action` once SIGTERM or SIGINT arrives, while this object lives.
final class StopSignal {
    private let sources: [any DispatchSourceSignal]

    init(_ action: @escaping @Sendable () -> Void) {
        sources = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler(handler: action)
            source.resume()
            return source
        }
    }
}

extension DataplaneChoice: ExpressibleByArgument {}
