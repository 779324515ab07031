import ArgumentParser
import Foundation
import Logging
import WeftBPF
import WeftCore
import WeftDataplane
import WeftNetlink

extension DataplaneCommand {
    struct Probe: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Say whether this kernel and these privileges can run the BPF dataplane, and why not.")
        @OptionGroup var programs: Programs
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let probe = DataplaneProbe.run(programs: programs.programs)
            if json {
                print(JSONValue.object(["bpf": .bool(probe.canRunBPF), "reasons": .array(probe.reasons.map(JSONValue.string)),
                                        "vxlan_aggregates_in_bpf": .bool(probe.aggregatesDecapsulatedInBPF), "netkit": .bool(probe.netkit)])
                    .serialized(keyOrder: ["bpf", "reasons", "vxlan_aggregates_in_bpf", "netkit"]))
            } else if probe.canRunBPF {
                print("bpf: usable (programs in \(programs.programs.directory))")
                print("vxlan receive: \(probe.vxlanReceivePath)")
                print("pods: \(probe.podInterfaces)")
            } else {
                print("bpf: not usable")
                for reason in probe.reasons { print("  - \(reason)") }
            }
            if !probe.canRunBPF { throw ExitCode(1) }
        }
    }
}
