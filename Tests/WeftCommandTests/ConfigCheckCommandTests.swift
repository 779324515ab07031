import Foundation
import Testing
import WeftTestSupport

@Suite struct ConfigCheckCommandTests {
    let directory: TemporaryDirectory

    // A failure here fails each test with the error, where `try!` would crash the runner.
    init() throws {
        directory = try TemporaryDirectory()
    }

    @Test func aValidFileIsSummarisedWithItsDefaults() throws {
        let file = try directory.write("net-conf.json", #"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}"#)
        let result = try WeftProcess.run(["config", "check", file])
        #expect(result.status == 0)
        #expect(result.stdout.contains("SubnetLen  24"))
        #expect(result.stdout.contains("SubnetMin  10.244.1.0"))
        #expect(result.stdout.contains("SubnetMax  10.244.255.0 (255 node subnets in all)"))
        #expect(result.stdout.contains("vxlan: VNI 1, UDP port 8472"))
    }

    @Test func jsonPrintsTheEffectiveConfigWithFlannelsNames() throws {
        let file = try directory.write("net-conf.json", #"{"network":"10.1.0.0/16","backend":{"type":"host-gw"}}"#)
        let result = try WeftProcess.run(["config", "check", "--json", file])
        #expect(result.status == 0)
        #expect(result.stdout == #"{"Network":"10.1.0.0/16","SubnetLen":24,"SubnetMin":"10.1.1.0","SubnetMax":"10.1.255.0","Backend":{"Type":"host-gw"}}"# + "\n")
    }

    @Test func anInvalidFileExitsNonZeroWithOneLinePerProblem() throws {
        let file = try directory.write("bad.json", #"{"Network":"10.244.0.0/16","SubnetLen":17,"Backend":{"Type":"vxlan","VNI":"one"}}"#)
        let result = try WeftProcess.run(["config", "check", file])
        #expect(result.status != 0)
        #expect(result.stderr.contains("\(file): SubnetLen: 17: must be at least the Network's prefix length + 2 (18)"))
        #expect(result.stderr.contains(#"\#(file): Backend.VNI: "one": must be a whole number from 0 to 16777215"#))
        #expect(result.stdout.isEmpty)
    }

    @Test func aMissingFileIsNamed() throws {
        let result = try WeftProcess.run(["config", "check", directory.file("absent.json")])
        #expect(result.status != 0)
        #expect(result.stderr.contains("cannot read network config \(directory.file("absent.json")): no such file"))
    }
}
