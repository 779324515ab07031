import Foundation
import Glibc
import Testing
import WeftTestSupport

/// The BPF dataplane for real: two nodes in network namespaces, programs attached to real
/// veth, vxlan and bridge devices, traffic between real pods.
@Suite("BPF dataplane end to end", .enabled(if: isRoot, "needs root for namespaces and BPF"))
struct BPFEndToEndTests {
    @Test("VXLAN: ping and TCP both ways, through the programs")
    func vxlanBothWays() throws {
        let lab = try TwoNodes(backend: .vxlan)
        try lab.startBPF(1)
        try lab.startBPF(2)
        try expectPodsReachEachOther(lab)
        for node in [1, 2] {
            let counters = try lab.counters(node)
            // Pings and 20 MiB each way (in GSO segments of up to 64 KiB), none dropped.
            #expect(counters["encapsulated"]! > 100, "node \(node): \(counters)")
            #expect(counters["delivered_local"]! > 100, "node \(node): \(counters)")
            #expect(counters["routed_direct"] == 0)
            #expect(counters["dropped_unknown_peer"] == 0 && counters["dropped_spoofed_source"] == 0)
        }
    }

    @Test("VXLAN: a peer on the underlay's link gets a managed neighbour entry, so its MAC is known for the previous-hop check before its first packet; teardown removes it")
    func vxlanPeersOnTheLinkAreKeptResolved() throws {
        let lab = try TwoNodes(backend: .vxlan)
        try lab.startBPF(1)
        let neighbours = try lab.namespaces.must(lab.node(1), ["ip", "neigh", "show", lab.underlayIP(2)])
        #expect(neighbours.contains("managed") || neighbours.contains("extern_learn"), "\(neighbours)")
        let down = try lab.weft(1, ["dataplane", "down", "--pin-dir", lab.pinDirectory(1)])
        #expect(down.succeeded, "\(down.stderr)")
        let after = try lab.namespaces.must(lab.node(1), ["ip", "neigh", "show", lab.underlayIP(2)])
        #expect(!after.contains("managed") && !after.contains("extern_learn"), "\(after)")
    }

    @Test("VXLAN: 1 GiB of TCP through the encapsulation in from_pod (GSO aggregates among it) arrives intact, by SHA-256")
    func aGibibyteArrivesIntact() throws {
        let lab = try TwoNodes(backend: .vxlan)
        try lab.startBPF(1)
        try lab.startBPF(2)
        let (transfer, _) = try PodTraffic.checksummedTCP(from: lab.pod(1), to: lab.pod(2), address: lab.podIP(2))
        #expect(transfer.intact, "sent \(transfer.sent), received \(transfer.received)")
        #expect(transfer.sent.hasPrefix("1073741824 "))
        let counters = try lab.counters(1)
        #expect(counters["encapsulated"]! > 1000, "the transfer took the program's encapsulation: \(counters)")
        let deviceSent = Int(try lab.namespaces.must(lab.node(1), ["cat", "/sys/class/net/weft.1/statistics/tx_packets"])
            .trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        #expect(deviceSent < 100, "and not the vxlan device (\(deviceSent) packets through weft.1)")
    }

    @Test("VXLAN: single packets, TCP request/response among them, are decapsulated on the underlay, past the vxlan device; bulk TCP's aggregates take the device")
    func singlePacketsSkipTheVXLANDevice() throws {
        let lab = try TwoNodes(backend: .vxlan)
        try lab.startBPF(1)
        try lab.startBPF(2)
        func receivedByDevice() throws -> Int {
            Int(try lab.namespaces.must(lab.node(2), ["cat", "/sys/class/net/weft.1/statistics/rx_packets"])
                .trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        }
        let before = try receivedByDevice()
        #expect(try lab.ping(from: 1, to: 2, count: 10))
        #expect(try receivedByDevice() == before, "the echo requests reached pod 2 without passing weft.1")
        // 500 request/response exchanges of 64 bytes over one connection.
        let server = try lab.namespaces.start(lab.pod(2), ["python3", "-c", """
            import socket
            s = socket.create_server(("\(lab.podIP(2))", 7003))
            c, _ = s.accept()
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while True:
                data = c.recv(64)
                if not data:
                    break
                c.sendall(data)
            """])
        defer { server.kill() }
        let exchanges = try lab.namespaces.exec(lab.pod(1), ["python3", "-c", """
            import socket, time
            for attempt in range(50):
                try:
                    c = socket.create_connection(("\(lab.podIP(2))", 7003))
                    break
                except OSError:
                    time.sleep(0.1)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            answered = 0
            for i in range(500):
                c.sendall(b"x" * 64)
                if len(c.recv(64)) > 0:
                    answered += 1
            print(answered)
            """])
        #expect(exchanges.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "500", "\(exchanges.stdout)\(exchanges.stderr)")
        let afterExchanges = try receivedByDevice()
        #expect(afterExchanges < before + 10, "the exchanges' segments skipped weft.1: \(afterExchanges - before) took it")
        try expectTransfer(lab, from: 1, to: 2)
        #expect(try receivedByDevice() > afterExchanges + 100, "bulk TCP's aggregates, and the segments behind them, take weft.1")
    }

    @Test("host-gw: ping and TCP both ways, routed and delivered by the programs")
    func hostGatewayBothWays() throws {
        let lab = try TwoNodes(backend: .hostGateway)
        try lab.startBPF(1)
        try lab.startBPF(2)
        try expectPodsReachEachOther(lab)
        for node in [1, 2] {
            let counters = try lab.counters(node)
            #expect(counters["routed_direct"]! > 100, "node \(node): \(counters)")
            #expect(counters["delivered_local"]! > 100, "node \(node): \(counters)")
            #expect(counters["encapsulated"] == 0)
        }
        // The kernel route stays as the safety net, as Flannel's host-gw installs it.
        let routes = try lab.namespaces.must(lab.node(1), ["ip", "route", "show", "10.244.2.0/24"])
        #expect(routes.contains("via 198.18.0.2 dev u1"))
    }

    @Test("VXLAN with DirectRouting: an on-link peer is routed, not encapsulated")
    func directRouting() throws {
        let lab = try TwoNodes(backend: .vxlan, directRouting: true)
        try lab.startBPF(1)
        try lab.startBPF(2)
        #expect(try lab.ping(from: 1, to: 2, count: 5))
        let peers = try lab.weft(1, ["maps", "peers", "--pin-dir", lab.pinDirectory(1)]).stdout
        #expect(peers.contains("10.244.2.0/24") && peers.contains("direct"))
        let counters = try lab.counters(1)
        #expect(counters["routed_direct"]! >= 5 && counters["encapsulated"] == 0, "\(counters)")
    }

    @Test("Interop: a BPF node and a stock Flannel kernel node (flannel.1) reach each other both ways")
    func interopWithFlannelKernelNode() throws {
        let lab = try TwoNodes(backend: .vxlan)
        try lab.startBPF(1)
        try lab.startFlannelKernelNode(2)
        try expectPodsReachEachOther(lab)
        let counters = try lab.counters(1)
        #expect(counters["encapsulated"]! > 100 && counters["delivered_local"]! > 100, "\(counters)")
    }

    @Test("Decap accepts only known peers, and only from inside their own subnets")
    func spoofedAndUnknownSendersAreDropped() throws {
        let lab = try TwoNodes(backend: .vxlan)
        try lab.startBPF(1)
        try lab.startFlannelKernelNode(2)
        // The Flannel node's pod claims an address outside its node's subnet.
        try lab.namespaces.must(lab.pod(2), ["ip", "addr", "add", "10.244.9.9/32", "dev", "eth0"])
        #expect(try !lab.ping(from: 2, to: 1, count: 2, source: "10.244.9.9"))
        #expect(try lab.counters(1)["dropped_spoofed_source"]! >= 2)
        #expect(try lab.ping(from: 2, to: 1, count: 1))

        // Node 1 now believes its peer lives at another underlay address: 198.18.0.2 is nobody.
        try lab.startBPF(1, peerPublicIP: "198.18.0.99")
        #expect(try !lab.ping(from: 2, to: 1, count: 2))
        #expect(try lab.counters(1)["dropped_unknown_peer"]! >= 2)
    }

    @Test("Host-originated traffic takes the cluster route through the vxlan device")
    func hostTrafficThroughTheOverlay() throws {
        let lab = try TwoNodes(backend: .vxlan)
        try lab.startBPF(1)
        try lab.startBPF(2)
        #expect(try lab.namespaces.exec(lab.node(1), ["ping", "-c", "3", "-i", "0.2", "-W", "2", lab.podIP(2)]).succeeded)
        #expect(try lab.counters(1)["encapsulated_from_stack"]! >= 3)
    }

    @Test("Restarting the loader during a ping flood loses nothing")
    func restartUnderFlood() throws {
        let lab = try TwoNodes(backend: .vxlan)
        try lab.startBPF(1)
        try lab.startBPF(2)
        let flood = try lab.namespaces.start(lab.pod(1), ["ping", "-q", "-c", "4000", "-i", "0.001", "-W", "2", lab.podIP(2)],
                                           output: .pipe)
        usleep(300_000)
        for _ in 0..<3 {
            try lab.startBPF(1)
            try lab.startBPF(2)
        }
        let (termination, bytes, _) = flood.collect()
        let output = String(decoding: bytes, as: UTF8.self)
        #expect(termination == .exited(0), "\(output)")
        #expect(output.contains("4000 packets transmitted, 4000 received"), "\(output)")
    }

    @Test("Teardown removes every filter, device, route and pin, and pods fall back to the kernel")
    func teardownLeavesNothing() throws {
        let lab = try TwoNodes(backend: .hostGateway)
        try lab.startBPF(1)
        #expect(try lab.weft(1, ["dataplane", "down", "--pin-dir", lab.pinDirectory(1)]).succeeded)
        let pins = try FileManager.default.contentsOfDirectory(atPath: lab.pinDirectory(1))
        #expect(pins.allSatisfy { $0.hasSuffix(".debug") }, "\(pins)")
        for device in ["u1", "vp1"] {
            let filters = try lab.namespaces.must(lab.node(1), ["tc", "filter", "show", "dev", device, "ingress"])
            #expect(!filters.contains("0x5746"), "\(device): \(filters)")
        }
        #expect(try lab.namespaces.must(lab.node(1), ["ip", "route", "show", "10.244.2.0/24"]).isEmpty)
        // A second teardown finds nothing and succeeds.
        #expect(try lab.weft(1, ["dataplane", "down", "--pin-dir", lab.pinDirectory(1)]).succeeded)

        let vxlan = try TwoNodes(backend: .vxlan)
        try vxlan.startBPF(1)
        #expect(try vxlan.weft(1, ["dataplane", "down", "--pin-dir", vxlan.pinDirectory(1)]).succeeded)
        #expect(try !vxlan.namespaces.exec(vxlan.node(1), ["ip", "link", "show", "weft.1"]).succeeded)
    }
}

/// Ping, then 20 MiB over TCP, each way between the two pods.
func expectPodsReachEachOther(_ lab: TwoNodes, sourceLocation: SourceLocation = #_sourceLocation) throws {
    #expect(try lab.ping(from: 1, to: 2), "pod 1 -> pod 2", sourceLocation: sourceLocation)
    #expect(try lab.ping(from: 2, to: 1), "pod 2 -> pod 1", sourceLocation: sourceLocation)
    try expectTransfer(lab, from: 1, to: 2, sourceLocation: sourceLocation)
    try expectTransfer(lab, from: 2, to: 1, sourceLocation: sourceLocation)
}

/// 20 MiB over TCP from one pod to the other arrive whole.
func expectTransfer(_ lab: TwoNodes, from: Int, to: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let delivered = try lab.tcpTransfer(from: from, to: to, megabytes: 20)
    #expect(delivered >= 20 << 20, "pod \(from) -> pod \(to): \(delivered) bytes delivered", sourceLocation: sourceLocation)
}
