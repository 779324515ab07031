/// The masquerade and forward rules flanneld installs on a node, exactly as it installs
/// them: the same chains, rules, comments and order as flanneld v0.20.2's `iptables-save`
/// (`FLANNEL-POSTRTG` in nat, `FLANNEL-FWD` in filter), or, with `EnableNFTables`, current
/// Flannel's `flannel-ipv4` table. A node taken over from flanneld therefore finds its rules
/// already in place, and flanneld finds Weft's.
public struct FlannelRules: Sendable, Equatable {
    /// One of flanneld's iptables chains and the rule that sends traffic to it.
    public struct Chain: Sendable, Equatable {
        public let table: String
        public let name: String
        /// The built-in chain whose first rule jumps to this one.
        public let hook: String
        public let jump: String
        /// The rule specifications, in order, as `iptables-save` prints them after `-A <name> `.
        public let rules: [String]
    }

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

    public var masqueradeRules: Chain {
        let comment = #"-m comment --comment "flanneld masq""#
        let masquerade = "-j MASQUERADE" + (fullyRandom ? " --random-fully" : "")
        return Chain(table: "nat", name: Self.masqueradeChain, hook: "POSTROUTING", jump: "\(comment) -j \(Self.masqueradeChain)", rules: [
            "-m mark --mark \(Self.kubeProxyMark)/\(Self.kubeProxyMark) \(comment) -j RETURN",
            "-s \(network) -d \(network) \(comment) -j RETURN",
            "-s \(network) ! -d \(Self.multicast) \(comment) \(masquerade)",
            "! -s \(network) -d \(subnet) \(comment) -j RETURN",
            "! -s \(network) -d \(network) \(comment) \(masquerade)",
        ])
    }

    public var forwardRules: Chain {
        let comment = #"-m comment --comment "flanneld forward""#
        return Chain(table: "filter", name: Self.forwardChain, hook: "FORWARD", jump: "\(comment) -j \(Self.forwardChain)", rules: [
            "-s \(network) \(comment) -j ACCEPT",
            "-d \(network) \(comment) -j ACCEPT",
        ])
    }

    /// The chains these settings want, and the ones they want gone.
    public var wantedChains: [Chain] {
        (masquerade ? [masqueradeRules] : []) + (forward ? [forwardRules] : [])
    }

    public var unwantedChains: [Chain] {
        (masquerade ? [] : [masqueradeRules]) + (forward ? [] : [forwardRules])
    }

    // MARK: iptables

    /// What `iptables-restore --noflush` is given, and what it changes, in words.
    public struct Restore: Sendable, Equatable {
        public let input: String
        public let changes: [String]
    }

    /// How to turn `current` into these rules: each wanted chain that differs is declared
    /// (which empties it) and filled, a missing jump is inserted first in its hook and a
    /// repeated one deleted; chains no longer wanted are removed. Nil when everything is in
    /// place. Other rules are never touched.
    public func iptablesRestore(from current: IPTablesSave) -> Restore? {
        var tables: [String: [String]] = [:]
        var changes: [String] = []
        for chain in wantedChains {
            let jumps = current.rules(chain.table, chain.hook).filter { $0 == chain.jump }.count
            let chainInPlace = current.hasChain(chain.table, chain.name) && current.rules(chain.table, chain.name) == chain.rules
            guard !chainInPlace || jumps != 1 else { continue }
            var lines: [String] = []
            if !chainInPlace {
                lines.append(":\(chain.name) - [0:0]")
                lines += chain.rules.map { "-A \(chain.name) \($0)" }
                changes.append("wrote the \(chain.table) chain \(chain.name)")
            }
            if jumps == 0 {
                lines.append("-I \(chain.hook) 1 \(chain.jump)")
                changes.append("added the jump from \(chain.hook) to \(chain.name)")
            }
            if jumps > 1 {
                lines += Array(repeating: "-D \(chain.hook) \(chain.jump)", count: jumps - 1)
                changes.append("deleted \(jumps - 1) repeated jumps from \(chain.hook) to \(chain.name)")
            }
            tables[chain.table, default: []] += lines
        }
        let unwanted = unwantedChains.filter { current.hasChain($0.table, $0.name) }
        for (table, lines) in removal(of: unwanted, from: current) { tables[table, default: []] += lines }
        changes += unwanted.map { "removed the \($0.table) chain \($0.name), which these settings do not want" }
        return Self.restoreInput(tables).map { Restore(input: $0, changes: changes) }
    }

    /// What `iptables-restore --noflush` must be given to remove every chain of Flannel's
    /// from `current`, with the jumps to them; nil when there is none.
    public static func iptablesRemoval(from current: IPTablesSave) -> String? {
        restoreInput(removal(of: [("nat", "POSTROUTING", masqueradeChain), ("filter", "FORWARD", forwardChain)], from: current))
    }

    private func removal(of chains: [Chain], from current: IPTablesSave) -> [String: [String]] {
        Self.removal(of: chains.map { ($0.table, $0.hook, $0.name) }, from: current)
    }

    private static func removal(of chains: [(table: String, hook: String, name: String)], from current: IPTablesSave) -> [String: [String]] {
        var tables: [String: [String]] = [:]
        for chain in chains where current.hasChain(chain.table, chain.name) {
            // Every rule that jumps to the chain must go before the chain can.
            let jumps = current.rules(chain.table, chain.hook).filter { $0.hasSuffix("-j \(chain.name)") }
            tables[chain.table, default: []] += jumps.map { "-D \(chain.hook) \($0)" } + [":\(chain.name) - [0:0]", "-X \(chain.name)"]
        }
        return tables
    }

    private static func restoreInput(_ tables: [String: [String]]) -> String? {
        guard !tables.isEmpty else { return nil }
        return tables.keys.sorted().map { table in
            (["*\(table)"] + tables[table]! + ["COMMIT"]).joined(separator: "\n")
        }.joined(separator: "\n") + "\n"
    }

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
