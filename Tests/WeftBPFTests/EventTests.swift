import CWeftBPF
import Glibc
import Testing
import WeftBPF
import WeftCore

/// The weft_events ring buffer under BPF_PROG_TEST_RUN: the fields of drop and trace
/// records, tracing switched at run time, and the drop events' rate limit.
@Suite(.enabled(if: isRoot, "loading BPF programs needs root"))
struct EventTests {
    let pins: PinDirectory

    init() throws {
        pins = try PinDirectory()
    }

    /// from_pod with one pod, 10.244.1.2 behind veth 7, and a VXLAN peer 10.244.2.0/24 at 198.18.0.2.
    private func fromPod() throws -> (LoadedProgram, EventReader, MonitorSettingsMap) {
        let program = try LoadedProgram("from_pod", pins: pins)
        try program.endpoints.set(IPv4Address("10.244.1.2")!, LocalEndpoint(hostInterfaceIndex: 7, podMAC: MACAddress("0a:58:0a:f4:01:02")!,
                                                                                hostMAC: MACAddress("ee:ee:ee:ee:ee:02")!))
        try program.peers.set(IPv4Prefix("10.244.2.0/24")!, PeerRoute(underlayIP: IPv4Address("198.18.0.2")!, vtepMAC: MACAddress("a6:00:00:00:00:02")!, mode: .vxlan))
        let reader = try EventReader(descriptor: try program.object.mapDescriptor(EventReader.name))
        let monitor = MonitorSettingsMap(descriptor: try program.object.mapDescriptor(MonitorSettingsMap.name))
        return (program, reader, monitor)
    }

    @Test("A drop is reported with its reason, hook, direction, addresses, ports and protocol")
    func dropRecord() throws {
        let (program, reader, _) = try fromPod()
        let spoofed = Frame(source: IPv4Address("10.244.1.99")!, destination: IPv4Address("10.244.2.3")!, destinationPort: 53)
        #expect(try program.run(spoofed.bytes, ingressInterface: 7).action == TCAction.shot)
        let events = try reader.poll(timeoutMilliseconds: 100)
        try #require(events.count == 1)
        let event = events[0]
        #expect(event.kind == .drop)
        #expect(event.counter == .droppedPodSpoofedSource)
        #expect(event.hook.description == "from_pod" && event.hook.direction == "egress")
        #expect(event.source == IPv4Address("10.244.1.99") && event.destination == IPv4Address("10.244.2.3"))
        #expect(event.sourcePort == 12345 && event.destinationPort == 53 && event.protocolName == "udp")
        #expect(event.length == UInt32(spoofed.bytes.count))
        #expect(event.line.hasPrefix("DROP dropped_pod_spoofed_source at from_pod (egress"), "\(event.line)")
        #expect(event.line.contains("10.244.1.99:12345 -> 10.244.2.3:53 udp"), "\(event.line)")
        #expect(event.json.serialized(keyOrder: DataplaneEvent.jsonKeyOrder).hasPrefix(#"{"type":"drop","reason":"dropped_pod_spoofed_source""#))
    }

    @Test("Decisions are reported only while tracing is on: encapsulated with its VNI and peer, left to the kernel with why")
    func traceRecords() throws {
        let (program, reader, monitor) = try fromPod()
        let toPeer = Frame(destination: IPv4Address("10.244.2.3")!).bytes
        _ = try program.run(toPeer, ingressInterface: 7)
        #expect(try reader.poll(timeoutMilliseconds: 50).isEmpty, "no trace while tracing is off")

        try monitor.setTracers(1)
        _ = try program.run(toPeer, ingressInterface: 7)
        _ = try program.run(Frame(destination: IPv4Address("192.0.2.1")!).bytes, ingressInterface: 7)
        let events = try reader.poll(timeoutMilliseconds: 100)
        try #require(events.count == 2)
        #expect(events[0].kind == .trace && events[0].counter == .encapsulated)
        #expect(events[0].vni == 1 && events[0].peer == IPv4Address("198.18.0.2"))
        #expect(events[0].line.contains("vni 1 peer 198.18.0.2"))
        #expect(events[1].counter == .passedNoRoute && events[1].destination == IPv4Address("192.0.2.1"))

        try monitor.setTracers(0)
        _ = try program.run(toPeer, ingressInterface: 7)
        #expect(try reader.poll(timeoutMilliseconds: 50).isEmpty)
    }

    @Test("A tracer whose lease ran out (a monitor killed, never counted off) traces nothing; the next monitor forgets it")
    func tracingEndsWithTheLease() throws {
        let (program, reader, monitor) = try fromPod()
        let settings = BPFMap<UInt32, weft_monitor_settings>(descriptor: try program.object.mapDescriptor(MonitorSettingsMap.name), name: MonitorSettingsMap.name)
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let past = UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec) - 1_000_000
        try settings.update(0, weft_monitor_settings(trace: 1, reserved: 0, trace_until_ns: past))
        let toPeer = Frame(destination: IPv4Address("10.244.2.3")!).bytes
        _ = try program.run(toPeer, ingressInterface: 7)
        #expect(try reader.poll(timeoutMilliseconds: 50).isEmpty, "the count says 1, the lease says it is over")
        #expect(try monitor.tracers() == 0)
        try monitor.startTracing()
        #expect(try monitor.tracers() == 1, "the dead monitor's count is gone")
        _ = try program.run(toPeer, ingressInterface: 7)
        #expect(try reader.poll(timeoutMilliseconds: 100).count == 1)
        try monitor.renewTracing()
        try monitor.stopTracing()
        _ = try program.run(toPeer, ingressInterface: 7)
        #expect(try reader.poll(timeoutMilliseconds: 50).isEmpty, "the last monitor's end ends it at once")
    }

    @Test("A flood of drops is rate-limited per CPU; every drop is still counted, and the rest of the reports are counted as suppressed")
    func dropFloodIsRateLimited() throws {
        let (program, reader, _) = try fromPod()
        let budget = EventBudgetMap(descriptor: try program.object.mapDescriptor(EventBudgetMap.name))
        let spoofed = Frame(source: IPv4Address("10.244.1.99")!).bytes
        let flood = 2500
        for _ in 0..<flood { _ = try program.run(spoofed, ingressInterface: 7) }
        var reported = 0
        while case let events = try reader.poll(timeoutMilliseconds: 50), !events.isEmpty { reported += events.count }
        let cpus = 2 * EventBudgetMap.dropEventsPerSecond   // the test's thread may move between the machine's CPUs
        #expect(reported <= cpus, "\(reported) reports")
        #expect(reported >= EventBudgetMap.dropEventsPerSecond, "\(reported) reports")
        #expect(try program.packets(.droppedPodSpoofedSource) == UInt64(flood))
        #expect(try budget.suppressed() == UInt64(flood - reported))
    }
}
