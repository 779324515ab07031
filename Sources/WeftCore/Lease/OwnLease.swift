/// What a node makes of its own lease as read back from the store (on every renewal, every
/// watch event for its key and every periodic check): the store is shared, so another
/// writer, a restore from a snapshot or an operator's mistake can change it at any time.
public enum OwnLeaseVerdict: Sendable, Equatable {
    /// The store holds what we advertise.
    case intact
    /// The key is gone: re-create it at once with the same subnet, before another node is
    /// handed that subnet.
    case missing
    /// Another writer replaced it with this: write ours back, and say what was there.
    case overwritten(LeaseAttributes)

    public static func judge(ours: LeaseAttributes, stored: LeaseAttributes?) -> OwnLeaseVerdict {
        guard let stored else { return .missing }
        return stored == ours ? .intact : .overwritten(stored)
    }
}

/// The store's history as this node has seen it: the highest revision it has read. etcd's
/// revisions only grow, so a store whose current revision is lower than one seen before was
/// restored from a snapshot or wiped and recreated: whatever the node watched from is gone,
/// and it must list again. Watch events arrive behind the store's current revision, so an
/// old event says nothing; only a current revision can show the store went back.
public struct StoreHistory: Sendable, Equatable {
    public private(set) var highestRevision: Int64

    public init(revision: Int64 = 0) {
        highestRevision = revision
    }

    /// Takes in the revision of a watch event.
    public mutating func observe(event revision: Int64) {
        highestRevision = max(highestRevision, revision)
    }

    /// Takes in the store's current revision (a read's header); true when it is lower than
    /// one seen before: the store went back in time.
    public mutating func observe(current revision: Int64) -> Bool {
        if revision < highestRevision { return true }
        highestRevision = revision
        return false
    }

    /// Starts over at `revision`, after listing a store that went back in time.
    public mutating func restart(at revision: Int64) {
        highestRevision = revision
    }
}

extension LeaseAttributes {
    /// "PublicIP 198.18.0.9, backend vxlan, VtepMAC 0a:..": what a log line names.
    public var summary: String {
        var parts = ["PublicIP \(publicIP)", "backend \(backendType)"]
        if let vxlan { parts.append("VNI \(vxlan.vni), VtepMAC \(vxlan.vtepMAC)") }
        return parts.joined(separator: ", ")
    }
}
