import Testing
import WeftCore
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

    @Test("Weft's routes carry its protocol number, and a route read back says who installed it")
    func routeProtocol() throws {
        let route = Route(destination: IPv4Prefix("10.244.2.0/24")!, gateway: IPv4Address("198.18.0.2")!, interfaceIndex: 3)
        let header = NetlinkSocket.routeHeader(for: route)
        #expect(header[5] == Route.weftProtocol)
        var request = NetlinkRequest(type: 24 /* RTM_NEWROUTE */, flags: 0, header: header)
        request.append(1 /* RTA_DST */, [10, 244, 2, 0])
        request.append(5 /* RTA_GATEWAY */, [198, 18, 0, 2])
        request.append(4 /* RTA_OIF */, uint32: 3)
        var bytes = request.encoded(sequence: 1)
        let ours = try #require(NetlinkMessage.parse(bytes).flatMap { NetlinkSocket.decodeRoute($0[0]) })
        #expect(ours == route && ours.isWefts)
        bytes[16 + 5] = 4 // RTPROT_STATIC: an operator's `ip route add`
        let theirs = try #require(NetlinkMessage.parse(bytes).flatMap { NetlinkSocket.decodeRoute($0[0]) })
        #expect(!theirs.isWefts)
        #expect(theirs.description == "10.244.2.0/24 via 198.18.0.2 dev 3 proto 4")
    }

    @Test("A dump the kernel marks interrupted is known to be incomplete")
    func interruptedDump() throws {
        let complete = try #require(NetlinkMessage.parse(NetlinkRequest(type: 24, flags: 0x2 /* NLM_F_MULTI */, header: []).encoded(sequence: 1)))
        #expect(!NetlinkMessage.dumpWasInterrupted(complete))
        let interrupted = try #require(NetlinkMessage.parse(NetlinkRequest(type: 24, flags: 0x2 | 0x10 /* NLM_F_DUMP_INTR */, header: []).encoded(sequence: 1)))
        #expect(NetlinkMessage.dumpWasInterrupted(complete + interrupted))
    }
}
