import ArgumentParser
import Foundation
import Logging
import WeftBPF
import WeftCore
import WeftDaemon
import WeftDataplane
import WeftNetlink

extension DataplaneCommand {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set up this node's dataplane and keep it that way: repair what the host network loses, until SIGTERM.",
            discussion: "On SIGTERM or SIGINT it exits 0 and leaves the dataplane in place, so pods keep talking.")
        @OptionGroup var node: NodeOptions
        @Option(help: "Seconds between full checks; netlink events trigger one at once as well.") var interval: Int = 2
        @Flag(help: "flanneld's masquerade rules (FLANNEL-POSTRTG), kept as the daemon keeps them.") var ipMasq = false
        @Flag(inversion: .prefixedNo, help: "flanneld's forward rules (FLANNEL-FWD).") var iptablesForwardRules = true
        @Option(help: "Seconds between checks of the netfilter rules (flanneld's --iptables-resync).") var iptablesResync: Int = 5
        @OptionGroup var logging: LoggingOptions

        func validate() throws {
            guard iptablesResync > 0 else { throw ValidationError("--iptables-resync \(iptablesResync): must be 1 second or more") }
        }

        func run() throws {
            logging.bootstrap()
            let logger = Logger(label: "weft.dataplane")
            let (dataplane, dataplanes, config) = try node.assemble(logger: logger)
            try dataplane.setUp()
            // The rules the daemon keeps, from the same parts: masquerade, forward, and the
            // kernel dataplane's underlay guard.
            let rules = dataplanes.nodeRules(dataplane.settings, mode: dataplane.mode, masquerade: ipMasq, forward: iptablesForwardRules,
                                             sourceChecks: SourceChecks(pod: node.podSourceCheck, underlay: node.underlaySourceCheck),
                                             nftables: config.enableNFTables)
            let supervisor = DataplaneSupervisor(dataplane: dataplane, peers: try node.peerLeases(), interval: .seconds(interval), logger: logger,
                                                 rules: rules, rulesInterval: .seconds(iptablesResync))
            try supervisor.reconcile()
            try supervisor.checkRules()
            let stop = StopSignal { supervisor.stop() }
            logger.notice("dataplane running; SIGTERM to stop", metadata: ["mode": "\(dataplane.mode.rawValue)"])
            try withExtendedLifetime(stop) { try supervisor.run() }
            logger.notice("stopping; the dataplane stays in place")
        }
    }
}
