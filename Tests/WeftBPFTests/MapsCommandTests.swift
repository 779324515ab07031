import Foundation
import Testing
import WeftBPF
import WeftCore

/// `weft maps` reads what a node's programs see, from the pins alone.
@Suite(.enabled(if: isRoot, "loading BPF programs needs root"))
struct MapsCommandTests {
    let pins: PinDirectory

    // A failure here fails each test with the error, where `try!` would crash the runner.
    init() throws {
        pins = try PinDirectory()
    }

    func json(_ arguments: [String]) throws -> Any {
        let result = try WeftProcess.run(arguments)
        try #require(result.status == 0, "\(result.stderr)")
        return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
    }

    @Test func peersEndpointsAndCountersAreShownAsTheKernelHoldsThem() throws {
        let program = try LoadedProgram("from_pod", pins: pins)
        try program.peers.set(IPv4Prefix("10.244.2.0/24")!, PeerRoute(underlayIP: IPv4Address("198.18.0.2")!, vtepMAC: MACAddress("a6:00:00:00:00:02")!, mode: .vxlan))
        try program.peers.set(IPv4Prefix("10.244.3.0/24")!, PeerRoute(underlayIP: IPv4Address("198.18.0.3")!, vtepMAC: MACAddress("a6:00:00:00:00:03")!, mode: .direct))
        // The sending pod (Frame's source), behind veth 7, where its packets arrive.
        try program.endpoints.set(IPv4Address("10.244.1.2")!, LocalEndpoint(hostInterfaceIndex: 7, podMAC: MACAddress("0a:58:0a:f4:01:05")!, hostMAC: MACAddress("ee:ee:ee:ee:ee:05")!))
        _ = try program.run(Frame().bytes, ingressInterface: 7)
        _ = try program.run(Frame(ttl: 1).bytes, ingressInterface: 7)

        let peers = try json(["maps", "peers", "--pin-dir", pins.path, "--json"]) as? [[String: String]]
        #expect(peers == [
            ["subnet": "10.244.2.0/24", "underlayIP": "198.18.0.2", "vtepMAC": "a6:00:00:00:00:02", "mode": "vxlan"],
            ["subnet": "10.244.3.0/24", "underlayIP": "198.18.0.3", "vtepMAC": "a6:00:00:00:00:03", "mode": "direct"],
        ])
        let endpoints = try json(["maps", "endpoints", "--pin-dir", pins.path, "--json"]) as? [[String: Any]]
        #expect(endpoints?.count == 1)
        #expect(endpoints?.first?["ip"] as? String == "10.244.1.2")
        #expect(endpoints?.first?["ifindex"] as? Int == 7)
        let totals = try json(["maps", "counters", "--pin-dir", pins.path, "--json"]) as? [String: [String: Int]]
        #expect(totals?["encapsulated"] == ["packets": 1, "bytes": Frame().bytes.count])
        let counters = try json(["maps", "counters", "--pin-dir", pins.path, "--json", "--by-hook"]) as? [String: [String: Any]]
        #expect(counters?["encapsulated"]?["packets"] as? Int == 1)
        #expect(counters?["encapsulated"]?["outcome"] as? String == "forwarded")
        #expect((counters?["encapsulated"]?["hooks"] as? [String: [String: Int]])?["from_pod"]?["packets"] == 1)
        #expect(counters?["passed_ttl_expiring"]?["packets"] as? Int == 1)
        #expect(counters?["passed_ttl_expiring"]?["outcome"] as? String == "passed")
        #expect(counters?["dropped_spoofed_source"]?["packets"] as? Int == 0)
        #expect(counters?["dropped_spoofed_source"]?["outcome"] as? String == "dropped")

        let table = try WeftProcess.run(["maps", "peers", "--pin-dir", pins.path]).stdout
        #expect(table.contains("10.244.3.0/24  198.18.0.3   a6:00:00:00:00:03  direct"))
    }

    @Test("weft maps lookup answers for a local pod, a peer subnet, a peer's host and an address outside the cluster; tunnels and usage list the maps")
    func lookupTunnelsAndUsage() throws {
        let program = try LoadedProgram("from_pod", pins: pins)
        try program.peers.set(IPv4Prefix("10.244.2.0/24")!, PeerRoute(underlayIP: IPv4Address("198.18.0.2")!, vtepMAC: MACAddress("a6:00:00:00:00:02")!, mode: .vxlan))
        try program.peers.set(IPv4Prefix("10.244.3.0/24")!, PeerRoute(underlayIP: IPv4Address("198.18.0.3")!, vtepMAC: MACAddress("a6:00:00:00:00:03")!, mode: .direct))
        try program.tunnels.set(IPv4Address("198.18.0.2")!, subnet: IPv4Prefix("10.244.2.0/24")!)
        try program.endpoints.set(IPv4Address("10.244.1.2")!, LocalEndpoint(hostInterfaceIndex: 7, podMAC: MACAddress("0a:58:0a:f4:01:05")!, hostMAC: MACAddress("ee:ee:ee:ee:ee:05")!))
        func lookup(_ address: String) throws -> [String: String] {
            try json(["maps", "lookup", address, "--pin-dir", pins.path, "--json"]) as? [String: String] ?? [:]
        }
        #expect(try lookup("10.244.1.2")["kind"] == "local-pod")
        #expect(try lookup("10.244.1.2")["entry"]?.contains("host ifindex 7") == true)
        #expect(try lookup("10.244.2.9")["kind"] == "vxlan-peer")
        #expect(try lookup("10.244.2.9")["path"]?.contains("encapsulated in VXLAN to 198.18.0.2") == true)
        #expect(try lookup("10.244.3.9")["kind"] == "direct-peer")
        #expect(try lookup("198.18.0.2")["kind"] == "peer-host")
        #expect(try lookup("192.0.2.1")["kind"] == "kernel")
        #expect(try lookup("192.0.2.1")["path"]?.contains("passed_no_route") == true)
        let bad = try WeftProcess.run(["maps", "lookup", "10.244.999.1", "--pin-dir", pins.path])
        #expect(bad.status != 0 && bad.stderr.contains("10.244.999.1: expected an IPv4 address"))

        let tunnels = try json(["maps", "tunnels", "--pin-dir", pins.path, "--json"]) as? [[String: String]]
        #expect(tunnels == [["underlayIP": "198.18.0.2", "subnet": "10.244.2.0/24"]])
        let usage = try json(["maps", "usage", "--pin-dir", pins.path, "--json"]) as? [[String: Any]] ?? []
        let peers = usage.first { $0["map"] as? String == "weft_peers" }
        #expect(peers?["entries"] as? Int == 2)
        #expect(peers?["capacity"] as? Int == 65536)
        #expect(!usage.contains { $0["map"] as? String == "weft_device_flows" }, "from_pod alone pins no flow map")
    }

    @Test("weft maps usage counts the TCP flows waiting on the vxlan device")
    func usageCountsDeviceFlows() throws {
        let program = try LoadedProgram("from_underlay", pins: pins)
        let peer = IPv4Address("198.18.0.2")!
        try program.peers.set(IPv4Prefix("10.244.2.0/24")!, PeerRoute(underlayIP: peer, vtepMAC: MACAddress("0a:58:00:00:00:02")!, mode: .vxlan))
        try program.tunnels.set(peer, subnet: IPv4Prefix("10.244.2.0/24")!)
        var segment = Frame(destinationMAC: LoadedProgram.ourVTEP, source: IPv4Address("10.244.2.7")!, destination: IPv4Address("10.244.1.5")!)
        segment.ipProtocol = 6
        for flow: UInt8 in 1...3 {
            segment.payload = [0x30, flow, 0x1f, 0x90] + Array(segment.payload.dropFirst(4))
            let aggregate = Frame.vxlan(segment, from: peer, to: IPv4Address("198.18.0.1")!)
            #expect(try program.run(aggregate.bytes, gsoSize: 1398).action == TCAction.ok)
        }
        let usage = try json(["maps", "usage", "--pin-dir", pins.path, "--json"]) as? [[String: Any]] ?? []
        let flows = usage.first { $0["map"] as? String == "weft_device_flows" }
        #expect(flows?["entries"] as? Int == 3, "\(usage)")
        #expect(flows?["capacity"] as? Int == 16384)
    }

    @Test func anEmptyPinDirectorySaysWhatIsMissing() throws {
        let result = try WeftProcess.run(["maps", "peers", "--pin-dir", pins.path])
        #expect(result.status != 0)
        #expect(result.stderr.contains("open pinned map \(pins.path)/weft_peers"))
        #expect(result.stderr.contains("is the Weft dataplane running on this node with this pin directory?"))
    }
}
