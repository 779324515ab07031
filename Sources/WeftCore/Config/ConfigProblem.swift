/// One thing wrong with a `net-conf.json`: the field, the value found, and the rule it breaks.
public struct ConfigProblem: Sendable, Equatable, CustomStringConvertible {
    /// The field's path as Flannel names it, such as `Backend.VNI`, or `(document)`.
    public let field: String
    /// The offending value as it appeared, or nil when the field is missing.
    public let value: String?
    /// What the field must be.
    public let rule: String

    public init(field: String, value: String?, rule: String) {
        self.field = field
        self.value = value
        self.rule = rule
    }

    public var description: String {
        if let value { "\(field): \(value): \(rule)" } else { "\(field): \(rule)" }
    }
}

/// A `net-conf.json` that cannot be used, with every problem found in it.
public struct NetworkConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public let problems: [ConfigProblem]

    public var description: String {
        "invalid network config:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}

/// A config that parsed, and what the parser noticed but accepted.
public struct ParsedNetworkConfig: Sendable, Equatable {
    public let config: NetworkConfig
    /// Things Flannel accepts silently that a user should still hear about.
    public let warnings: [String]
}
