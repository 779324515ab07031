import CLibBPF
import CWeftBPF
import Foundation
import WeftSystem

/// Reads the `weft_events` ring buffer: each `poll` returns the records that arrived.
public final class EventReader {
    public static let name = "weft_events"

    /// What the ring buffer's callback fills, reached through its context pointer.
    private final class Inbox {
        var events: [DataplaneEvent] = []
        var undecodable = 0
    }

    private let handle: MapDescriptor
    private let inbox = Inbox()
    private let ring: OpaquePointer

    public init(descriptor: Int32, owned: Bool = false) throws(SystemCallError) {
        handle = MapDescriptor(descriptor, owned: owned)
        let context = Unmanaged.passUnretained(inbox).toOpaque()
        guard let ring = ring_buffer__new(descriptor, { context, data, size in
            guard let context, let data else { return 0 }
            let inbox = Unmanaged<Inbox>.fromOpaque(context).takeUnretainedValue()
            if let event = DataplaneEvent(bytes: UnsafeRawBufferPointer(start: data, count: size)) {
                inbox.events.append(event)
            } else {
                inbox.undecodable += 1
            }
            return 0
        }, context, nil) else {
            throw SystemCallError("read the ring buffer", Self.name, errno: errno)
        }
        self.ring = ring
    }

    deinit { ring_buffer__free(ring) }

    /// Records it could not decode (a newer program's, say).
    public var undecodable: Int { inbox.undecodable }

    /// Waits up to `timeoutMilliseconds` for records and returns those that came.
    public func poll(timeoutMilliseconds: Int32) throws(SystemCallError) -> [DataplaneEvent] {
        let result = ring_buffer__poll(ring, timeoutMilliseconds)
        if result < 0 && result != -EINTR { throw SystemCallError("poll the ring buffer", Self.name, errno: result) }
        defer { inbox.events.removeAll(keepingCapacity: true) }
        return inbox.events
    }
}

/// `weft_monitor`: how many monitors want every decision traced. The programs trace while
/// it is above zero.
public struct MonitorSettingsMap {
    public static let name = "weft_monitor"
    private let map: BPFMap<UInt32, weft_monitor_settings>

    public init(descriptor: Int32, owned: Bool = false) {
        map = BPFMap(descriptor: descriptor, name: Self.name, owned: owned)
    }

    public func tracers() throws(SystemCallError) -> UInt32 {
        try map.lookup(0, initial: weft_monitor_settings())?.trace ?? 0
    }

    public func setTracers(_ count: UInt32) throws(SystemCallError) {
        try map.update(0, weft_monitor_settings(trace: count))
    }
}

/// `weft_event_budget`: per CPU, the drop events the rate limit held back.
public struct EventBudgetMap {
    public static let name = "weft_event_budget"
    private let handle: MapDescriptor

    public init(descriptor: Int32, owned: Bool = false) {
        handle = MapDescriptor(descriptor, owned: owned)
    }

    /// Drop events not sent because a CPU had sent WEFT_DROP_EVENTS_PER_SECOND that second.
    public func suppressed() throws(SystemCallError) -> UInt64 {
        let cpus = Int(libbpf_num_possible_cpus())
        guard cpus > 0 else { throw SystemCallError("count possible CPUs for", Self.name, errno: Int32(-cpus)) }
        var key: UInt32 = 0
        var values = [weft_event_budget](repeating: weft_event_budget(), count: cpus)
        let status = bpf_map_lookup_elem(handle.value, &key, &values)
        guard status == 0 else { throw SystemCallError("read", Self.name, errno: status) }
        return values.reduce(0) { $0 + $1.suppressed }
    }

    /// The limit per CPU and second, from the shared header.
    public static let dropEventsPerSecond = Int(WEFT_DROP_EVENTS_PER_SECOND)
}
