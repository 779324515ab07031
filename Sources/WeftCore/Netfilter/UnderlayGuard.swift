/// The kernel dataplane's counterpart of from_underlay's check, as a netfilter rule Weft
/// owns: plain IP arriving on the underlay for the cluster network is dropped in the raw
/// table's PREROUTING unless its source is a direct peer's (host-gw, DirectRouting): one of
/// its pod subnets or its underlay IP. In a VXLAN-only cluster no source is, because pod
/// traffic arrives encapsulated (and is checked by the vxlan device, `flannel.<VNI>`).
/// It cannot check the previous hop's MAC; from_underlay does.
public struct UnderlayGuard: Sendable, Equatable {
    /// Where the guard stands: the underlay interface and the cluster network.
    public struct Scope: Sendable, Equatable {
        public let interface: String
        public let network: IPv4Prefix

        public init(interface: String, network: IPv4Prefix) {
            self.interface = interface
            self.network = network
        }
    }

    public let scope: Scope
    /// Each direct peer's pod subnet and underlay IP.
    public let directPeers: [IPv4Prefix: IPv4Address]

    public init(_ scope: Scope, directPeers: [IPv4Prefix: IPv4Address]) {
        self.scope = scope
        self.directPeers = directPeers
    }

    public static let chainName = "WEFT-UNDERLAY"
    public static let place = IPTablesChain.Place(table: "raw", hook: "PREROUTING", name: chainName)
    static let comment = #"-m comment --comment "weft: plain IP to the cluster network from no direct peer""#

    /// The sources plain IP to the cluster network may have: the peers' subnets, then their
    /// underlay IPs, each once and in order.
    public var allowedSources: [IPv4Prefix] {
        let subnets = directPeers.keys.sorted()
        let hosts = Set(directPeers.values).sorted().map { IPv4Prefix(masking: $0, length: 32) }
        return subnets + hosts
    }

    /// The chain, as `iptables-save` prints it: a RETURN per allowed source, then DROP.
    public var chain: IPTablesChain {
        IPTablesChain(table: Self.place.table, name: Self.chainName, hook: Self.place.hook,
                      jump: "-d \(scope.network) -i \(scope.interface) -m comment --comment \"weft underlay guard\" -j \(Self.chainName)",
                      rules: allowedSources.map { "-s \($0) -j RETURN" } + ["\(Self.comment) -j DROP"])
    }

    // MARK: nftables

    public static let nftablesTable = "weft-ipv4"

    /// Table `ip weft-ipv4`, chain `underlay` at raw priority, in one `nft -f` transaction.
    public var nftablesScript: String {
        let table = "ip \(Self.nftablesTable)"
        let allowed = allowedSources.isEmpty ? "" : " ip saddr != { \(allowedSources.map(\.nftablesText).joined(separator: ", ")) }"
        return [
            #"add table \#(table) { comment "weft underlay guard" ; }"#,
            "add chain \(table) underlay { type filter hook prerouting priority raw ; }",
            "flush chain \(table) underlay",
            #"add rule \#(table) underlay iifname "\#(scope.interface)" ip daddr \#(scope.network)\#(allowed) counter drop comment "plain IP to the cluster network from no direct peer""#,
        ].joined(separator: "\n") + "\n"
    }

    /// Removes the table whether or not it exists (`add` first makes the `delete` safe).
    public static var nftablesRemoval: String {
        "add table ip \(nftablesTable)\ndelete table ip \(nftablesTable)\n"
    }
}

extension IPv4Prefix {
    /// A host route as nftables writes it (no /32), a network with its length.
    var nftablesText: String { length == 32 ? "\(network)" : "\(self)" }
}
