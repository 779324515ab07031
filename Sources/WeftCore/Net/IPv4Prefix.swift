/// An IPv4 network: an address and a prefix length, such as `10.244.0.0/16`.
///
/// The address is always the network address: initialisers either mask the host bits
/// (`masking:`) or refuse them.
public struct IPv4Prefix: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let network: IPv4Address
    public let length: Int

    /// Creates a prefix whose address has no host bits set; nil otherwise.
    public init?(network: IPv4Address, length: Int) {
        guard (0...32).contains(length), network.value & ~Self.mask(length) == 0 else { return nil }
        self.network = network
        self.length = length
    }

    /// Creates the prefix containing `address`, clearing its host bits.
    public init(masking address: IPv4Address, length: Int) {
        precondition((0...32).contains(length), "prefix length \(length) out of 0...32")
        network = IPv4Address(address.value & Self.mask(length))
        self.length = length
    }

    /// Parses `a.b.c.d/n`. Host bits must be clear; use `parseMasking` to accept them.
    public init?(_ text: some StringProtocol) {
        guard let (address, length) = Self.split(text) else { return nil }
        self.init(network: address, length: length)
    }

    /// Parses `a.b.c.d/n` and clears host bits, as Go's `net.ParseCIDR` does for the network.
    /// Returns the prefix and whether bits had to be cleared.
    public static func parseMasking(_ text: some StringProtocol) -> (prefix: IPv4Prefix, hadHostBits: Bool)? {
        guard let (address, length) = split(text) else { return nil }
        let prefix = IPv4Prefix(masking: address, length: length)
        return (prefix, prefix.network != address)
    }

    private static func split(_ text: some StringProtocol) -> (IPv4Address, Int)? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPv4Address(parts[0]),
              parts[1].allSatisfy(\.isNumber), parts[1].count <= 2,
              let length = Int(parts[1]), (0...32).contains(length)
        else { return nil }
        return (address, length)
    }

    /// The netmask for a prefix length, host order.
    public static func mask(_ length: Int) -> UInt32 {
        length == 0 ? 0 : UInt32.max << UInt32(32 - length)
    }

    public var mask: UInt32 { Self.mask(length) }

    /// How many addresses the prefix spans.
    public var size: UInt64 { UInt64(1) << UInt64(32 - length) }

    /// The last address in the prefix (the broadcast address for length < 31).
    public var lastAddress: IPv4Address { IPv4Address(network.value | ~mask) }

    public func contains(_ address: IPv4Address) -> Bool {
        address.value & mask == network.value
    }

    /// Whether `other` lies wholly inside this prefix.
    public func contains(_ other: IPv4Prefix) -> Bool {
        other.length >= length && contains(other.network)
    }

    public func overlaps(_ other: IPv4Prefix) -> Bool {
        contains(other.network) || other.contains(network)
    }

    /// The first address a host may use: `10.244.1.1` for `10.244.1.0/24`.
    public var firstHost: IPv4Address {
        length >= 31 ? network : IPv4Address(network.value + 1)
    }

    /// The prefix of the same length that follows this one, or nil past 255.255.255.255.
    public var next: IPv4Prefix? {
        let nextValue = UInt64(network.value) + size
        guard nextValue <= UInt64(UInt32.max) else { return nil }
        return IPv4Prefix(network: IPv4Address(UInt32(nextValue)), length: length)
    }

    public var description: String { "\(network)/\(length)" }

    public static func < (lhs: IPv4Prefix, rhs: IPv4Prefix) -> Bool {
        (lhs.network, lhs.length) < (rhs.network, rhs.length)
    }
}
