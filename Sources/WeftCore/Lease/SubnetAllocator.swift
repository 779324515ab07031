/// Picks a free subnet the way Flannel does: scan upwards from `SubnetMin`, collect up to
/// 100 subnets that overlap no existing lease, and choose one of them at random, so that
/// nodes starting together rarely race for the same subnet.
public enum SubnetAllocator {
    public static let candidateLimit = 100

    /// The first free subnets from `SubnetMin`, at most `limit` of them.
    public static func freeCandidates(in config: NetworkConfig, taken: [IPv4Prefix],
                                      limit: Int = candidateLimit) -> [IPv4Prefix] {
        var candidates: [IPv4Prefix] = []
        var subnet = IPv4Prefix(network: config.subnetMin, length: config.subnetLength)
        while let current = subnet, current.network <= config.subnetMax, candidates.count < limit {
            if !taken.contains(where: { $0.overlaps(current) }) {
                candidates.append(current)
            }
            subnet = current.next
        }
        return candidates
    }

    public static func allocate(in config: NetworkConfig, taken: [IPv4Prefix],
                                using generator: inout some RandomNumberGenerator) throws(OutOfSubnetsError) -> IPv4Prefix {
        let candidates = freeCandidates(in: config, taken: taken)
        guard let choice = candidates.randomElement(using: &generator) else {
            throw OutOfSubnetsError(config: config, leaseCount: taken.count)
        }
        return choice
    }
}

/// Every subnet between `SubnetMin` and `SubnetMax` is leased.
public struct OutOfSubnetsError: Error, Sendable, Equatable, CustomStringConvertible {
    public let config: NetworkConfig
    public let leaseCount: Int

    public var description: String {
        "out of subnets: all \(config.allocatableSubnetCount) /\(config.subnetLength) subnets from \(config.subnetMin) to "
            + "\(config.subnetMax) in \(config.network) are leased (\(leaseCount) leases); "
            + "remove the leases of nodes that are gone, or widen the range with SubnetMin, SubnetMax or a larger Network"
    }
}
