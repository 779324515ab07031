import ArgumentParser
import Foundation
import WeftCore

/// `weft`: the node daemon, the CLI and the tools of the Weft overlay network.
@main
struct Weft: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weft",
        abstract: "A Flannel-compatible overlay network with an eBPF dataplane.",
        version: WeftVersion.current,
        subcommands: [DaemonCommand.self, StatusCommand.self, LabCommand.self, BenchCommand.self, ConfigCommand.self, LeasesCommand.self, DataplaneCommand.self, MapsCommand.self, MonitorCommand.self]
    )

    /// `weft daemon` (and `weft` started as `flanneld`) reads flanneld's command lines as
    /// flanneld does: `-iface eth0`, `--ip-masq=true`, `-v=2`.
    static func main() async {
        var arguments = Array(CommandLine.arguments.dropFirst())
        let asFlanneld = URL(fileURLWithPath: CommandLine.arguments.first ?? "").lastPathComponent == "flanneld"
        if asFlanneld || arguments.first == "daemon" {
            if !asFlanneld { arguments.removeFirst() }
            do {
                arguments = ["daemon"] + (try FlanneldCommandLine.normalize(arguments, booleanFlags: DaemonCommand.booleanFlags,
                                                                                        onByDefault: DaemonCommand.flagsOnByDefault))
            } catch {
                exit(withError: ValidationError(error.description))
            }
        }
        await main(arguments)
    }
}
