import ArgumentParser
import Foundation
import Logging
import WeftBPF
import WeftCore
import WeftDataplane
import WeftNetlink

extension DataplaneCommand {
    struct Down: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove what the dataplane made in this network namespace.",
            discussion: "Always removes the BPF dataplane's filters, devices, routes and pins, and flanneld's masquerade and forward rules (the FLANNEL-POSTRTG and FLANNEL-FWD chains, or the flannel-ipv4 nftables table). With --net-config-path and --iface it also removes the kernel dataplane's flannel.<VNI> device and peer routes.")
        @Option(help: "The bpffs directory for pins.") var pinDir: String = PinnedMaps.defaultDirectory
        @Option(help: "The network config, to find the kernel dataplane's device and routes.") var netConfigPath: String?
        @Option(help: "The underlay interface the kernel dataplane's routes use.") var iface: String?
        @Flag(help: "Hand the node back to flanneld: leave Flannel's flannel.<VNI> in place of weft.<VNI>, with the same MAC and address, on --iface; flanneld started next adopts it, and peers see no change.")
        var forFlanneld = false
        @OptionGroup var logging: LoggingOptions

        func run() throws {
            logging.bootstrap()
            let logger = Logger(label: "weft.dataplane")
            if forFlanneld {
                guard let iface else { throw CommandFailure("--for-flanneld needs --iface: the interface flanneld will use") }
                _ = try FlanneldHandover.leaveFlannelDevice(underlayInterface: iface, logger: logger) {
                    try BPFDataplane.tearDown(pinDirectory: pinDir, logger: logger)
                }
            } else {
                try BPFDataplane.tearDown(pinDirectory: pinDir, logger: logger)
            }
            for removed in try NetfilterRules.removeAll() {
                logger.notice("removed \(removed)")
            }
            guard let netConfigPath, let iface else { return }
            let config = try ConfigFile.load(netConfigPath).config
            let vni: UInt32? = if case .vxlan(let options) = config.backend { options.vni } else { nil }
            try KernelDataplane.tearDown(network: config.network, vni: vni, underlayInterface: iface, logger: logger)
        }
    }
}
