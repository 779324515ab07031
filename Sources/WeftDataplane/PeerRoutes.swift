import WeftSystem
import Glibc
import WeftCore
import WeftNetlink

/// The kernel routes to peer subnets, reconciled: both dataplanes keep Flannel's routes for
/// the peers they reach directly (and the kernel one for its VXLAN peers too).
struct PeerRoutes {
    let netlink: NetlinkSocket
    /// The cluster network; only Weft's routes (`proto 87`) inside it are ours to change.
    let network: IPv4Prefix
    /// This node's subnet, which is the CNI bridge's, never ours.
    let ownSubnet: IPv4Prefix
    /// The interfaces our routes go out of.
    let interfaces: Set<Int32>

    /// Installs what is missing or different, removes routes to subnets no longer wanted.
    /// With `applied` (the routes of the last plan applied) only the difference is written;
    /// without, the kernel's routes are read and compared.
    func reconcile(desired: [IPv4Prefix: Route], applied: [IPv4Prefix: Route]? = nil, into report: inout ApplyReport) throws {
        let current = try applied.map { Array($0.values) } ?? netlink.routes().filter {
            $0.isWefts && interfaces.contains($0.interfaceIndex) && $0.gateway != nil && network.contains($0.destination) && $0.destination != ownSubnet
        }
        let diff = KeyedDiff(current: Dictionary(current.map { ($0.destination, $0) }, uniquingKeysWith: { first, _ in first }),
                             desired: desired)
        for (_, route) in diff.upserts { try netlink.replaceRoute(route) }
        let removed = Set(diff.removals)
        for route in current where removed.contains(route.destination) { try ignoringMissing { try netlink.deleteRoute(route) } }
        report.routesWritten = diff.upserts.count
        report.routesRemoved = diff.removals.count
    }
}

/// Runs a delete; an entry someone else removed first is not an error.
func ignoringMissing(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as SystemCallError where error.isNotFound {
        return
    }
}
