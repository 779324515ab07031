import ArgumentParser

/// `weft`: the node daemon, the CLI and the tools of the Weft overlay network.
@main
struct Weft: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weft",
        abstract: "A Flannel-compatible overlay network with an eBPF dataplane.",
        subcommands: [DaemonCommand.self, StatusCommand.self, LabCommand.self, BenchCommand.self, ConfigCommand.self, LeasesCommand.self, DataplaneCommand.self, MapsCommand.self]
    )
}
