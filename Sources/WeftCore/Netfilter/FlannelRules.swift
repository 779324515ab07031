/// The masquerade and forward rules flanneld installs on a node, exactly as it installs
/// them: the same chains, rules, comments and order as flanneld v0.20.2's `iptables-save`
/// (`FLANNEL-POSTRTG` in nat, `FLANNEL-FWD` in filter), or, with `EnableNFTables`, current
/// Flannel's `flannel-ipv4` table. A node taken over from flanneld therefore finds its rules
/// already in place, and flanneld finds Weft's.
public struct FlannelRules: Sendable, Equatable {
    public let network: IPv4Prefix
    public let subnet: IPv4Prefix
    /// `--ip-masq`: masquerade pod traffic that leaves the cluster network.
    public let masquerade: Bool
    /// `--iptables-forward-rules`: accept forwarded cluster traffic whatever FORWARD's policy.
    public let forward: Bool
    /// Masquerade with `--random-fully` (`fully-random` in nftables), unless
    /// `--ip-masq-fully-random-disable`.
    public let fullyRandom: Bool

    public init(network: IPv4Prefix, subnet: IPv4Prefix, masquerade: Bool, forward: Bool, fullyRandom: Bool = true) {
        self.network = network
        self.subnet = subnet
        self.masquerade = masquerade
        self.forward = forward
        self.fullyRandom = fullyRandom
    }

    /// kube-proxy marks what it will masquerade itself; Flannel leaves it alone.
    public static let kubeProxyMark = "0x4000"
    public static let multicast = "224.0.0.0/4"

    public static let masqueradeChain = "FLANNEL-POSTRTG"
    public static let forwardChain = "FLANNEL-FWD"

    public var masqueradeRules: IPTablesChain {
        let comment = #"-m comment --comment "flanneld masq""#
        let masquerade = "-j MASQUERADE" + (fullyRandom ? " --random-fully" : "")
        return IPTablesChain(table: "nat", name: Self.masqueradeChain, hook: "POSTROUTING", jump: "\(comment) -j \(Self.masqueradeChain)", rules: [
            "-m mark --mark \(Self.kubeProxyMark)/\(Self.kubeProxyMark) \(comment) -j RETURN",
            "-s \(network) -d \(network) \(comment) -j RETURN",
            "-s \(network) ! -d \(Self.multicast) \(comment) \(masquerade)",
            "! -s \(network) -d \(subnet) \(comment) -j RETURN",
            "! -s \(network) -d \(network) \(comment) \(masquerade)",
        ])
    }

    public var forwardRules: IPTablesChain {
        let comment = #"-m comment --comment "flanneld forward""#
        return IPTablesChain(table: "filter", name: Self.forwardChain, hook: "FORWARD", jump: "\(comment) -j \(Self.forwardChain)", rules: [
            "-s \(network) \(comment) -j ACCEPT",
            "-d \(network) \(comment) -j ACCEPT",
        ])
    }

    /// The chains these settings want, and the ones they want gone.
    public var wantedChains: [IPTablesChain] {
        (masquerade ? [masqueradeRules] : []) + (forward ? [forwardRules] : [])
    }

    public var unwantedChains: [IPTablesChain] {
        (masquerade ? [] : [masqueradeRules]) + (forward ? [] : [forwardRules])
    }

    // MARK: iptables

    /// How to turn `current` into these rules (`IPTablesChain.restore`); nil when they are in place.
    public func iptablesRestore(from current: IPTablesSave) -> IPTablesChain.Restore? {
        IPTablesChain.restore(wanted: wantedChains, unwanted: unwantedChains, from: current)
    }

    /// Where flanneld's chains are, whatever they hold: what `weft dataplane down` removes.
    public static let places = [IPTablesChain.Place(table: "nat", hook: "POSTROUTING", name: masqueradeChain),
                                IPTablesChain.Place(table: "filter", hook: "FORWARD", name: forwardChain)]

    // MARK: nftables

    public static let nftablesTable = "flannel-ipv4"

    /// The `nft -f` script that makes table `ip flannel-ipv4` hold exactly these rules, as
    /// current Flannel writes it: one transaction, so no packet sees a half-written chain.
    public var nftablesScript: String {
        let table = "ip \(Self.nftablesTable)"
        let masquerade = fullyRandom ? "masquerade fully-random" : "masquerade"
        var lines = [#"add table \#(table) { comment "rules for \#(Self.nftablesTable)" ; }"#]
        lines += [#"add chain \#(table) postrtg { type nat hook postrouting priority srcnat ; comment "chain to manage traffic masquerading by flannel" ; }"#]
        if self.masquerade {
            lines += ["flush chain \(table) postrtg"] + [
                "meta mark \(Self.kubeProxyMark) return",
                "ip saddr \(subnet) ip daddr \(network) return",
                "ip saddr \(network) ip daddr \(subnet) return",
                "ip saddr != \(subnet) ip daddr \(network) return",
                "ip saddr \(network) ip daddr != \(Self.multicast) \(masquerade)",
                "ip saddr != \(network) ip daddr \(network) \(masquerade)",
            ].map { "add rule \(table) postrtg \($0)" }
        } else {
            lines.append("delete chain \(table) postrtg")
        }
        lines += [#"add chain \#(table) forward { type filter hook forward priority filter ; comment "chain to accept flannel traffic" ; }"#]
        if forward {
            lines += ["flush chain \(table) forward", "add rule \(table) forward ip saddr \(network) accept",
                      "add rule \(table) forward ip daddr \(network) accept"]
        } else {
            lines.append("delete chain \(table) forward")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Removes the table whether or not it exists (`add` first makes the `delete` safe).
    public static var nftablesRemoval: String {
        "add table ip \(nftablesTable)\ndelete table ip \(nftablesTable)\n"
    }
}
