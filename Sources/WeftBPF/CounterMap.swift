import WeftSystem
import CLibBPF
import CWeftBPF
import Foundation
import WeftCore

/// The per-CPU outcome counters (`weft_counters`), summed over CPUs.
public struct CounterMap {
    public static let name = "weft_counters"
    private let handle: MapDescriptor
    public var descriptor: Int32 { handle.value }

    public init(descriptor: Int32, owned: Bool = false) {
        handle = MapDescriptor(descriptor, owned: owned)
    }

    public func totals() throws(SystemCallError) -> [DataplaneCounter: (packets: UInt64, bytes: UInt64)] {
        let cpus = Int(libbpf_num_possible_cpus())
        guard cpus > 0 else { throw SystemCallError("count possible CPUs for", Self.name, errno: Int32(-cpus)) }
        var result: [DataplaneCounter: (packets: UInt64, bytes: UInt64)] = [:]
        for counter in DataplaneCounter.allCases {
            var key = counter.index
            var values = [weft_counter_value](repeating: weft_counter_value(), count: cpus)
            let status = bpf_map_lookup_elem(descriptor, &key, &values)
            guard status == 0 else { throw SystemCallError("read counter \(counter) from", Self.name, errno: status) }
            result[counter] = (values.reduce(0) { $0 + $1.packets }, values.reduce(0) { $0 + $1.bytes })
        }
        return result
    }
}
