import WeftSystem
import CLibBPF
import CWeftBPF
import Foundation
import WeftCore

/// The per-CPU outcome counters (`weft_counters`), one block of slots per hook, summed over CPUs.
public struct CounterMap {
    public static let name = "weft_counters"
    private let handle: MapDescriptor
    public var descriptor: Int32 { handle.value }

    public init(descriptor: Int32, owned: Bool = false) {
        handle = MapDescriptor(descriptor, owned: owned)
    }

    public struct Totals: Sendable, Equatable {
        public var packets: UInt64
        public var bytes: UInt64

        public init(packets: UInt64 = 0, bytes: UInt64 = 0) {
            self.packets = packets
            self.bytes = bytes
        }
    }

    /// Every hook's count of every outcome.
    public func byHook() throws(SystemCallError) -> [DataplaneHook: [DataplaneCounter: Totals]] {
        let cpus = Int(libbpf_num_possible_cpus())
        guard cpus > 0 else { throw SystemCallError("count possible CPUs for", Self.name, errno: Int32(-cpus)) }
        var result: [DataplaneHook: [DataplaneCounter: Totals]] = [:]
        var values = [weft_counter_value](repeating: weft_counter_value(), count: cpus)
        for hook in DataplaneHook.allCases {
            for counter in DataplaneCounter.allCases {
                var key = hook.index * WEFT_CTR_COUNT.rawValue + counter.index
                let status = bpf_map_lookup_elem(descriptor, &key, &values)
                guard status == 0 else { throw SystemCallError("read counter \(counter) of \(hook) from", Self.name, errno: status) }
                result[hook, default: [:]][counter] = Totals(packets: values.reduce(0) { $0 + $1.packets }, bytes: values.reduce(0) { $0 + $1.bytes })
            }
        }
        return result
    }

    /// Each outcome summed over the hooks.
    public func totals() throws(SystemCallError) -> [DataplaneCounter: Totals] {
        var result: [DataplaneCounter: Totals] = [:]
        for (_, counters) in try byHook() {
            for (counter, value) in counters {
                result[counter, default: Totals()].packets += value.packets
                result[counter, default: Totals()].bytes += value.bytes
            }
        }
        return result
    }
}
