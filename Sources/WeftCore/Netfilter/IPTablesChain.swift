/// A chain of Weft's or flanneld's in one iptables table, the rule in a built-in chain that
/// jumps to it, and how to bring a node's tables to a set of such chains with
/// `iptables-restore --noflush`: only these chains and their jumps are touched.
public struct IPTablesChain: Sendable, Equatable {
    public let table: String
    public let name: String
    /// The built-in chain whose first rule jumps to this one.
    public let hook: String
    /// The jump, as `iptables-save` prints it after `-A <hook> `.
    public let jump: String
    /// The rule specifications, in order, as `iptables-save` prints them after `-A <name> `.
    public let rules: [String]

    public init(table: String, name: String, hook: String, jump: String, rules: [String]) {
        self.table = table
        self.name = name
        self.hook = hook
        self.jump = jump
        self.rules = rules
    }

    /// Where a chain is: enough to remove it, whatever it holds.
    public struct Place: Sendable, Equatable {
        public let table: String
        public let hook: String
        public let name: String

        public init(table: String, hook: String, name: String) {
            self.table = table
            self.hook = hook
            self.name = name
        }
    }

    public var place: Place { Place(table: table, hook: hook, name: name) }

    /// What `iptables-restore --noflush` is given, and what it changes, in words.
    public struct Restore: Sendable, Equatable {
        public let input: String
        public let changes: [String]
    }

    /// How to turn `current` into `wanted`: each chain that differs is declared (which
    /// empties it) and filled; a missing jump is inserted first in its hook, and repeated or
    /// outdated jumps to the chain deleted; the `unwanted` chains are removed with their
    /// jumps. Nil when everything is in place. No other rule is touched.
    public static func restore(wanted: [IPTablesChain], unwanted: [IPTablesChain], from current: IPTablesSave) -> Restore? {
        var tables: [String: [String]] = [:]
        var changes: [String] = []
        for chain in wanted {
            let jumps = current.rules(chain.table, chain.hook).filter { $0.hasSuffix("-j \(chain.name)") }
            let exact = jumps.filter { $0 == chain.jump }.count
            let outdated = jumps.filter { $0 != chain.jump }
            let chainInPlace = current.hasChain(chain.table, chain.name) && current.rules(chain.table, chain.name) == chain.rules
            guard !chainInPlace || exact != 1 || !outdated.isEmpty else { continue }
            var lines = outdated.map { "-D \(chain.hook) \($0)" }
            if !outdated.isEmpty { changes.append("deleted \(outdated.count) outdated jumps from \(chain.hook) to \(chain.name)") }
            if !chainInPlace {
                lines.append(":\(chain.name) - [0:0]")
                lines += chain.rules.map { "-A \(chain.name) \($0)" }
                changes.append("wrote the \(chain.table) chain \(chain.name)")
            }
            if exact == 0 {
                lines.append("-I \(chain.hook) 1 \(chain.jump)")
                changes.append("added the jump from \(chain.hook) to \(chain.name)")
            }
            if exact > 1 {
                lines += Array(repeating: "-D \(chain.hook) \(chain.jump)", count: exact - 1)
                changes.append("deleted \(exact - 1) repeated jumps from \(chain.hook) to \(chain.name)")
            }
            tables[chain.table, default: []] += lines
        }
        let present = unwanted.filter { current.hasChain($0.table, $0.name) }
        for (table, lines) in removal(of: present.map(\.place), from: current) { tables[table, default: []] += lines }
        changes += present.map { "removed the \($0.table) chain \($0.name), which these settings do not want" }
        return restoreInput(tables).map { Restore(input: $0, changes: changes) }
    }

    /// What `iptables-restore --noflush` must be given to remove these chains, with every
    /// jump to them, from `current`; nil when none is there.
    public static func removal(of chains: [Place], from current: IPTablesSave) -> String? {
        restoreInput(removal(of: chains, from: current))
    }

    private static func removal(of chains: [Place], from current: IPTablesSave) -> [String: [String]] {
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
}
