import Testing
@testable import WeftCore

@Suite struct AddressTests {
    @Test func parsesDottedQuads() {
        #expect(IPv4Address("10.244.1.0") == IPv4Address(10, 244, 1, 0))
        #expect(IPv4Address("255.255.255.255")?.value == UInt32.max)
        for bad in ["10.244.1", "10.244.1.256", "10.244.01.0", "a.b.c.d", "10.244.1.0.", "", " 10.0.0.1"] {
            #expect(IPv4Address(bad) == nil, "\(bad) must not parse")
        }
    }

    @Test func prefixesRefuseHostBitsUnlessMasking() throws {
        #expect(IPv4Prefix("10.244.1.5/24") == nil)
        let (prefix, hadHostBits) = try #require(IPv4Prefix.parseMasking("10.244.1.5/16"))
        #expect(prefix == IPv4Prefix("10.244.0.0/16"))
        #expect(hadHostBits)
        #expect(IPv4Prefix("10.0.0.0/33") == nil)
    }

    @Test func prefixArithmetic() throws {
        let network = try #require(IPv4Prefix("10.244.0.0/16"))
        let subnet = try #require(IPv4Prefix("10.244.3.0/24"))
        #expect(network.contains(subnet))
        #expect(!subnet.contains(network))
        #expect(subnet.next == IPv4Prefix("10.244.4.0/24"))
        #expect(IPv4Prefix("255.255.255.0/24")?.next == nil)
        #expect(subnet.firstHost == IPv4Address("10.244.3.1"))
        #expect(network.lastAddress == IPv4Address("10.244.255.255"))
        #expect(IPv4Prefix("10.244.2.0/23")!.overlaps(subnet))
        #expect(!IPv4Prefix("10.244.4.0/23")!.overlaps(subnet))
        #expect(IPv4Prefix("0.0.0.0/0")!.contains(subnet))
    }

    @Test func macAddresses() throws {
        let mac = try #require(MACAddress("A6:12:34:56:78:9a"))
        #expect(mac.description == "a6:12:34:56:78:9a")
        #expect(MACAddress("a6:12:34:56:78") == nil)
        #expect(MACAddress("a6:12:34:56:78:9g") == nil)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            let random = MACAddress.randomLocal(using: &generator)
            #expect(random.bytes[0] & 0x01 == 0, "unicast")
            #expect(random.bytes[0] & 0x02 == 0x02, "locally administered")
        }
    }
}
