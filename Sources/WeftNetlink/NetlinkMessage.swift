import CNetlink

/// rtnetlink messages as bytes: a request being built, and the messages and attributes
/// read back. Pure encoding; `NetlinkSocket` does the I/O.

/// Netlink pads every header and attribute to four bytes.
func netlinkAligned(_ length: Int) -> Int { (length + 3) & ~3 }

/// A request: the 16-byte netlink header, the family header (`ifinfomsg`, `rtmsg`, ...)
/// and type-length-value attributes, which may nest.
struct NetlinkRequest {
    private(set) var bytes: [UInt8]
    private var openNests: [Int] = []

    init(type: UInt16, flags: Int32, header: [UInt8]) {
        bytes = [UInt8](repeating: 0, count: 16)
        bytes.write(UInt16(type), at: 4)
        bytes.write(UInt16(truncatingIfNeeded: flags), at: 6)
        bytes += header
        bytes += [UInt8](repeating: 0, count: netlinkAligned(header.count) - header.count)
    }

    /// The finished message with its length and sequence number filled in.
    func encoded(sequence: UInt32) -> [UInt8] {
        precondition(openNests.isEmpty, "unclosed nested attribute")
        var message = bytes
        message.write(UInt32(message.count), at: 0)
        message.write(sequence, at: 8)
        return message
    }

    mutating func append(_ type: Int32, _ payload: [UInt8]) {
        let start = bytes.count
        bytes += [0, 0, 0, 0]
        bytes.write(UInt16(4 + payload.count), at: start)
        bytes.write(UInt16(type), at: start + 2)
        bytes += payload
        bytes += [UInt8](repeating: 0, count: netlinkAligned(payload.count) - payload.count)
    }

    mutating func append(_ type: Int32, uint32 value: UInt32) { append(type, value.littleEndianBytes) }
    mutating func append(_ type: Int32, uint8 value: UInt8) { append(type, [value]) }
    /// Ports in netlink are big-endian.
    mutating func append(_ type: Int32, port value: UInt16) { append(type, [UInt8(value >> 8), UInt8(value & 0xff)]) }
    mutating func append(_ type: Int32, string: String) { append(type, Array(string.utf8) + [0]) }

    /// Opens a nested attribute; everything appended until `endNest()` goes inside it.
    mutating func beginNest(_ type: Int32) {
        openNests.append(bytes.count)
        bytes += [0, 0, 0, 0]
        bytes.write(UInt16(type), at: bytes.count - 2)
    }

    mutating func endNest() {
        let start = openNests.removeLast()
        bytes.write(UInt16(bytes.count - start), at: start)
    }
}

/// One message read from the kernel.
struct NetlinkMessage {
    let type: UInt16
    let flags: UInt16
    let sequence: UInt32
    /// Everything after the netlink header: the family header, then attributes.
    let payload: ArraySlice<UInt8>

    /// Splits a datagram into its messages; nil if a length field is inconsistent.
    static func parse(_ datagram: [UInt8]) -> [NetlinkMessage]? {
        var messages: [NetlinkMessage] = []
        var offset = 0
        while offset + 16 <= datagram.count {
            let length = Int(datagram.read(UInt32.self, at: offset))
            guard length >= 16, offset + length <= datagram.count else { return nil }
            messages.append(NetlinkMessage(type: datagram.read(UInt16.self, at: offset + 4),
                                           flags: datagram.read(UInt16.self, at: offset + 6),
                                           sequence: datagram.read(UInt32.self, at: offset + 8),
                                           payload: datagram[(offset + 16)..<(offset + length)]))
            offset += netlinkAligned(length)
        }
        return messages
    }

    /// The errno of an NLMSG_ERROR message (0 is an acknowledgement).
    var errorCode: Int32 {
        payload.count >= 4 ? -Int32(bitPattern: Array(payload).read(UInt32.self, at: 0)) : 0
    }

    /// The attributes after a family header of `headerSize` bytes.
    func attributes(after headerSize: Int) -> NetlinkAttributes {
        NetlinkAttributes(Array(payload.dropFirst(netlinkAligned(headerSize))))
    }

    func header(_ size: Int) -> [UInt8] { Array(payload.prefix(size)) }
}

/// Attributes by type; nested ones parse on demand. Later duplicates win, as in the kernel.
struct NetlinkAttributes {
    private var values: [UInt16: [UInt8]] = [:]

    init(_ bytes: [UInt8]) {
        var offset = 0
        while offset + 4 <= bytes.count {
            let length = Int(bytes.read(UInt16.self, at: offset))
            guard length >= 4, offset + length <= bytes.count else { break }
            let type = bytes.read(UInt16.self, at: offset + 2) & 0x3fff
            values[type] = Array(bytes[(offset + 4)..<(offset + length)])
            offset += netlinkAligned(length)
        }
    }

    subscript(_ type: Int32) -> [UInt8]? { values[UInt16(type)] }

    func uint32(_ type: Int32) -> UInt32? {
        guard let bytes = self[type], bytes.count >= 4 else { return nil }
        return bytes.read(UInt32.self, at: 0)
    }

    func uint8(_ type: Int32) -> UInt8? { self[type]?.first }

    func port(_ type: Int32) -> UInt16? {
        guard let bytes = self[type], bytes.count >= 2 else { return nil }
        return UInt16(bytes[0]) << 8 | UInt16(bytes[1])
    }

    func string(_ type: Int32) -> String? {
        guard let bytes = self[type] else { return nil }
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    func nested(_ type: Int32) -> NetlinkAttributes? { self[type].map(NetlinkAttributes.init) }
}

extension FixedWidthInteger {
    var littleEndianBytes: [UInt8] { withUnsafeBytes(of: littleEndian) { Array($0) } }
}

extension Array where Element == UInt8 {
    /// A little-endian integer at a byte offset: netlink's host order on the machines Weft runs on.
    func read<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        var value: T = 0
        for index in 0..<MemoryLayout<T>.size { value |= T(truncatingIfNeeded: self[offset + index]) << (8 * index) }
        return value
    }

    mutating func write<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        for (index, byte) in value.littleEndianBytes.enumerated() { self[offset + index] = byte }
    }
}

extension NetlinkMessage {
    /// The kernel's mark on a dump's messages when the table changed while it was read.
    static let dumpInterruptedFlag = UInt16(NLM_F_DUMP_INTR)

    /// Whether any message of a dump says it is incomplete.
    static func dumpWasInterrupted(_ messages: [NetlinkMessage]) -> Bool {
        messages.contains { $0.flags & dumpInterruptedFlag != 0 }
    }
}
