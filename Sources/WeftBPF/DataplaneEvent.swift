import CWeftBPF
import Foundation
import WeftCore

/// One record of the `weft_events` ring buffer (`struct weft_event`): a drop, or, while a
/// monitor traces, a decision. Decoded from the record's bytes; pure.
public struct DataplaneEvent: Sendable, Equatable {
    public enum Kind: String, Sendable { case drop, trace }

    public var kind: Kind
    public var hook: DataplaneHook
    /// The outcome: the drop's reason, or the decision.
    public var counter: DataplaneCounter
    public var timestampNanoseconds: UInt64
    public var interfaceIndex: UInt32
    public var length: UInt32
    public var ipProtocol: UInt8
    public var source: IPv4Address?
    public var destination: IPv4Address?
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    /// The VNI and the peer's underlay IP, where a tunnel or a peer was involved.
    public var vni: UInt32?
    public var peer: IPv4Address?

    public static let size = MemoryLayout<weft_event>.size

    /// Nil for a record too short or naming a type, hook or outcome the header does not.
    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size else { return nil }
        let record = bytes.loadUnaligned(as: weft_event.self)
        switch UInt32(record.type) {
        case WEFT_EVENT_DROP.rawValue: kind = .drop
        case WEFT_EVENT_TRACE.rawValue: kind = .trace
        default: return nil
        }
        guard let hook = DataplaneHook(index: UInt32(record.hook)), let counter = DataplaneCounter(index: record.reason) else { return nil }
        self.hook = hook
        self.counter = counter
        timestampNanoseconds = record.timestamp_ns
        interfaceIndex = record.ifindex
        length = record.length
        ipProtocol = record.protocol
        func address(_ value: UInt32) -> IPv4Address? { value == 0 ? nil : IPv4Address(UInt32(bigEndian: value)) }
        source = address(record.saddr)
        destination = address(record.daddr)
        sourcePort = UInt16(bigEndian: record.sport)
        destinationPort = UInt16(bigEndian: record.dport)
        vni = record.vni == 0 ? nil : record.vni
        peer = address(record.peer)
    }

    public var protocolName: String {
        switch ipProtocol {
        case 1: "icmp"
        case 6: "tcp"
        case 17: "udp"
        case 0: "-"
        default: "proto \(ipProtocol)"
        }
    }

    /// True when the packet's source or destination is `address`, or its peer is.
    public func involves(_ address: IPv4Address) -> Bool {
        source == address || destination == address || peer == address
    }

    /// One line, as `weft monitor` prints it: what, where, and the packet.
    public var line: String {
        func endpoint(_ address: IPv4Address?, _ port: UInt16) -> String {
            (address?.description ?? "?") + (port == 0 ? "" : ":\(port)")
        }
        var parts = [kind == .drop ? "DROP" : "TRACE", counter.description, "at \(hook) (\(hook.direction), ifindex \(interfaceIndex))"]
        if source != nil || destination != nil {
            parts.append("\(endpoint(source, sourcePort)) -> \(endpoint(destination, destinationPort)) \(protocolName)")
        }
        parts.append("\(length) bytes")
        if let vni { parts.append("vni \(vni)") }
        if let peer { parts.append("peer \(peer)") }
        return parts.joined(separator: " ")
    }

    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "type": .string(kind.rawValue), "reason": .string(counter.description), "outcome": .string(counter.outcome?.rawValue ?? "unknown"),
            "hook": .string(hook.description), "direction": .string(hook.direction), "ifindex": .integer(Int64(interfaceIndex)),
            "length": .integer(Int64(length)), "protocol": .string(protocolName), "timestampNs": .integer(Int64(timestampNanoseconds)),
        ]
        if let source { object["source"] = .string(source.description) }
        if let destination { object["destination"] = .string(destination.description) }
        if sourcePort != 0 { object["sourcePort"] = .integer(Int64(sourcePort)) }
        if destinationPort != 0 { object["destinationPort"] = .integer(Int64(destinationPort)) }
        if let vni { object["vni"] = .integer(Int64(vni)) }
        if let peer { object["peer"] = .string(peer.description) }
        return .object(object)
    }

    public static let jsonKeyOrder = ["type", "reason", "outcome", "hook", "direction", "ifindex", "source", "sourcePort", "destination",
                                      "destinationPort", "protocol", "length", "vni", "peer", "timestampNs"]
}
