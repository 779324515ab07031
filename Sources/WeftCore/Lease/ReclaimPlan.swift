/// What a starting node does about its lease, in Flannel's order: keep the lease that
/// already carries its public IP; else take back the subnet it last wrote to its subnet
/// file, if still free; else allocate a new one. One step Flannel lacks: a node restarted
/// with another interface or public IP finds the lease of its previous run, by the address
/// it carries (still one of this host's) or, for the subnet its subnet file names, by its
/// VTEP MAC (its vxlan device's, which outlives the restart), and keeps that subnet (the lease is rewritten with the new
/// address) rather than taking a second one and seeing its old self as a peer.
public struct ReclaimPlan: Sendable, Equatable {
    public enum Action: Sendable, Equatable {
        /// Renew this existing lease of ours (its attributes, such as the VTEP MAC, carry over).
        case renew(Lease)
        /// Claim the subnet from our previous run's subnet file.
        case claimPrevious(IPv4Prefix)
        /// Nothing to reclaim: allocate a fresh subnet.
        case allocate
    }

    public let action: Action
    /// Leases with our public IP that no longer fit the config (resized or moved network):
    /// delete them before acquiring, as Flannel does.
    public let staleLeases: [IPv4Prefix]

    /// - Parameters:
    ///   - hostAddresses: every IPv4 address of this host, on any interface.
    ///   - vtepMAC: the MAC of this host's vxlan device, if it has one.
    public static func make(publicIP: IPv4Address, previousSubnet: IPv4Prefix?, leases: [Lease], config: NetworkConfig,
                            hostAddresses: Set<IPv4Address> = [], vtepMAC: MACAddress? = nil) -> ReclaimPlan {
        let ours = leases.filter { $0.attributes.publicIP == publicIP }
        let stale = ours.filter { !config.canAllocate($0.subnet) }.map(\.subnet)
        if let current = ours.first(where: { config.canAllocate($0.subnet) }) {
            return ReclaimPlan(action: .renew(current), staleLeases: stale)
        }
        // A MAC alone proves nothing (cloned machines share them); with the subnet this
        // host's own subnet file names, it does.
        let moved = leases.filter { lease in
            let previousRun = lease.subnet == previousSubnet && vtepMAC != nil && lease.attributes.vxlan?.vtepMAC == vtepMAC
            return (hostAddresses.contains(lease.attributes.publicIP) || previousRun) && config.canAllocate(lease.subnet)
        }
        if let previous = moved.first(where: { $0.subnet == previousSubnet }) ?? moved.first {
            return ReclaimPlan(action: .renew(previous), staleLeases: stale)
        }
        let others = leases.filter { !stale.contains($0.subnet) }
        if let previous = previousSubnet, config.canAllocate(previous),
           !others.contains(where: { $0.subnet.overlaps(previous) }) {
            return ReclaimPlan(action: .claimPrevious(previous), staleLeases: stale)
        }
        return ReclaimPlan(action: .allocate, staleLeases: stale)
    }
}
