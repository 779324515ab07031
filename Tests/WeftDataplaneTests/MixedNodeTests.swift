import Foundation
import Testing
import WeftTestSupport

/// The BPF dataplane's own VXLAN (encapsulated in from_pod, decapsulated in from_underlay or by
/// the vxlan device) against another kind of node, and the properties a transport relies on:
/// every byte, in order, at full size.
@Suite("BPF VXLAN beside other nodes, in full and in order", .serialized, .enabled(if: isRoot, "needs root for namespaces and BPF"))
struct MixedNodeTests {
    enum Peer: String, CaseIterable, CustomTestStringConvertible {
        case weftKernel = "a Weft kernel-dataplane node"
        case flannelKernel = "a node programmed as stock flanneld programs it (flannel.1)"
        var testDescription: String { rawValue }
    }

    @Test("TCP and UDP both ways, DF pings at the full pod MTU both ways, and 1 GiB of TCP each way, checksummed", arguments: Peer.allCases)
    func aBPFNodeAndAnother(_ peer: Peer) throws {
        let lab = try TwoNodes(backend: .vxlan)
        try lab.startBPF(1)
        switch peer {
        case .weftKernel: try lab.startKernel(2)
        case .flannelKernel: try lab.startFlannelKernelNode(2)
        }
        try expectPodsReachEachOther(lab)
        for (from, to) in [(1, 2), (2, 1)] {
            // 1450 - 28: the largest ICMP payload a pod sends unfragmented.
            let full = try lab.namespaces.exec(lab.pod(from), ["ping", "-c", "3", "-i", "0.2", "-W", "2", "-M", "do", "-s", "1422", lab.podIP(to)])
            #expect(full.succeeded, "pod \(from) -> pod \(to), 1450-byte DF pings: \(full.stdout)\(full.stderr)")
            let datagrams = try PodTraffic.numberedUDP(from: lab.pod(from), to: lab.pod(to), address: lab.podIP(to))
            #expect(datagrams.received == datagrams.sent && datagrams.inOrder && datagrams.damaged == 0, "pod \(from) -> pod \(to): \(datagrams)")
            let (transfer, _) = try PodTraffic.checksummedTCP(from: lab.pod(from), to: lab.pod(to), address: lab.podIP(to))
            #expect(transfer.intact, "pod \(from) -> pod \(to): sent \(transfer.sent), received \(transfer.received)")
            #expect(transfer.sent.hasPrefix("1073741824 "))
        }
        let counters = try lab.counters(1)
        #expect(counters["encapsulated"]! > 1000, "node 1 encapsulated in from_pod: \(counters)")
        #expect(counters["delivered_local"]! > 1000, "and delivered into its pod: \(counters)")
        #expect(counters["dropped_spoofed_source"] == 0 && counters["dropped_unknown_peer"] == 0, "\(counters)")
    }

    /// Sender and receiver share CPU 0, so that only the path could reorder (see
    /// `PodTraffic.checksummedTCP`); the kernel dataplane is the reference.
    @Test("100-byte segments sent at once between 64 KiB writes arrive in order, and a mix of small and large datagrams too", arguments: ["bpf", "kernel"])
    func orderIsKeptUnderAMixOfSizes(dataplane: String) throws {
        let lab = try TwoNodes(backend: .vxlan)
        if dataplane == "bpf" { try lab.startBPF(1); try lab.startBPF(2) } else { try lab.startKernel(1); try lab.startKernel(2) }
        #expect(try lab.ping(from: 1, to: 2))
        let (transfer, reorderings) = try PodTraffic.checksummedTCP(from: lab.pod(1), to: lab.pod(2), address: lab.podIP(2), mebibytes: 256, mixed: true, cpu: 0)
        #expect(transfer.intact, "sent \(transfer.sent), received \(transfer.received)")
        #expect(reorderings == 0, "reorderings pod 1's TCP detected: \(reorderings)")
        let datagrams = try PodTraffic.numberedUDP(from: lab.pod(1), to: lab.pod(2), address: lab.podIP(2), count: 6000)
        #expect(datagrams.received == datagrams.sent && datagrams.inOrder && datagrams.damaged == 0, "\(datagrams)")
        if dataplane == "bpf" {
            let counters = try lab.counters(2)
            #expect(counters["delivered_local"]! > 6000, "the datagrams took the programs: \(counters)")
        }
    }
}
