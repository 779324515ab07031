/// Flannel's spelling of a subnet in store keys: `10.244.3.0-24` for `10.244.3.0/24`.
public enum SubnetKey {
    public static func format(_ subnet: IPv4Prefix) -> String {
        "\(subnet.network)-\(subnet.length)"
    }

    /// Reads `a.b.c.d-n`; nil when the text is not that shape or has host bits set.
    public static func parse(_ text: some StringProtocol) -> IPv4Prefix? {
        guard let dash = text.lastIndex(of: "-") else { return nil }
        let address = text[..<dash]
        let length = text[text.index(after: dash)...]
        return IPv4Prefix("\(address)/\(length)")
    }
}
