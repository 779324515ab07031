import Testing
import WeftCore

@Suite("weft-cni's pod records")
struct PodRecordTests {
    @Test("A record reads back as written; the address alone (an older weft-cni's) gives the address and no record")
    func roundTrip() throws {
        let record = PodRecord(address: IPv4Address("10.244.1.5")!, hostInterface: "veth1a2b3c4d", podMAC: MACAddress("0a:58:0a:f4:01:05")!)
        #expect(record.rendered == #"{"address":"10.244.1.5","hostInterface":"veth1a2b3c4d","podMAC":"0a:58:0a:f4:01:05"}"# + "\n")
        let parsed = try PodRecord.parse(record.rendered)
        #expect(parsed.address == record.address && parsed.record == record)
        let old = try PodRecord.parse("10.244.1.5\n")
        #expect(old.address == IPv4Address("10.244.1.5")! && old.record == nil)
    }

    @Test("A broken or hostile record is named by its field", arguments: [
        (#"{"hostInterface":"veth1","podMAC":"0a:58:0a:f4:01:05"}"#, "\"address\""),
        (#"{"address":"10.244.1.5","hostInterface":"../../etc","podMAC":"0a:58:0a:f4:01:05"}"#, "\"hostInterface\""),
        (#"{"address":"10.244.1.5","hostInterface":"a-name-far-too-long-for-linux","podMAC":"0a:58:0a:f4:01:05"}"#, "\"hostInterface\""),
        (#"{"address":"10.244.1.5","hostInterface":"veth1","podMAC":"nope"}"#, "\"podMAC\""),
        ("garbage", "neither an address nor a JSON object"),
    ])
    func badRecords(text: String, named: String) {
        #expect { try PodRecord.parse(text) } throws: { "\($0)".contains(named) }
    }
}
