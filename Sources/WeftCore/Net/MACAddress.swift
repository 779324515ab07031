/// A 48-bit Ethernet address.
public struct MACAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 6 else { return nil }
        self.bytes = bytes
    }

    /// 00:00:00:00:00:00, where an entry needs a MAC but none matters.
    public static let zero = MACAddress(bytes: [0, 0, 0, 0, 0, 0])!

    /// Parses `aa:bb:cc:dd:ee:ff` (either case).
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard part.count == 2, let byte = UInt8(part, radix: 16) else { return nil }
            bytes.append(byte)
        }
        self.bytes = bytes
    }

    /// A random locally administered unicast address, as the kernel gives a new vxlan device.
    public static func randomLocal(using generator: inout some RandomNumberGenerator) -> MACAddress {
        var bytes = (0..<6).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[0] = bytes[0] & 0xfe | 0x02
        return MACAddress(bytes: bytes)!
    }

    public var description: String {
        bytes.map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined(separator: ":")
    }

    public static func < (lhs: MACAddress, rhs: MACAddress) -> Bool {
        lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }
}
