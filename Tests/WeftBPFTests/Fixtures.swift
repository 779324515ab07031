import Foundation
import Glibc
import Testing
import WeftBPF
import WeftCore
@_exported import WeftTestSupport

let isRoot = getuid() == 0

/// The compiled programs in the source tree (`make -C bpf`, which scripts/setup runs).
enum BuiltPrograms {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("bpf/out").path

    static func path(_ name: String) -> String { "\(directory)/\(name).bpf.o" }
}

/// A program loaded with test globals, and its maps.
struct LoadedProgram {
    static let ourVTEP = MACAddress("02:00:00:00:00:01")!
    /// Node 198.18.0.1, handing VXLAN to the collect_md device unless a test asks for encapsulation in the program.
    static let globals = DataplaneGlobals(vni: 1, vtepMAC: ourVTEP, vxlanInterfaceIndex: 1, vxlanPort: 8472,
                                          underlayInterfaceIndex: 1, tunnelMTU: 1450, clusterNetwork: IPv4Prefix("10.244.0.0/16")!,
                                          localIP: IPv4Address("198.18.0.1")!, encapsulateInProgram: false)

    let object: BPFObject
    let name: String
    let peers: PeerMap
    let endpoints: EndpointMap
    let tunnels: TunnelMap
    let counters: CounterMap

    init(_ name: String, pins: PinDirectory, globals: DataplaneGlobals = globals) throws {
        object = try BPFObject(path: BuiltPrograms.path(name), pinDirectory: pins.path)
        try globals.apply(to: object)
        try object.load()
        self.name = name
        peers = PeerMap(descriptor: try object.mapDescriptor(PeerMap.name))
        endpoints = EndpointMap(descriptor: try object.mapDescriptor(EndpointMap.name))
        tunnels = TunnelMap(descriptor: try object.mapDescriptor(TunnelMap.name))
        counters = CounterMap(descriptor: try object.mapDescriptor(CounterMap.name))
    }

    /// - Parameter ingressInterface: the interface the packet arrives on.
    func run(_ packet: [UInt8], ingressInterface: UInt32 = 0, gsoSize: UInt32 = 0) throws -> ProgramTestRun.Outcome {
        try ProgramTestRun.run(programDescriptor: try object.programDescriptor(name), name: name, packet: packet,
                               ingressInterface: ingressInterface, gsoSize: gsoSize)
    }

    func packets(_ counter: DataplaneCounter) throws -> UInt64 {
        try counters.totals()[counter]?.packets ?? 0
    }
}

/// TC actions (linux/pkt_cls.h).
enum TCAction {
    static let ok: UInt32 = 0
    static let shot: UInt32 = 2
    static let redirect: UInt32 = 7
}

/// Builds Ethernet frames carrying IPv4/UDP, with correct header checksums.
struct Frame {
    var destinationMAC = MACAddress("02:00:00:00:00:fe")!
    var sourceMAC = MACAddress("02:00:00:00:00:aa")!
    var etherType: UInt16 = 0x0800
    var source = IPv4Address("10.244.1.2")!
    var destination = IPv4Address("10.244.2.3")!
    var ttl: UInt8 = 64
    /// 17 (UDP) with the header below; any other protocol carries the payload bare.
    var ipProtocol: UInt8 = 17
    var destinationPort: UInt16 = 80
    var udpChecksum: UInt16 = 0
    var payload = [UInt8](repeating: 0x5a, count: 32)

    /// A VXLAN packet between underlay IPs, as a peer's VTEP sends it, carrying `inner`.
    static func vxlan(_ inner: Frame, from source: IPv4Address, to destination: IPv4Address, vni: UInt32 = 1) -> Frame {
        let header: [UInt8] = [0x08, 0, 0, 0, UInt8(vni >> 16 & 0xff), UInt8(vni >> 8 & 0xff), UInt8(vni & 0xff), 0]
        return Frame(destinationMAC: MACAddress(bytes: [0, 0, 0, 0, 0, 0])!, source: source, destination: destination,
                     destinationPort: 8472, payload: header + inner.bytes)
    }

    var bytes: [UInt8] {
        var frame = destinationMAC.bytes + sourceMAC.bytes + [UInt8(etherType >> 8), UInt8(etherType & 0xff)]
        guard etherType == 0x0800 else { return frame + payload }
        let udp: [UInt8] = ipProtocol != 17 ? [] : [0x30, 0x39, UInt8(destinationPort >> 8), UInt8(destinationPort & 0xff),
                                                    UInt8((8 + payload.count) >> 8), UInt8((8 + payload.count) & 0xff),
                                                    UInt8(udpChecksum >> 8), UInt8(udpChecksum & 0xff)]
        let totalLength = 20 + udp.count + payload.count
        var header: [UInt8] = [0x45, 0, UInt8(totalLength >> 8), UInt8(totalLength & 0xff), 0x12, 0x34, 0x40, 0, ttl, ipProtocol, 0, 0]
        header += source.octets + destination.octets
        let checksum = Frame.checksum(header)
        header[10] = UInt8(checksum >> 8)
        header[11] = UInt8(checksum & 0xff)
        frame += header + udp + payload
        return frame
    }

    static func checksum(_ header: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        for index in stride(from: 0, to: header.count, by: 2) {
            sum += UInt32(header[index]) << 8 | UInt32(header[index + 1])
        }
        while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
        return ~UInt16(sum)
    }
}

/// Views into a frame a program returned.
extension Array where Element == UInt8 {
    var destinationMAC: MACAddress { MACAddress(bytes: Array(self[0..<6]))! }
    var sourceMAC: MACAddress { MACAddress(bytes: Array(self[6..<12]))! }
    var ttl: UInt8 { self[14 + 8] }
    var ipv4Header: [UInt8] { Array(self[14..<34]) }
    /// True when the IPv4 header's checksum verifies (sums to zero).
    var ipv4ChecksumIsValid: Bool { Frame.checksum(ipv4Header) == 0 }
}
