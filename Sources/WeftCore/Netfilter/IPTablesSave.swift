/// The output of `iptables-save`: for each table, its chains and their rules in order.
public struct IPTablesSave: Sendable, Equatable {
    private var chains: [String: [String: [String]]] = [:]

    public init(_ text: String) {
        var table = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("*") {
                table = String(line.dropFirst())
                chains[table, default: [:]] = chains[table] ?? [:]
            } else if line.hasPrefix(":") {
                let name = String(line.dropFirst().prefix { $0 != " " })
                chains[table, default: [:]][name] = chains[table]?[name] ?? []
            } else if line.hasPrefix("-A ") {
                let rest = line.dropFirst(3)
                let name = String(rest.prefix { $0 != " " })
                let rule = String(rest.dropFirst(name.count).drop { $0 == " " })
                chains[table, default: [:]][name, default: []].append(rule)
            }
        }
    }

    public func hasChain(_ table: String, _ name: String) -> Bool {
        chains[table]?[name] != nil
    }

    /// The rules of a chain, as printed after `-A <chain> `; empty when it has none.
    public func rules(_ table: String, _ name: String) -> [String] {
        chains[table]?[name] ?? []
    }
}
