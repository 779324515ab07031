import CWeftBPF
import Testing
import Foundation
import WeftBPF
import WeftCore

/// The Swift side takes the counters and the peer modes from `bpf/include/weft_maps.h`;
/// these fail when the header gains something the Swift side or the name table lacks.
@Suite("The shared header and the Swift side agree")
struct SharedHeaderTests {
    @Test("Every counter slot the header declares has its own name")
    func everyCounterIsNamed() {
        let counters = DataplaneCounter.allCases
        // The tables end where the enum does: a slot past the last has neither name nor outcome.
        #expect(weft_counter_name(WEFT_CTR_COUNT.rawValue) == nil)
        #expect(weft_counter_outcome(WEFT_CTR_COUNT.rawValue) == WEFT_OUTCOME_UNKNOWN)
        #expect(DataplaneCounter(index: WEFT_CTR_COUNT.rawValue) == nil)
        for counter in counters {
            #expect(weft_counter_name(counter.index) != nil, "slot \(counter.index) has no name in weft_counter_name")
            #expect(counter.description.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "_" }, "\(counter.description)")
        }
        #expect(Set(counters.map(\.description)).count == counters.count, "names are distinct")
    }

    @Test("Every counter slot has a Swift name, and each Swift name one slot")
    func everyCounterHasASwiftName() {
        let named: [DataplaneCounter] = [.encapsulated, .routedDirect, .deliveredLocal, .encapsulatedFromStack,
                                         .passedNotIPv4, .passedTTLExpiring, .passedNoRoute, .passedTooBig, .passedSlowPath, .passedHost, .passedUnverifiedHop, .passedTooBigDF,
                                         .droppedBadVNI, .droppedUnknownPeer, .droppedSpoofedSource, .droppedMalformed, .droppedNoPeer,
                                         .droppedPodSpoofedSource, .droppedUntrustedUnderlay, .droppedUnderlayWrongHop,
                                         .passedVLANTagged, .droppedOverlayTransit, .droppedPodARPSpoofed, .droppedOtherHost, .passedARPAsProbe]
        #expect(Set(named) == Set(DataplaneCounter.allCases))
        #expect(Set(named).count == named.count)
    }

    @Test("Every counter slot says whether it forwards, passes or drops, and its name says the same")
    func everyCounterHasAnOutcome() {
        for counter in DataplaneCounter.allCases {
            let outcome = counter.outcome
            #expect(outcome != nil, "slot \(counter.index) has no outcome in weft_counter_outcome")
            switch outcome {
            case .dropped?: #expect(counter.description.hasPrefix("dropped_"), "\(counter)")
            case .passed?: #expect(counter.description.hasPrefix("passed_"), "\(counter)")
            case .forwarded?: #expect(!counter.description.hasPrefix("dropped_") && !counter.description.hasPrefix("passed_"), "\(counter)")
            case nil: break
            }
        }
    }

    @Test("Every hook has a name and a direction")
    func hooks() {
        #expect(DataplaneHook.allCases.map(\.description) == ["from_pod", "from_underlay", "from_overlay", "to_overlay"])
        #expect(DataplaneHook.allCases.map(\.direction) == ["egress", "ingress", "ingress", "egress"])
    }

    @Test("Peer modes are the header's numbers, both ways")
    func peerModes() {
        #expect(PeerRoute.Mode.vxlan.rawValue == UInt8(WEFT_MODE_VXLAN.rawValue))
        #expect(PeerRoute.Mode.direct.rawValue == UInt8(WEFT_MODE_DIRECT.rawValue))
        // Every Swift mode is one of the header's, and the header has no other.
        #expect(Set(PeerRoute.Mode.allCases.map { UInt32($0.rawValue) }) == [WEFT_MODE_VXLAN.rawValue, WEFT_MODE_DIRECT.rawValue])
    }

    @Test("Every program object declares exactly the globals Swift sets, each as wide as Swift writes it")
    func globalLayoutMatchesTheObjects() throws {
        let files = try TemporaryDirectory()
        let swift = Dictionary(uniqueKeysWithValues: LoadedProgram.globals.values.map { ($0.name, $0.bytes.count) })
        #expect(swift.count == 13)
        for program in ProgramName.allCases {
            let object = try BPFObject(path: BuiltPrograms.path(program.rawValue), pinDirectory: files.path)
            let declared = object.globals.filter { $0.key.hasPrefix("weft_") }
            #expect(declared == swift, "\(program.rawValue).bpf.o: declared \(declared.sorted { $0.key < $1.key }), Swift sets \(swift.sorted { $0.key < $1.key })")
        }
    }

    @Test("The programs are the entry files of bpf/, and each object holds its function")
    func programsAreTheEntryFiles() throws {
        let source = URL(fileURLWithPath: BuiltPrograms.directory).deletingLastPathComponent().path
        let entries = try FileManager.default.contentsOfDirectory(atPath: source).filter { $0.hasSuffix(".c") }.map { String($0.dropLast(2)) }
        #expect(Set(entries) == Set(ProgramName.allCases.map(\.rawValue)), "bpf/*.c against ProgramName")
        let files = try TemporaryDirectory()
        for program in ProgramName.allCases {
            let object = try BPFObject(path: BuiltPrograms.path(program.rawValue), pinDirectory: files.path)
            #expect(object.hasProgram(program.rawValue), "\(program.rawValue).bpf.o has no function \(program.rawValue)")
        }
    }
}
