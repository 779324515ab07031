import ArgumentParser
import Foundation
import Logging
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
        subcommands: [Probe.self, Compile.self, Up.self, Endpoint.self, Down.self]
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

    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set up (or adopt) the BPF dataplane of this node and program its peers.",
            discussion: "Safe to run again at any time: maps are kept, filters are replaced atomically, traffic keeps flowing.")
        @Option(help: "The network config (Flannel's net-conf.json).") var netConfigPath: String
        @Option(help: "This node's subnet, e.g. 10.244.1.0/24.") var subnet: String
        @Option(help: "The underlay interface.") var iface: String
        @Option(help: "This node's public IP. Default: the first IPv4 address of --iface.") var publicIP: String?
        @Option(help: "The VTEP MAC. Default: the vxlan device's current one, else a new random one.") var vtepMAC: String?
        @Option(help: "Peers' leases as `weft leases list --json` prints them.") var peers: String?
        @Option(help: "The bpffs directory for pins.") var pinDir: String = PinnedMaps.defaultDirectory
        @OptionGroup var programs: Programs
        @OptionGroup var logging: LoggingOptions

        func run() throws {
            logging.bootstrap()
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
            let settings = NodeSettings(network: config.network, subnet: subnet, publicIP: publicIP, underlayInterface: iface,
                                        backend: config.backend, vtepMAC: try vtepMAC(config.backend, netlink))
            let leases = try peers.map { try LeaseJSON.decodeList(ConfigFile.read($0), source: $0) } ?? []
            let dataplane = try BPFDataplane(settings: settings, pinDirectory: pinDir, programs: programs.programs,
                                             logger: Logger(label: "weft.dataplane"))
            try dataplane.setUp()
            let report = try dataplane.apply(peers: leases)
            print("bpf dataplane up: \(leases.count - report.ignored.count) peers, \(report.peersWritten) written, \(report.peersRemoved) removed")
        }

        private func vtepMAC(_ backend: Backend, _ netlink: NetlinkSocket) throws -> MACAddress {
            if let text = vtepMAC {
                guard let mac = MACAddress(text) else { throw CommandFailure("--vtep-mac \(text): expected a MAC such as 0a:58:0a:f4:01:01") }
                return mac
            }
            if case .vxlan(let options) = backend, let mac = try netlink.link(named: BPFDataplane.vxlanDeviceName(vni: options.vni))?.mac {
                return mac
            }
            var generator = SystemRandomNumberGenerator()
            return MACAddress.randomLocal(using: &generator)
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
        static let configuration = CommandConfiguration(abstract: "Remove everything the BPF dataplane attached, created and pinned in this network namespace.")
        @Option(help: "The bpffs directory for pins.") var pinDir: String = PinnedMaps.defaultDirectory
        @OptionGroup var logging: LoggingOptions

        func run() throws {
            logging.bootstrap()
            try BPFDataplane.tearDown(pinDirectory: pinDir, logger: Logger(label: "weft.dataplane"))
        }
    }
}
