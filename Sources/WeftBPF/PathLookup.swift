import WeftCore

/// Which entry of the BPF maps an address hits and the path a pod's packet to it takes, as
/// from_pod decides it: `weft maps lookup`. Pure: it reads the maps' contents as given.
public struct PathLookup: Sendable, Equatable {
    public enum Path: Sendable, Equatable {
        /// A pod on this node: delivered into its veth.
        case localPod(LocalEndpoint)
        /// In a peer's subnet: encapsulated to its VTEP, or routed to it on the underlay.
        case peer(subnet: IPv4Prefix, route: PeerRoute)
        /// A peer's own underlay IP: its host, reached by the kernel.
        case peerHost(subnet: IPv4Prefix)
        /// No entry: the kernel routes it (services, this host, the internet).
        case kernel
    }

    public let address: IPv4Address
    public let path: Path

    public init(_ address: IPv4Address, endpoints: [IPv4Address: LocalEndpoint], peers: [IPv4Prefix: PeerRoute],
                tunnels: [IPv4Address: IPv4Prefix]) {
        self.address = address
        if let endpoint = endpoints[address] {
            path = .localPod(endpoint)
        } else if let (subnet, route) = peers.filter({ $0.key.contains(address) }).max(by: { $0.key.length < $1.key.length }) {
            path = .peer(subnet: subnet, route: route)   // the longest prefix, as the LPM trie answers
        } else if let subnet = tunnels[address] {
            path = .peerHost(subnet: subnet)
        } else {
            path = .kernel
        }
    }

    /// The entry it hits, and what from_pod does with a packet to it.
    public var explanation: (entry: String, path: String) {
        switch path {
        case .localPod(let endpoint):
            ("endpoint \(address): host ifindex \(endpoint.hostInterfaceIndex), pod MAC \(endpoint.podMAC)",
             "delivered into the pod's veth by bpf_redirect_peer (counted as delivered_local)")
        case .peer(let subnet, let route) where route.mode == .vxlan:
            ("peer \(subnet): VTEP MAC \(route.vtepMAC) at underlay IP \(route.underlayIP)",
             "encapsulated in VXLAN to \(route.underlayIP) (encapsulated); larger than the tunnel MTU, left to the kernel (passed_too_big)")
        case .peer(let subnet, let route):
            ("peer \(subnet): direct, at underlay IP \(route.underlayIP)",
             "routed to \(route.underlayIP) on the underlay by bpf_redirect_neigh (routed_direct)")
        case .peerHost(let subnet):
            ("tunnel \(address): the host of peer \(subnet)", "left to the kernel, which routes it on the underlay (passed_no_route)")
        case .kernel:
            ("none", "left to the kernel (passed_no_route): outside the pods and peers this node knows")
        }
    }

    public var kind: String {
        switch path {
        case .localPod: "local-pod"
        case .peer(_, let route): route.mode == .vxlan ? "vxlan-peer" : "direct-peer"
        case .peerHost: "peer-host"
        case .kernel: "kernel"
        }
    }
}
