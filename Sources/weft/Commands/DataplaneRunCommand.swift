import ArgumentParser
import Foundation
import Logging
import WeftBPF
import WeftCore
import WeftDataplane
import WeftNetlink

extension DataplaneCommand {
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
}
