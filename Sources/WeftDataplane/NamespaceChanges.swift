import CNetlink
import WeftNetlink

/// What wakes the supervisor when the host network changes under the dataplane.
public protocol NamespaceChanges {
    /// Blocks until something changed (true), `wake` became readable or the time passed (false).
    func wait(timeoutMilliseconds: Int32, wake: Int32) throws -> Bool
}

/// Link, address, route, neighbour and TC changes in this network namespace, from netlink.
public struct NetlinkNamespaceChanges: NamespaceChanges {
    private let socket: NetlinkSocket

    public init() throws {
        let groups = [RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV4_ROUTE, RTNLGRP_NEIGH, RTNLGRP_TC].map { UInt32($0.rawValue) }
        socket = try NetlinkSocket(groups: groups)
    }

    public func wait(timeoutMilliseconds: Int32, wake: Int32) throws -> Bool {
        let (count, overrun) = try socket.waitForChanges(timeoutMilliseconds: timeoutMilliseconds, wake: wake)
        // Overrun: the kernel dropped notifications, so anything may have changed.
        return count > 0 || overrun
    }
}
