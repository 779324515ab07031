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

/// `weft_monitor`: how many monitors want every decision traced, and the lease they renew.
/// The programs trace while both hold, so tracing ends within the lease (3 s) of the last
/// monitor's end however it ends, and a killed monitor's count is forgotten by the next.
public struct MonitorSettingsMap {
    public static let name = "weft_monitor"
    public static let lease = Duration.nanoseconds(Int64(WEFT_TRACE_LEASE_NS))
    private let map: BPFMap<UInt32, weft_monitor_settings>

    public init(descriptor: Int32, owned: Bool = false) {
        map = BPFMap(descriptor: descriptor, name: Self.name, owned: owned)
    }

    /// The monitors tracing now: none once the lease has run out.
    public func tracers() throws(SystemCallError) -> UInt32 {
        let settings = try map.lookup(0, initial: weft_monitor_settings()) ?? weft_monitor_settings()
        return settings.trace_until_ns > Self.now() ? settings.trace : 0
    }

    /// Sets the count, with a fresh lease (none for 0).
    public func setTracers(_ count: UInt32) throws(SystemCallError) {
        try map.update(0, weft_monitor_settings(trace: count, reserved: 0, trace_until_ns: count == 0 ? 0 : Self.now() + WEFT_TRACE_LEASE_NS))
    }

    /// A monitor starts tracing; a count whose lease ran out belonged to monitors gone.
    public func startTracing() throws(SystemCallError) {
        try setTracers(try tracers() + 1)
    }

    /// A tracing monitor renews the lease (every second).
    public func renewTracing() throws(SystemCallError) {
        guard var settings = try map.lookup(0, initial: weft_monitor_settings()), settings.trace > 0 else { return }
        settings.trace_until_ns = max(settings.trace_until_ns, Self.now() + WEFT_TRACE_LEASE_NS)
        try map.update(0, settings)
    }

    /// A monitor stops tracing; the last one ends it at once.
    public func stopTracing() throws(SystemCallError) {
        let remaining = try tracers()
        try setTracers(remaining > 0 ? remaining - 1 : 0)
    }

    /// CLOCK_MONOTONIC in nanoseconds, the programs' bpf_ktime_get_ns.
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
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
