import ArgumentParser
import Foundation
import Logging
import WeftBPF
import WeftCore
import WeftDataplane
import WeftNetlink

extension DataplaneCommand {
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
}
