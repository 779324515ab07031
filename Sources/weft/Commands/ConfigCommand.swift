import ArgumentParser
import Foundation
import WeftCore

/// `weft config`: check a `net-conf.json`, or store one for the cluster.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Check or store the cluster's network config (Flannel's net-conf.json).",
        subcommands: [Check.self, Put.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a net-conf.json and print the effective config with every default filled in.",
            discussion: "Exits non-zero with one line per problem, each naming the field, the value and the rule."
        )

        @Argument(help: "The net-conf.json to check.")
        var file: String

        @Flag(help: "Print the effective config as JSON, with Flannel's field names.")
        var json = false

        func run() throws {
            let parsed = try ConfigFile.load(file)
            for warning in parsed.warnings {
                FileHandle.standardError.write(Data("\(file): warning: \(warning)\n".utf8))
            }
            print(json ? parsed.config.flannelJSONText : ConfigSummary.render(parsed.config, file: file))
        }
    }

    struct Put: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a net-conf.json and store it at <prefix>/config, where every node reads it."
        )

        @Argument(help: "The net-conf.json to store.")
        var file: String

        @OptionGroup var storeOptions: StoreOptions
        @OptionGroup var logging: LoggingOptions

        func run() async throws {
            logging.bootstrap()
            _ = try ConfigFile.load(file)
            let text = String(decoding: try ConfigFile.read(file), as: UTF8.self)
            let registry = try storeOptions.makeRegistry()
            try await registry.setNetworkConfig(text)
            print("stored \(file) at \(registry.configKey) in \(registry.store.location)")
        }
    }
}

/// The readable form of an effective config.
enum ConfigSummary {
    static func render(_ config: NetworkConfig, file: String) -> String {
        let addressesPerSubnet = UInt64(1) << UInt64(32 - config.subnetLength)
        var lines = [
            "\(file): valid",
            "  Network    \(config.network)",
            "  SubnetLen  \(config.subnetLength) (\(addressesPerSubnet) addresses per node)",
            "  SubnetMin  \(config.subnetMin)",
            "  SubnetMax  \(config.subnetMax) (\(config.allocatableSubnetCount) node subnets in all)",
        ]
        switch config.backend {
        case .vxlan(let options):
            let mtu = options.mtu.map { "\($0 - VXLANOptions.encapsulationOverhead) (Backend.MTU \($0) - \(VXLANOptions.encapsulationOverhead))" }
                ?? "the underlay's MTU - \(VXLANOptions.encapsulationOverhead)"
            lines.append("  Backend    vxlan: VNI \(options.vni), UDP port \(options.port), "
                + "DirectRouting \(options.directRouting ? "on" : "off"), MTU \(mtu)")
        case .hostGateway:
            lines.append("  Backend    host-gw: routes to each node's public IP; nodes must share an L2 segment")
        }
        return lines.joined(separator: "\n")
    }
}
