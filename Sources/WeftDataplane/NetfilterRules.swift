import Foundation
import WeftCore
import WeftShell

/// Keeps a node's netfilter rules as wanted: `ensure` makes them so and says what it had to
/// change; `remove` takes them out.
public protocol RuleKeeper: AnyObject, Sendable {
    func ensure() throws -> [String]
    func remove() throws
}

/// flanneld's masquerade and forward rules (`FlannelRules`) on this node, kept through the
/// system tools as kube-proxy and Flannel keep theirs: `iptables-save` and
/// `iptables-restore --noflush` (one transaction per table, other rules untouched), or
/// `nft -f` for the `flannel-ipv4` table when `EnableNFTables` is set.
public final class NetfilterRules: RuleKeeper, @unchecked Sendable {
    public enum Tool: String, Sendable {
        case iptables
        case nftables
    }

    public let rules: FlannelRules
    public let tool: Tool
    /// `nft list table` as the last `ensure` left it: a different listing means someone
    /// changed the table. Used from the supervisor's thread only.
    private var lastListing: String?

    public init(_ rules: FlannelRules, tool: Tool) {
        self.rules = rules
        self.tool = tool
    }

    public func ensure() throws -> [String] {
        switch tool {
        case .iptables: try ensureIPTables()
        case .nftables: try ensureNFTables()
        }
    }

    public func remove() throws {
        switch tool {
        case .iptables:
            try Self.removeIPTables()
        case .nftables:
            try Self.run(["nft", "-f", "-"], input: FlannelRules.nftablesRemoval)
        }
        lastListing = nil
    }

    /// Removes every Flannel chain and table from this namespace, whatever made them: for
    /// `weft dataplane down`, which has no daemon's settings to go by.
    public static func removeAll() throws -> [String] {
        var removed: [String] = []
        if try removeIPTables() { removed.append("the iptables chains FLANNEL-POSTRTG and FLANNEL-FWD") }
        if (try? Command.run(["nft", "list", "table", "ip", FlannelRules.nftablesTable]))?.succeeded == true {
            try run(["nft", "-f", "-"], input: FlannelRules.nftablesRemoval)
            removed.append("the nftables table ip \(FlannelRules.nftablesTable)")
        }
        return removed
    }

    private func ensureIPTables() throws -> [String] {
        let current = IPTablesSave(try Self.run(["iptables-save"]))
        guard let restore = rules.iptablesRestore(from: current) else { return [] }
        try Self.run(["iptables-restore", "--noflush", "--wait", "5"], input: restore.input)
        return restore.changes
    }

    @discardableResult
    private static func removeIPTables() throws -> Bool {
        // No iptables on the host: there are no chains to remove.
        guard let saved = try? Command.run(["iptables-save"]), saved.succeeded,
              let input = FlannelRules.iptablesRemoval(from: IPTablesSave(saved.stdout)) else {
            return false
        }
        try run(["iptables-restore", "--noflush", "--wait", "5"], input: input)
        return true
    }

    private func ensureNFTables() throws -> [String] {
        let listing = try? Self.run(["nft", "list", "table", "ip", FlannelRules.nftablesTable])
        if let listing, listing == lastListing { return [] }
        try Self.run(["nft", "-f", "-"], input: rules.nftablesScript)
        lastListing = try Self.run(["nft", "list", "table", "ip", FlannelRules.nftablesTable])
        return ["wrote the nftables table ip \(FlannelRules.nftablesTable)"]
    }

    /// Runs a netfilter tool; its failure names the tool, what it said, and what to do.
    @discardableResult
    private static func run(_ arguments: [String], input: String? = nil) throws -> String {
        let result: Command.Result
        do {
            result = try Command.run(arguments, input: input)
        } catch {
            let package = arguments[0] == "nft" ? "nftables" : "iptables"
            throw DataplaneError("\(error): the masquerade and forward rules need \(arguments[0]); install it (Debian: \(package)), or run without --ip-masq and with --iptables-forward-rules=false")
        }
        guard result.succeeded else {
            throw DataplaneError("\(arguments.joined(separator: " ")) failed (status \(result.status)): \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))\(input.map { "\ninput was:\n\($0)" } ?? "")")
        }
        return result.stdout
    }
}
