import CWeftBPF

/// What happened to a packet, as the programs count it: an `enum weft_counter` slot of the
/// shared header, named and classified by the header's own tables (`weft_counter_name`,
/// `weft_counter_outcome`), so the Swift side types neither the numbers nor the names again.
public struct DataplaneCounter: Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// Forwarded by the program, left to the kernel, or dropped.
    public enum Outcome: String, Sendable {
        case forwarded, passed, dropped
    }

    /// The slot in `weft_counters`, within a hook's block.
    public let index: UInt32

    init(_ counter: weft_counter) {
        index = counter.rawValue
    }

    public init?(index: UInt32) {
        guard index < WEFT_CTR_COUNT.rawValue else { return nil }
        self.index = index
    }

    public static let encapsulated = DataplaneCounter(WEFT_CTR_ENCAPSULATED)
    public static let routedDirect = DataplaneCounter(WEFT_CTR_ROUTED_DIRECT)
    public static let deliveredLocal = DataplaneCounter(WEFT_CTR_DELIVERED_LOCAL)
    public static let encapsulatedFromStack = DataplaneCounter(WEFT_CTR_ENCAPSULATED_FROM_STACK)
    public static let passedNotIPv4 = DataplaneCounter(WEFT_CTR_PASSED_NOT_IPV4)
    public static let passedTTLExpiring = DataplaneCounter(WEFT_CTR_PASSED_TTL_EXPIRING)
    public static let passedNoRoute = DataplaneCounter(WEFT_CTR_PASSED_NO_ROUTE)
    public static let passedTooBig = DataplaneCounter(WEFT_CTR_PASSED_TOO_BIG)
    public static let passedSlowPath = DataplaneCounter(WEFT_CTR_PASSED_SLOW_PATH)
    public static let passedHost = DataplaneCounter(WEFT_CTR_PASSED_HOST)
    public static let passedUnverifiedHop = DataplaneCounter(WEFT_CTR_PASSED_UNVERIFIED_HOP)
    public static let passedTooBigDF = DataplaneCounter(WEFT_CTR_PASSED_TOO_BIG_DF)
    public static let droppedBadVNI = DataplaneCounter(WEFT_CTR_DROP_BAD_VNI)
    public static let droppedUnknownPeer = DataplaneCounter(WEFT_CTR_DROP_UNKNOWN_PEER)
    public static let droppedSpoofedSource = DataplaneCounter(WEFT_CTR_DROP_SPOOFED_SOURCE)
    public static let droppedMalformed = DataplaneCounter(WEFT_CTR_DROP_MALFORMED)
    public static let droppedNoPeer = DataplaneCounter(WEFT_CTR_DROP_NO_PEER)
    public static let droppedPodSpoofedSource = DataplaneCounter(WEFT_CTR_DROP_POD_SPOOFED)
    public static let droppedUntrustedUnderlay = DataplaneCounter(WEFT_CTR_DROP_UNDERLAY_UNTRUSTED)
    public static let droppedUnderlayWrongHop = DataplaneCounter(WEFT_CTR_DROP_UNDERLAY_WRONG_HOP)
    public static let passedVLANTagged = DataplaneCounter(WEFT_CTR_PASSED_VLAN_TAGGED)
    public static let droppedOverlayTransit = DataplaneCounter(WEFT_CTR_DROP_OVERLAY_TRANSIT)
    public static let droppedPodARPSpoofed = DataplaneCounter(WEFT_CTR_DROP_POD_ARP_SPOOFED)
    public static let droppedOtherHost = DataplaneCounter(WEFT_CTR_DROP_OTHER_HOST)
    public static let passedARPAsProbe = DataplaneCounter(WEFT_CTR_PASSED_ARP_AS_PROBE)

    /// Every slot the header declares, in order.
    public static var allCases: [DataplaneCounter] {
        (0..<WEFT_CTR_COUNT.rawValue).map { DataplaneCounter(weft_counter(rawValue: $0)) }
    }

    /// The name `weft maps counters`, `weft monitor` and the metrics use, from the header's
    /// table; a slot the table lacks is named by its number, and a test fails on it.
    public var description: String {
        weft_counter_name(index).map { String(cString: $0) } ?? "counter_\(index)"
    }

    /// The reason alone, as the metrics label it: the name without "dropped_" or "passed_".
    public var reason: String {
        for prefix in ["dropped_", "passed_"] where description.hasPrefix(prefix) { return String(description.dropFirst(prefix.count)) }
        return description
    }

    /// Nil only for a slot the header's table lacks (a test fails on it).
    public var outcome: Outcome? {
        switch weft_counter_outcome(index) {
        case WEFT_OUTCOME_FORWARDED: .forwarded
        case WEFT_OUTCOME_PASSED: .passed
        case WEFT_OUTCOME_DROPPED: .dropped
        default: nil
        }
    }
}

/// Where a program runs (`enum weft_hook`): counters are kept, and events named, per hook.
public struct DataplaneHook: Hashable, Sendable, CaseIterable, CustomStringConvertible {
    public let index: UInt32

    public init?(index: UInt32) {
        guard index < WEFT_HOOK_COUNT.rawValue else { return nil }
        self.index = index
    }

    public static var allCases: [DataplaneHook] { (0..<WEFT_HOOK_COUNT.rawValue).compactMap { DataplaneHook(index: $0) } }

    public var description: String { weft_hook_name(index).map { String(cString: $0) } ?? "hook_\(index)" }

    /// "egress" for traffic leaving pods or entering the tunnel, "ingress" for what arrives.
    public var direction: String { weft_hook_is_egress(index) != 0 ? "egress" : "ingress" }
}
