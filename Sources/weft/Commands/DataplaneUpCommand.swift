import ArgumentParser
import Foundation
import Logging
import WeftBPF
import WeftCore
import WeftDataplane
import WeftNetlink

extension DataplaneCommand {
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
}
