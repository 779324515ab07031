import Foundation
import WeftCore
import WeftShell

/// Keeps a node's netfilter rules as wanted: `ensure` makes them so and says what it had to
/// change; `remove` takes them out.
public protocol RuleKeeper: AnyObject, Sendable {
    /// - Parameter directPeers: the direct peers' subnets and underlay IPs, for the underlay
    ///   guard; nil before the first plan, which leaves the guard as it is.
    func ensure(directPeers: [IPv4Prefix: IPv4Address]?) throws -> [String]
    func remove() throws
}

/// flanneld's masquerade and forward rules (`FlannelRules`) on this node, and on the kernel
/// dataplane Weft's underlay guard (`UnderlayGuard`), kept through the system tools as
/// kube-proxy and Flannel keep theirs: `iptables-save` and `iptables-restore --noflush` (one
/// transaction per table, other rules untouched), or `nft -f` for the `flannel-ipv4` and
/// `weft-ipv4` tables when `EnableNFTables` is set.
public final class NetfilterRules: RuleKeeper, @unchecked Sendable {
    public enum Tool: String, Sendable {
        case iptables
        case nftables
    }

    public let rules: FlannelRules
    /// Where the underlay guard stands; nil when this node wants none (the BPF dataplane
    /// checks in its program, or `--no-underlay-source-check`).
    public let underlayGuard: UnderlayGuard.Scope?
    public let tool: Tool
    /// The script and the `nft -s list` of each table as the last `ensure` left them: a
    /// different listing means someone changed the table. Used from one thread at a time.
    private var written: [String: (script: String, listing: String)] = [:]
    private var removedStaleGuard = false
    /// Whether the rules the other tool keeps (a run of this node with the other
    /// `EnableNFTables`) have been taken out.
    private var removedOtherTools = false

    public init(_ rules: FlannelRules, underlayGuard: UnderlayGuard.Scope? = nil, tool: Tool) {
        self.rules = rules
        self.underlayGuard = underlayGuard
        self.tool = tool
    }

    public func ensure(directPeers: [IPv4Prefix: IPv4Address]?) throws -> [String] {
        let guardRules = underlayGuard.flatMap { scope in directPeers.map { UnderlayGuard(scope, directPeers: $0) } }
        var switched: [String] = []
        if !removedOtherTools {
            // Two sets of the same rules would both apply: the node switched EnableNFTables.
            switched = try tool == .iptables ? Self.removeNFTables().map { "removed \($0), left by a run with EnableNFTables" }
                : (try Self.removeIPTables() ? ["removed the iptables chains left by a run without EnableNFTables"] : [])
            removedOtherTools = true
        }
        switch tool {
        case .iptables: return switched + (try ensureIPTables(guardRules))
        case .nftables:
            var changes = try ensureTable(FlannelRules.nftablesTable, script: rules.nftablesScript)
            if let guardRules {
                changes += try ensureTable(UnderlayGuard.nftablesTable, script: guardRules.nftablesScript)
            } else if underlayGuard == nil, !removedStaleGuard {
                // A guard a kernel-dataplane run of this node left behind.
                try Self.run(["nft", "-f", "-"], input: UnderlayGuard.nftablesRemoval)
                removedStaleGuard = true
            }
            return switched + changes
        }
    }

    public func remove() throws {
        switch tool {
        case .iptables:
            try Self.removeIPTables()
        case .nftables:
            try Self.run(["nft", "-f", "-"], input: FlannelRules.nftablesRemoval + UnderlayGuard.nftablesRemoval)
        }
        written = [:]
    }

    /// Removes every chain and table of Flannel's and Weft's from this namespace, whatever
    /// made them: for `weft dataplane down`, which has no daemon's settings to go by.
    public static func removeAll() throws -> [String] {
        var removed: [String] = []
        if try removeIPTables() { removed.append("the iptables chains FLANNEL-POSTRTG, FLANNEL-FWD and WEFT-UNDERLAY") }
        return removed + (try removeNFTables())
    }

    /// Removes Flannel's and Weft's nftables tables where they exist (none without nft).
    private static func removeNFTables() throws -> [String] {
        var removed: [String] = []
        for (table, removal) in [(FlannelRules.nftablesTable, FlannelRules.nftablesRemoval), (UnderlayGuard.nftablesTable, UnderlayGuard.nftablesRemoval)]
            where (try? Command.run(["nft", "list", "table", "ip", table]))?.succeeded == true {
            try run(["nft", "-f", "-"], input: removal)
            removed.append("the nftables table ip \(table)")
        }
        return removed
    }

    private func ensureIPTables(_ guardRules: UnderlayGuard?) throws -> [String] {
        let current = IPTablesSave(try Self.run(["iptables-save"]))
        var wanted = rules.wantedChains
        var unwanted = rules.unwantedChains
        if let guardRules {
            wanted.append(guardRules.chain)
        } else if underlayGuard == nil, current.hasChain(UnderlayGuard.place.table, UnderlayGuard.chainName) {
            // The chain's rules do not matter for its removal.
            unwanted.append(IPTablesChain(table: UnderlayGuard.place.table, name: UnderlayGuard.chainName, hook: UnderlayGuard.place.hook, jump: "", rules: []))
        }
        guard let restore = IPTablesChain.restore(wanted: wanted, unwanted: unwanted, from: current) else { return [] }
        try Self.run(["iptables-restore", "--noflush", "--wait", "5"], input: restore.input)
        return restore.changes
    }

    @discardableResult
    private static func removeIPTables() throws -> Bool {
        // No iptables on the host: there are no chains to remove.
        guard let saved = try? Command.run(["iptables-save"]), saved.succeeded,
              let input = IPTablesChain.removal(of: FlannelRules.places + [UnderlayGuard.place], from: IPTablesSave(saved.stdout)) else {
            return false
        }
        try run(["iptables-restore", "--noflush", "--wait", "5"], input: input)
        return true
    }

    /// Writes a table's script unless the table is as the last write left it.
    private func ensureTable(_ table: String, script: String) throws -> [String] {
        let listing = try? Self.run(["nft", "-s", "list", "table", "ip", table])
        if let last = written[table], last.script == script, last.listing == listing { return [] }
        try Self.run(["nft", "-f", "-"], input: script)
        written[table] = (script, try Self.run(["nft", "-s", "list", "table", "ip", table]))
        return ["wrote the nftables table ip \(table)"]
    }

    /// Runs a netfilter tool; its failure names the tool, what it said, and what to do.
    @discardableResult
    private static func run(_ arguments: [String], input: String? = nil) throws -> String {
        let result: Command.Result
        do {
            result = try Command.run(arguments, input: input)
        } catch {
            let package = arguments[0] == "nft" ? "nftables" : "iptables"
            throw DataplaneError("\(error): the masquerade, forward and underlay rules need \(arguments[0]); install it (Debian: \(package)), or run without --ip-masq, with --iptables-forward-rules=false and (on the kernel dataplane) --no-underlay-source-check")
        }
        guard result.succeeded else {
            throw DataplaneError("\(arguments.joined(separator: " ")) failed (status \(result.status)): \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))\(input.map { "\ninput was:\n\($0)" } ?? "")")
        }
        return result.stdout
    }
}
