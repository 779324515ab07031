import CLibBPF
import Glibc
import Testing
import WeftBPF
import WeftCore

/// A node upgraded in place: the new programs meet the last version's pins.
@Suite(.enabled(if: isRoot, "loading BPF programs needs root"))
struct UpgradeTests {
    let pins: PinDirectory

    init() throws {
        pins = try PinDirectory()
    }

    @Test("A counter map pinned with the last version's slots is replaced; the peers the last version pinned are kept")
    func changedCountersArePinnedAgain() throws {
        let old = try LoadedProgram("from_pod", pins: pins)
        try old.peers.set(IPv4Prefix("10.244.2.0/24")!, PeerRoute(underlayIP: IPv4Address("198.18.0.2")!, vtepMAC: MACAddress("a6:00:00:00:00:02")!, mode: .vxlan))
        // The last version's counters: 12 slots of one hook, as Weft 0.5.0 pinned them.
        unlink("\(pins.path)/\(CounterMap.name)")
        let legacy = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, CounterMap.name, 4, 16, 12, nil)
        try #require(legacy >= 0)
        defer { close(legacy) }
        try #require(bpf_obj_pin(legacy, "\(pins.path)/\(CounterMap.name)") == 0)

        let new = try LoadedProgram("from_pod", pins: pins)
        #expect(try new.peers.entries().count == 1, "state maps keep their pins and entries")
        try new.endpoints.set(IPv4Address("10.244.1.2")!, LocalEndpoint(hostInterfaceIndex: 7, podMAC: MACAddress("0a:58:0a:f4:01:02")!,
                                                                        hostMAC: MACAddress("ee:ee:ee:ee:ee:02")!))
        _ = try new.run(Frame(ttl: 1).bytes, ingressInterface: 7)
        #expect(try new.packets(.passedTTLExpiring) == 1, "the new programs count into a new map of the new size")
        let reopened = try PinnedMaps(directory: pins.path)
        #expect(try reopened.counters.totals()[.passedTTLExpiring]?.packets == 1, "the pin names the new map")
        _ = old
    }
}
