import CWeftBPF

/// What happened to a packet, as the programs count it: an `enum weft_counter` slot of the
/// shared header, named by the header's own table (`weft_counter_name`), so the Swift side
/// types neither the numbers nor the names again.
public struct DataplaneCounter: Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// The slot in `weft_counters`.
    public let index: UInt32

    init(_ counter: weft_counter) {
        index = counter.rawValue
    }

    public static let encapsulated = DataplaneCounter(WEFT_CTR_ENCAPSULATED)
    public static let routedDirect = DataplaneCounter(WEFT_CTR_ROUTED_DIRECT)
    public static let deliveredLocal = DataplaneCounter(WEFT_CTR_DELIVERED_LOCAL)
    public static let passedToStack = DataplaneCounter(WEFT_CTR_PASSED_TO_STACK)
    public static let droppedBadVNI = DataplaneCounter(WEFT_CTR_DROP_BAD_VNI)
    public static let droppedUnknownPeer = DataplaneCounter(WEFT_CTR_DROP_UNKNOWN_PEER)
    public static let droppedSpoofedSource = DataplaneCounter(WEFT_CTR_DROP_SPOOFED_SOURCE)
    public static let droppedMalformed = DataplaneCounter(WEFT_CTR_DROP_MALFORMED)
    public static let encapsulatedFromStack = DataplaneCounter(WEFT_CTR_ENCAPSULATED_FROM_STACK)
    public static let droppedNoPeer = DataplaneCounter(WEFT_CTR_DROP_NO_PEER)
    public static let droppedPodSpoofedSource = DataplaneCounter(WEFT_CTR_DROP_POD_SPOOFED)
    public static let droppedUntrustedUnderlay = DataplaneCounter(WEFT_CTR_DROP_UNDERLAY_UNTRUSTED)
    public static let droppedUnderlayWrongHop = DataplaneCounter(WEFT_CTR_DROP_UNDERLAY_WRONG_HOP)
    public static let passedUnverifiedHop = DataplaneCounter(WEFT_CTR_PASSED_UNVERIFIED_HOP)

    /// Every slot the header declares, in order.
    public static var allCases: [DataplaneCounter] {
        (0..<WEFT_CTR_COUNT.rawValue).map { DataplaneCounter(weft_counter(rawValue: $0)) }
    }

    /// The name `weft maps counters` and the metrics use, from the header's table; a slot
    /// the table lacks is named by its number, and a test fails on it.
    public var description: String {
        weft_counter_name(index).map { String(cString: $0) } ?? "counter_\(index)"
    }
}
