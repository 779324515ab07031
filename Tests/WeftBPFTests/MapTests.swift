import WeftSystem
import Foundation
import Testing
import WeftBPF
import WeftCore

@Suite(.enabled(if: isRoot, "loading BPF programs needs root"))
struct MapTests {
    let pins: PinDirectory

    // A failure here fails each test with the error, where `try!` would crash the runner.
    init() throws {
        pins = try PinDirectory()
    }

    @Test func mapsArePinnedByNameAndSharedByEveryProgram() throws {
        let fromPod = try LoadedProgram("from_pod", pins: pins)
        let route = PeerRoute(underlayIP: IPv4Address("198.18.0.2")!, vtepMAC: MACAddress("a6:00:00:00:00:02")!, mode: .vxlan)
        try fromPod.peers.set(IPv4Prefix("10.244.2.0/24")!, route)
        for name in [PeerMap.name, EndpointMap.name, TunnelMap.name, CounterMap.name] {
            #expect(FileManager.default.fileExists(atPath: "\(pins.path)/\(name)"), "\(name) pinned")
        }
        let fromOverlay = try LoadedProgram("from_overlay", pins: pins)
        #expect(try fromOverlay.peers.entries() == [IPv4Prefix("10.244.2.0/24")!: route])
        #expect(try fromPod.peers.remove(IPv4Prefix("10.244.2.0/24")!))
        #expect(try fromOverlay.peers.entries().isEmpty)
        #expect(try fromPod.peers.remove(IPv4Prefix("10.244.2.0/24")!) == false)
    }

    @Test("Pins deleted under a running program come back under their full names, the ones longer than the kernel's 15 characters among them, and hold the same maps")
    func restoredPinsKeepTheirFullNames() throws {
        let program = try LoadedProgram("from_underlay", pins: pins)
        try program.peers.set(IPv4Prefix("10.244.2.0/24")!, PeerRoute(underlayIP: IPv4Address("198.18.0.2")!, vtepMAC: .zero, mode: .direct))
        for pin in try FileManager.default.contentsOfDirectory(atPath: pins.path) { unlink("\(pins.path)/\(pin)") }
        let restored = try PinnedMaps.restore(fromProgram: try ProgramPin.id(of: try program.object.programDescriptor("from_underlay")), into: pins.path)
        #expect(restored == 8)
        let listed = Set(try FileManager.default.contentsOfDirectory(atPath: pins.path).filter { $0.hasPrefix("weft_") })
        #expect(listed == Set(PinnedMaps.allNames), "\(listed.sorted())")
        #expect(try PinnedMaps(directory: pins.path).peers.entries().keys.contains(IPv4Prefix("10.244.2.0/24")!), "the same peer map")
    }

    @Test("A full endpoint map is named as full, with its size, not as the kernel's E2BIG")
    func aFullMapSaysSo() throws {
        let program = try LoadedProgram("from_pod", pins: pins)
        let endpoint = LocalEndpoint(hostInterfaceIndex: 7, podMAC: MACAddress("02:00:00:00:00:aa")!, hostMAC: MACAddress("02:00:00:00:00:fe")!)
        for index in 0..<UInt32(16384) { try program.endpoints.set(IPv4Address(0x0af4_0000 + index), endpoint) }
        let error = try #require(throws: SystemCallError.self) { try program.endpoints.set(IPv4Address("10.245.0.1")!, endpoint) }
        #expect(error.description.contains("weft_endpoints, which is full (all 16384 entries are taken"), "\(error)")
    }

    @Test func aMissingObjectFileSaysHowToBuildIt() {
        #expect {
            _ = try BPFObject(path: "/nonexistent/from_pod.bpf.o", pinDirectory: pins.path)
        } throws: { error in
            "\(error)".contains("open BPF object /nonexistent/from_pod.bpf.o") && "\(error)".contains("weft dataplane compile")
        }
    }

    @Test("Missing pins are named as missing pins, not as unbuilt programs")
    func missingPinsSayWhatHappened() {
        #expect {
            _ = try PinnedMaps(directory: pins.path + "/absent")
        } throws: { error in
            "\(error)".contains("the pins are gone") && !"\(error)".contains("compile")
        }
    }

    @Test func anUnknownGlobalIsNamed() throws {
        let object = try BPFObject(path: BuiltPrograms.path("from_pod"), pinDirectory: pins.path)
        #expect(throws: SystemCallError("set global weft_nonsense in", BuiltPrograms.path("from_pod"), errno: ENOENT)) {
            try object.setGlobal("weft_nonsense", UInt32(1))
        }
    }
}
