import Testing
@testable import WeftNetlink

@Suite("Netlink message encoding")
struct NetlinkCodecTests {
    @Test("Attributes are padded to four bytes and nests carry their total length")
    func nestedAttributes() {
        var request = NetlinkRequest(type: 16, flags: 0x5, header: [1, 2, 3])
        request.beginNest(18)
        request.append(1, string: "vxlan")
        request.endNest()
        let bytes = request.encoded(sequence: 7)
        // 16-byte header, 3-byte family header padded to 4, nest header 4 + "vxlan\0" attribute (4 + 6, padded to 12).
        #expect(bytes.count == 16 + 4 + 4 + 12)
        #expect(bytes.read(UInt32.self, at: 0) == UInt32(bytes.count))
        #expect(bytes.read(UInt16.self, at: 4) == 16)
        #expect(bytes.read(UInt16.self, at: 6) == 0x5)
        #expect(bytes.read(UInt32.self, at: 8) == 7)
        #expect(bytes.read(UInt16.self, at: 20) == 4 + 12)
        #expect(bytes.read(UInt16.self, at: 22) == 18)
        #expect(bytes.read(UInt16.self, at: 24) == 10)
        #expect(Array(bytes[28..<34]) == Array("vxlan".utf8) + [0])
    }

    @Test("Parsing reads back what encoding wrote, nested and big-endian ports included")
    func roundTrip() throws {
        var request = NetlinkRequest(type: 16, flags: 0, header: [0, 0, 0, 0])
        request.append(3, uint32: 1450)
        request.beginNest(18)
        request.append(15, port: 8472)
        request.endNest()
        let messages = try #require(NetlinkMessage.parse(request.encoded(sequence: 1)))
        #expect(messages.count == 1)
        let attributes = messages[0].attributes(after: 4)
        #expect(attributes.uint32(3) == 1450)
        #expect(attributes.nested(18)?.port(15) == 8472)
        #expect(attributes.nested(18)?[15] == [0x21, 0x18])
    }

    @Test("A datagram whose length fields lie is rejected, not read past its end")
    func truncated() {
        var bytes = NetlinkRequest(type: 16, flags: 0, header: []).encoded(sequence: 1)
        bytes.write(UInt32(64), at: 0)
        #expect(NetlinkMessage.parse(bytes) == nil)
    }

    @Test("An error message carries the errno, an acknowledgement zero")
    func errorCode() throws {
        var error = NetlinkRequest(type: 2, flags: 0, header: [0xef, 0xff, 0xff, 0xff]).encoded(sequence: 1)
        let parsed = try #require(NetlinkMessage.parse(error))
        #expect(parsed[0].errorCode == 17)
        error.write(UInt32(0), at: 16)
        #expect(NetlinkMessage.parse(error)?[0].errorCode == 0)
    }
}
