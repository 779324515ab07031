import Foundation
import Testing
import WeftCNI
import WeftTestSupport

@Suite("weft-cni's checks on what the runtime passes")
struct CNIEnvironmentTests {
    static let plugin = URL(fileURLWithPath: WeftProcess.binary).deletingLastPathComponent().appendingPathComponent("weft-cni").path

    @Test("Container IDs by the specification's rule; anything that could name another path is refused with code 4")
    func containerIDs() throws {
        for good in ["a", "0123abc", "pod_1.two-3", String(repeating: "f", count: 64)] {
            #expect(try CNIEnvironment.containerID(good) == good)
        }
        for bad in [nil, "", ".", "..", "../x", "a/b", "/etc", ".hidden", "-x", "a b", "a\0b", "é", String(repeating: "f", count: 300)] {
            let error = #expect(throws: CNIError.self, "\(String(describing: bad))") { try CNIEnvironment.containerID(bad) }
            #expect(error?.code == CNIError.invalidEnvironment)
            #expect(error?.message.contains("CNI_CONTAINERID") == true)
        }
    }

    @Test("Interface names as Linux takes them; unset is eth0")
    func interfaceNames() throws {
        #expect(try CNIEnvironment.interfaceName(nil) == "eth0")
        for good in ["eth0", "net1", "a", "fifteen_chars_x"] { #expect(try CNIEnvironment.interfaceName(good) == good) }
        for bad in ["", ".", "..", "a/b", "eth0:1", "eth 0", "sixteen_chars_xx", "a\nb"] {
            let error = #expect(throws: CNIError.self, "\(bad)") { try CNIEnvironment.interfaceName(bad) }
            #expect(error?.code == CNIError.invalidEnvironment)
            #expect(error?.message.contains("CNI_IFNAME") == true)
        }
    }

    @Test("A delegate type is a plugin name, never a path; files stay in the data directory")
    func pluginNamesAndFiles() throws {
        #expect(try CNIEnvironment.pluginName("bridge") == "bridge")
        for bad in ["", ".", "..", "../../bin/sh", "/bin/sh", "x/y"] {
            #expect(throws: CNIError.self, "\(bad)") { try CNIEnvironment.pluginName(bad) }
        }
        #expect(CNIEnvironment.file(in: "/var/lib/cni/flannel", container: "abc") == "/var/lib/cni/flannel/abc")
        #expect(CNIEnvironment.file(in: "/var/lib/cni/flannel/", container: "abc", suffix: ".weft-endpoint") == "/var/lib/cni/flannel/abc.weft-endpoint")
        #expect(CNIEnvironment.file(in: "/var/lib/cni/flannel", container: "..") == nil)
    }

    @Test("DEL with CNI_CONTAINERID=.. removes nothing and says why; CNI_IFNAME with a slash is refused")
    func hostileDelete() throws {
        let files = try TemporaryDirectory()
        let data = files.file("cni/flannel")
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        try files.write("cni/other-pods-allocation", "10.244.1.7")
        let config = #"{"cniVersion":"1.0.0","name":"cbr0","type":"weft-cni","dataDir":"\#(data)","subnetFile":"\#(files.file("none.env"))","pinDir":"\#(files.file("nopins"))"}"#
        for (variable, value) in [("CNI_CONTAINERID", ".."), ("CNI_CONTAINERID", "../flannel"), ("CNI_IFNAME", "../eth0")] {
            var environment = ["CNI_COMMAND": "DEL", "CNI_CONTAINERID": "pod1", "CNI_NETNS": "/run/netns/none", "CNI_IFNAME": "eth0", "CNI_PATH": "/usr/lib/cni"]
            environment[variable] = value
            let result = try Command.run(["env", "-i"] + environment.map { "\($0.key)=\($0.value)" } + [Self.plugin], input: config)
            #expect(result.status == 1, "\(variable)=\(value): \(result.stdout)")
            #expect(result.stdout.contains(#""code":4"#) && result.stdout.contains(variable), "\(result.stdout)")
            #expect(FileManager.default.fileExists(atPath: data), "the data directory is still there")
            #expect(FileManager.default.fileExists(atPath: files.file("cni/other-pods-allocation")), "and what lies beside it")
        }
    }

    @Test("Standard input is read up to 1 MiB: more is refused at once, without taking the memory")
    func boundedInput() throws {
        let huge = String(repeating: " ", count: 8 << 20)
        let result = try Command.run(["env", "CNI_COMMAND=ADD", "CNI_CONTAINERID=pod1", "CNI_IFNAME=eth0", Self.plugin], input: huge)
        #expect(result.status == 1)
        #expect(result.stdout.contains("larger than 1024 KiB") && result.stdout.contains(#""code":7"#), "\(result.stdout.prefix(300))")
    }
}
