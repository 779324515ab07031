import ArgumentParser
import Foundation
import WeftBench

extension BenchCommand {
    /// `weft bench packets`: the benchmark's own UDP generator and sink, which `weft bench
    /// dataplane` runs inside its pods.
    struct Packets: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send or count small UDP datagrams with sendmmsg/recvmmsg (what weft bench dataplane measures packet rates with).",
            subcommands: [Send.self, Receive.self])

        struct Send: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Send datagrams to an address, from several sockets (flows).")
            @Option(help: "Where to send.") var to: String
            @Option(help: "The destination UDP port.") var port: UInt16 = 9000
            @Option(help: "Flows: sockets, each with its own source port.") var flows: Int = 4
            @Option(help: "Payload bytes per datagram.") var size: Int = 64
            @Option(help: "Seconds to send.") var duration: Double = 5
            @Option(help: "Packets a second; as fast as possible when not given.") var rate: Double?

            func validate() throws {
                guard flows > 0 else { throw ValidationError("--flows must be at least 1") }
                guard (1...1472).contains(size) else { throw ValidationError("--size must be 1 to 1472 bytes") }
                if let rate, rate <= 0 { throw ValidationError("--rate must be above 0") }
            }

            func run() throws {
                let sent = try PacketGenerator(destination: to, port: port, flows: flows, size: size).send(seconds: duration, rate: rate)
                print("sent \(sent) datagrams")
            }
        }

        struct Receive: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Count the datagrams arriving on a port, and print the count as JSON.")
            @Option(help: "The UDP port.") var port: UInt16 = 9000
            @Option(help: "Seconds to count, from the first datagram.") var duration: Double = 5

            func run() throws {
                let (packets, seconds) = try PacketSink(port: port).receive(seconds: duration)
                let encoded = try JSONEncoder().encode(PacketCount(packets: packets, seconds: seconds))
                print(String(decoding: encoded, as: UTF8.self))
            }
        }
    }
}
