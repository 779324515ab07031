/// The planner: what the dataplane should hold, worked out from this node, the peers'
/// leases and the underlay's connected networks, with nothing taken on trust. A vxlan node
/// tunnels to vxlan leases of its VNI (or routes directly when DirectRouting is on and the
/// peer shares the underlay's L2 segment); a host-gw node routes to host-gw leases, which
/// must be on-link. Every lease that fails a check is rejected with its reason, so a
/// corrupt or hostile entry in the store can neither steal traffic nor pass unnoticed.
public struct PeerPlan: Sendable, Equatable {
    public enum Path: Sendable, Equatable {
        /// Encapsulate to the peer's VTEP.
        case vxlan(underlayIP: IPv4Address, vtepMAC: MACAddress)
        /// Route the inner packet straight to the peer's underlay IP.
        case direct(underlayIP: IPv4Address)

        public var underlayIP: IPv4Address {
            switch self {
            case .vxlan(let ip, _), .direct(let ip): ip
            }
        }
    }

    public var paths: [IPv4Prefix: Path]
    /// The leases not programmed, in subnet order.
    public var rejected: [RejectedLease]

    /// - Parameters:
    ///   - peers: the leases in the store; this node's own (its subnet) is passed over.
    ///   - onLinkNetworks: the connected networks of the underlay interface.
    public init(node: PlanningNode, peers: some Sequence<PeerLease>, onLinkNetworks: [IPv4Prefix]) {
        paths = [:]
        rejected = []
        let onLink = { (ip: IPv4Address) in onLinkNetworks.contains { $0.contains(ip) } }
        // Only small values here: a plan of 10,000 peers copies no lease.
        var candidates: [(since: Int64, subnet: IPv4Prefix, path: Path)] = []
        for peer in peers where peer.lease.subnet != node.subnet {
            switch Self.check(peer, node: node, onLink: onLink) {
            case .success(let path): candidates.append((peer.since, peer.lease.subnet, path))
            case .failure(let reason): rejected.append(RejectedLease(peer.lease, reason))
            }
        }
        // Overlaps last, among leases that are sound on their own: the older lease keeps
        // its subnet, so a newcomer can never take traffic from a live node. Every candidate
        // has the network's SubnetLen, and two aligned prefixes of one length overlap only
        // when they are the same, so a set finds the holder; our own subnet may be of another
        // length (a config changed under a running node) and is checked as a prefix.
        var accepted: Set<IPv4Prefix> = []
        accepted.reserveCapacity(candidates.count)
        for (_, subnet, path) in candidates.sorted(by: { ($0.since, $0.subnet) < ($1.since, $1.subnet) }) {
            if node.subnet.overlaps(subnet) {
                rejected.append(RejectedLease(subnet: subnet, publicIP: path.underlayIP, reason: .overlapsOwnSubnet(node.subnet)))
            } else if accepted.contains(subnet) {
                rejected.append(RejectedLease(subnet: subnet, publicIP: path.underlayIP, reason: .overlapsOlderLease(subnet)))
            } else {
                accepted.insert(subnet)
                paths[subnet] = path
            }
        }
        rejected.sort { $0.subnet < $1.subnet }
    }

    /// Why a lease can never be programmed on this node, whatever the other leases and the
    /// underlay: the checks of the lease against the node alone. Nil when it may be. A
    /// lease this rejects need not be planned again until it changes, so a store full of
    /// foreign keys costs the planner nothing (`ScreenedLeases`).
    public static func rejectionOnItsOwn(_ peer: PeerLease, node: PlanningNode) -> LeaseRejection? {
        let lease = peer.lease
        let attributes = lease.attributes
        guard node.network.contains(lease.subnet) else { return .outsideNetwork(node.network) }
        guard lease.subnet.length == node.subnetLength else { return .wrongPrefixLength(expected: node.subnetLength) }
        guard attributes.publicIP.isUnicast else { return .publicIPNotUnicast(attributes.publicIP) }
        guard attributes.publicIP != node.publicIP else { return .claimsOwnPublicIP(attributes.publicIP) }
        switch node.backend {
        case .vxlan(let options):
            guard attributes.backendType == "vxlan" else { return .foreignBackend(attributes.backendType) }
            guard let data = peer.vxlan else { return .missingVTEPMAC }
            guard data.vni == options.vni else { return .foreignVNI(data.vni) }
        case .hostGateway:
            guard attributes.backendType == "host-gw" else { return .foreignBackend(attributes.backendType) }
        }
        return nil
    }

    /// The path to one lease on its own merits, or why there is none.
    private static func check(_ peer: PeerLease, node: PlanningNode, onLink: (IPv4Address) -> Bool) -> Result<Path, LeaseRejection> {
        if let rejection = rejectionOnItsOwn(peer, node: node) { return .failure(rejection) }
        let publicIP = peer.lease.attributes.publicIP
        switch node.backend {
        case .vxlan(let options):
            if options.directRouting && onLink(publicIP) { return .success(.direct(underlayIP: publicIP)) }
            guard let data = peer.vxlan else { return .failure(.missingVTEPMAC) }
            return .success(.vxlan(underlayIP: publicIP, vtepMAC: data.vtepMAC))
        case .hostGateway:
            guard onLink(publicIP) else { return .failure(.notOnLink(publicIP)) }
            return .success(.direct(underlayIP: publicIP))
        }
    }

    /// Peers reached by direct routes, which the kernel also gets routes for.
    public var directRoutes: [IPv4Prefix: IPv4Address] {
        paths.compactMapValues { path in
            if case .direct(let ip) = path { return ip }
            return nil
        }
    }

    /// Every peer's underlay IP, with its subnet: what the programs check a sender against.
    /// A VXLAN peer sends tunnels from it; a direct peer (host-gw, DirectRouting) sends its
    /// host's own traffic from it, and its pods' traffic through it.
    public var tunnels: [IPv4Address: IPv4Prefix] {
        var tunnels: [IPv4Address: IPv4Prefix] = [:]
        for (subnet, path) in paths { tunnels[path.underlayIP] = subnet }
        return tunnels
    }
}

/// This node, as the planner needs it.
public struct PlanningNode: Sendable, Equatable {
    /// The cluster network (`Network`).
    public var network: IPv4Prefix
    /// `SubnetLen`: every lease's prefix length.
    public var subnetLength: Int
    /// This node's own subnet.
    public var subnet: IPv4Prefix
    public var publicIP: IPv4Address
    public var backend: Backend

    public init(network: IPv4Prefix, subnetLength: Int, subnet: IPv4Prefix, publicIP: IPv4Address, backend: Backend) {
        self.network = network
        self.subnetLength = subnetLength
        self.subnet = subnet
        self.publicIP = publicIP
        self.backend = backend
    }
}

/// A peer's lease and its age: the store revision it was created at (or first seen at),
/// which decides who keeps a contested subnet. Its VXLAN data is read from the JSON once,
/// here, not on every plan.
public struct PeerLease: Sendable, Equatable {
    public let lease: Lease
    public let since: Int64
    public let vxlan: VXLANLeaseData?

    public init(_ lease: Lease, since: Int64) {
        self.lease = lease
        self.since = since
        vxlan = lease.attributes.vxlan
    }
}

/// A lease the planner will not program, and why.
public struct RejectedLease: Sendable, Equatable, Hashable {
    public var subnet: IPv4Prefix
    public var publicIP: IPv4Address
    public var reason: LeaseRejection

    public init(_ lease: Lease, _ reason: LeaseRejection) {
        self.init(subnet: lease.subnet, publicIP: lease.attributes.publicIP, reason: reason)
    }

    public init(subnet: IPv4Prefix, publicIP: IPv4Address, reason: LeaseRejection) {
        self.subnet = subnet
        self.publicIP = publicIP
        self.reason = reason
    }

    /// The rejections in `current` that `previous` did not have (new, or with another
    /// reason or address): what to log, so a standing rejection is logged once, not every pass.
    public static func newlyRejected(_ current: [RejectedLease], since previous: [RejectedLease]) -> [RejectedLease] {
        let known = Set(previous)
        return current.filter { !known.contains($0) }
    }
}

/// Why a lease is not programmed. `name` is the metric label.
public enum LeaseRejection: Error, Sendable, Equatable, Hashable, CustomStringConvertible {
    case outsideNetwork(IPv4Prefix)
    case wrongPrefixLength(expected: Int)
    case publicIPNotUnicast(IPv4Address)
    case claimsOwnPublicIP(IPv4Address)
    case foreignBackend(String)
    case foreignVNI(UInt32)
    case missingVTEPMAC
    case notOnLink(IPv4Address)
    case overlapsOwnSubnet(IPv4Prefix)
    case overlapsOlderLease(IPv4Prefix)

    public var name: String {
        switch self {
        case .outsideNetwork: "outside_network"
        case .wrongPrefixLength: "wrong_prefix_length"
        case .publicIPNotUnicast: "public_ip_not_unicast"
        case .claimsOwnPublicIP: "claims_own_public_ip"
        case .foreignBackend: "foreign_backend"
        case .foreignVNI: "foreign_vni"
        case .missingVTEPMAC: "missing_vtep_mac"
        case .notOnLink: "not_on_link"
        case .overlapsOwnSubnet: "overlaps_own_subnet"
        case .overlapsOlderLease: "overlaps_older_lease"
        }
    }

    public var description: String {
        switch self {
        case .outsideNetwork(let network): "the subnet is outside the cluster network \(network)"
        case .wrongPrefixLength(let expected): "the prefix length is not the network's SubnetLen (\(expected))"
        case .publicIPNotUnicast(let ip): "PublicIP \(ip) is not a unicast address"
        case .claimsOwnPublicIP(let ip): "PublicIP \(ip) is this node's own, on a subnet that is not its lease (a stale lease of this node, or a forged one)"
        case .foreignBackend(let type): "backend \(type), not this cluster's; such a node runs another backend and cannot be reached from this one"
        case .foreignVNI(let vni): "VNI \(vni), not this cluster's"
        case .missingVTEPMAC: "a vxlan lease without a VtepMAC in BackendData"
        case .notOnLink(let ip): "PublicIP \(ip) is not on the underlay's L2 segment; host-gw needs every node on one"
        case .overlapsOwnSubnet(let subnet): "the subnet overlaps this node's own, \(subnet)"
        case .overlapsOlderLease(let subnet): "the subnet overlaps \(subnet), an older lease"
        }
    }
}

extension IPv4Address {
    /// A host address another node can send to: not 0.0.0.0/8 ("this network"), loopback,
    /// multicast, reserved (240/4) or the broadcast address.
    public var isUnicast: Bool {
        let first = value >> 24
        return first != 0 && first != 127 && first < 224
    }
}
