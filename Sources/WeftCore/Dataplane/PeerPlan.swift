/// How this node reaches each peer subnet, worked out from the peers' leases the way
/// Flannel's backends do: a vxlan node tunnels to vxlan leases (or routes directly when
/// DirectRouting is on and the peer shares the underlay's L2 segment); a host-gw node
/// routes to host-gw leases, which must be on-link. Leases a backend cannot use are
/// listed with the reason, not silently dropped.
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

    public struct Ignored: Sendable, Equatable {
        public var subnet: IPv4Prefix
        public var reason: String
    }

    public var paths: [IPv4Prefix: Path]
    public var ignored: [Ignored]

    /// - Parameters:
    ///   - peers: every lease but this node's own.
    ///   - onLinkNetworks: the connected networks of the underlay interface.
    public init(peers: [Lease], backend: Backend, onLinkNetworks: [IPv4Prefix]) {
        paths = [:]
        ignored = []
        let onLink = { (ip: IPv4Address) in onLinkNetworks.contains { $0.contains(ip) } }
        for lease in peers.sorted(by: { $0.subnet < $1.subnet }) {
            let attributes = lease.attributes
            switch backend {
            case .vxlan(let options):
                guard attributes.backendType == "vxlan" else {
                    ignored.append(Ignored(subnet: lease.subnet, reason: "backend \(attributes.backendType), not vxlan"))
                    continue
                }
                guard let data = attributes.vxlan else {
                    ignored.append(Ignored(subnet: lease.subnet, reason: "vxlan lease without a VtepMAC in BackendData"))
                    continue
                }
                if options.directRouting && onLink(attributes.publicIP) {
                    paths[lease.subnet] = .direct(underlayIP: attributes.publicIP)
                } else {
                    paths[lease.subnet] = .vxlan(underlayIP: attributes.publicIP, vtepMAC: data.vtepMAC)
                }
            case .hostGateway:
                guard attributes.backendType == "host-gw" else {
                    ignored.append(Ignored(subnet: lease.subnet, reason: "backend \(attributes.backendType), not host-gw"))
                    continue
                }
                guard onLink(attributes.publicIP) else {
                    ignored.append(Ignored(subnet: lease.subnet,
                                           reason: "public IP \(attributes.publicIP) is not on the underlay's L2 segment; host-gw needs every node on one"))
                    continue
                }
                paths[lease.subnet] = .direct(underlayIP: attributes.publicIP)
            }
        }
    }

    /// Peers reached by direct routes, which the kernel also gets routes for.
    public var directRoutes: [IPv4Prefix: IPv4Address] {
        paths.compactMapValues { path in
            if case .direct(let ip) = path { return ip }
            return nil
        }
    }
}
