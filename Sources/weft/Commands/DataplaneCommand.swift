import ArgumentParser
import Foundation
import Logging
import WeftBPF
import WeftCore
import WeftDaemon
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
        @Flag(inversion: .prefixedNo, help: "Drop what a pod sends from an address not its own (BPF dataplane).") var podSourceCheck = true
        @Flag(inversion: .prefixedNo, help: "Drop plain IP from the underlay to the cluster network unless a direct peer sent it (BPF dataplane).")
        var underlaySourceCheck = true
        @OptionGroup var programs: Programs

        /// The peers file's leases, older first in the order the file lists them.
        func peerLeases() throws -> PeerSet {
            let leases = try peers.map { try LeaseJSON.decodeList(ConfigFile.read($0, what: "peers file"), source: $0) } ?? []
            return PeerSet(leases.enumerated().map { PeerLease($1, since: Int64($0)) })
        }

        /// Selects the dataplane (logging why once) and builds it.
        func makeDataplane(logger: Logger) throws -> any Dataplane {
            try assemble(logger: logger).dataplane
        }

        /// The node as the daemon assembles it, from the same parts: the dataplane, the
        /// factory that made it and the network config.
        func assemble(logger: Logger) throws -> (dataplane: any Dataplane, dataplanes: SystemDataplanes, config: NetworkConfig) {
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
            let dataplanes = SystemDataplanes(programs: programs.programs, pinDirectory: pinDir,
                                              sourceChecks: SourceChecks(pod: podSourceCheck, underlay: underlaySourceCheck))
            let selection = try dataplanes.select(dataplane)
            logger.notice("dataplane selected", metadata: ["mode": "\(selection.mode.rawValue)", "reason": "\(selection.reason)"])
            let settings = NodeSettings(network: config.network, subnetLength: config.subnetLength, subnet: subnet, publicIP: publicIP, underlayInterface: iface,
                                        backend: config.backend, vtepMAC: try vtepMAC(config.backend, mode: selection.mode, dataplanes))
            return (try dataplanes.make(settings, mode: selection.mode, logger: logger), dataplanes, config)
        }

        private func vtepMAC(_ backend: Backend, mode: DataplaneMode, _ dataplanes: SystemDataplanes) throws -> MACAddress {
            if let text = vtepMAC {
                guard let mac = MACAddress(text) else { throw CommandFailure("--vtep-mac \(text): expected a MAC such as 0a:58:0a:f4:01:01") }
                return mac
            }
            guard case .vxlan(let options) = backend else { return MACAddress(bytes: [2, 0, 0, 0, 0, 0])! }
            return dataplanes.currentOrNewVTEPMAC(vni: options.vni, mode: mode)
        }
    }
}

extension DataplaneChoice: ExpressibleByArgument {}
