import Foundation
import Glibc
import Testing
import WeftTestSupport

/// A node namespace for CNI calls: subnet.env and the plugin's files in a directory of the
/// test's own, the real `bridge` and `host-local` plugins, and optionally the BPF dataplane.
final class CNINode {
    let namespaces = Namespaces()
    let files: TemporaryDirectory
    let node: String
    private(set) var pins: PinDirectory?
    static let plugin = URL(fileURLWithPath: WeftProcess.binary).deletingLastPathComponent().appendingPathComponent("weft-cni").path

    static let flannelLines = "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"

    /// - Parameter bpf: a BPF dataplane set up in the node, and subnet.env saying so, as the daemon writes it.
    init(bpf: Bool = false) throws {
        files = try TemporaryDirectory()
        node = try namespaces.add("node")
        try files.write("subnet.env", Self.flannelLines)
        guard bpf else { return }
        pins = try PinDirectory()
        try files.write("subnet.env", Self.flannelLines + "WEFT_DATAPLANE=bpf\nWEFT_PIN_DIR=\(pins!.path)\n")
        try namespaces.topology.addLoneLink(.init(node, "u1", "198.18.0.1/24"))
        try files.write("net-conf.json", #"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}"#)
        try namespaces.must(node, [WeftProcess.binary, "dataplane", "up", "--net-config-path", files.file("net-conf.json"),
                                   "--subnet", "10.244.1.0/24", "--iface", "u1", "--pin-dir", pins!.path, "--dataplane", "bpf"])
    }

    /// The network config; `previousResult` is what the runtime passes to CHECK.
    func config(version: String = "1.0.0", subnetFile: String? = nil, previousResult: String? = nil) -> String {
        #"{"cniVersion":"\#(version)","name":"weft-test","type":"weft-cni","delegate":{"hairpinMode":true},"#
            + (previousResult.map { #""prevResult":\#($0),"# } ?? "")
            + #""subnetFile":"\#(subnetFile ?? files.file("subnet.env"))","dataDir":"\#(files.file("cni"))","#
            + #""ipamDataDir":"\#(files.file("ipam"))","pinDir":"\#(pins?.path ?? files.file("no-pins"))"}"#
    }

    /// Runs weft-cni in the node namespace for a pod namespace.
    func cni(_ command: String, pod: String, id: String? = nil, config: String? = nil, cniPath: String = "/usr/lib/cni") throws -> Command.Result {
        try Command.run(["ip", "netns", "exec", node, "env", "CNI_COMMAND=\(command)", "CNI_CONTAINERID=\(id ?? pod)",
                         "CNI_NETNS=/run/netns/\(pod)", "CNI_IFNAME=eth0", "CNI_PATH=\(cniPath)", CNINode.plugin],
                        input: config ?? self.config())
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "\(text)")
    }
}

@Suite("weft-cni with the real bridge and host-local plugins", .enabled(if: getuid() == 0, "needs root for namespaces"))
struct CNIPluginTests {
    @Test("ADD: an address in the node subnet, the gateway, the cluster route and the MTU; DEL gives it back, twice",
          arguments: ["0.3.1", "0.4.0", "1.0.0"])
    func addAndDelete(version: String) throws {
        let node = try CNINode()
        let pod = try node.namespaces.add("pod")
        let add = try node.cni("ADD", pod: pod, config: node.config(version: version))
        #expect(add.succeeded, "\(add.stdout)\(add.stderr)")
        let result = try node.json(add.stdout)
        #expect(result["cniVersion"] as? String == version)
        let ip = try #require((result["ips"] as? [[String: Any]])?.first)
        let address = try #require(ip["address"] as? String)
        #expect(address.hasPrefix("10.244.1.") && address.hasSuffix("/24"))
        #expect(ip["gateway"] as? String == "10.244.1.1")
        let routes = try Command.must(["ip", "-n", pod, "route"])
        #expect(routes.contains("10.244.0.0/16 via 10.244.1.1 dev eth0"))
        #expect(try Command.must(["ip", "-n", pod, "link", "show", "eth0"]).contains("mtu 1450"))
        let podIP = String(address.prefix { $0 != "/" })
        #expect(FileManager.default.fileExists(atPath: node.files.file("ipam/weft-test/\(podIP)")))

        #expect(try node.cni("DEL", pod: pod, config: node.config(version: version)).succeeded)
        #expect(!FileManager.default.fileExists(atPath: node.files.file("ipam/weft-test/\(podIP)")), "the address is released")
        #expect(try !Command.run(["ip", "-n", pod, "link", "show", "eth0"]).succeeded)
        let again = try node.cni("DEL", pod: pod, config: node.config(version: version))
        #expect(again.succeeded, "a second DEL succeeds: \(again.stdout)")
    }

    @Test("With the BPF dataplane, the endpoint map and the veth's TC filter follow ADD and DEL")
    func bpfEndpoint() throws {
        let node = try CNINode(bpf: true)
        let pod = try node.namespaces.add("pod")
        let add = try node.cni("ADD", pod: pod)
        #expect(add.succeeded, "\(add.stdout)")
        let result = try node.json(add.stdout)
        let interfaces = try #require(result["interfaces"] as? [[String: Any]])
        let veth = try #require(interfaces[1]["name"] as? String)
        let podMAC = try #require(interfaces[2]["mac"] as? String)
        let podIP = try #require(((result["ips"] as? [[String: Any]])?.first?["address"] as? String)?.split(separator: "/").first)
        let endpoints = try node.namespaces.must(node.node, [WeftProcess.binary, "maps", "endpoints", "--pin-dir", node.pins!.path])
        #expect(endpoints.contains(String(podIP)) && endpoints.contains(podMAC), "\(endpoints)")
        #expect(try Command.must(["tc", "-n", node.node, "filter", "show", "dev", veth, "ingress"]).contains("from_pod"))
        let check = try node.cni("CHECK", pod: pod, config: node.config(previousResult: add.stdout))
        #expect(check.succeeded, "\(check.stdout)")

        #expect(try node.cni("DEL", pod: pod).succeeded)
        let after = try node.namespaces.must(node.node, [WeftProcess.binary, "maps", "endpoints", "--pin-dir", node.pins!.path])
        #expect(!after.contains(String(podIP)))
    }

    @Test("The mode is the daemon's word in subnet.env: pins present but WEFT_DATAPLANE=kernel (or a flanneld's file) register nothing; WEFT_DATAPLANE=bpf with the pins gone is a retryable error that allocates nothing")
    func modeFromSubnetEnv() throws {
        let node = try CNINode(bpf: true)
        for (index, text) in [CNINode.flannelLines + "WEFT_DATAPLANE=kernel\n", CNINode.flannelLines].enumerated() {
            try node.files.write("subnet.env", text)
            let pod = try node.namespaces.add("pod\(index)")
            let add = try node.cni("ADD", pod: pod)
            #expect(add.succeeded, "\(add.stdout)")
            let endpoints = try node.namespaces.must(node.node, [WeftProcess.binary, "maps", "endpoints", "--pin-dir", node.pins!.path, "--json"])
            #expect(endpoints.trimmingCharacters(in: .whitespacesAndNewlines) == "[]", "the kernel path registers nothing: \(endpoints)")
            #expect(try node.cni("DEL", pod: pod).succeeded)
        }
        try node.files.write("subnet.env", CNINode.flannelLines + "WEFT_DATAPLANE=bpf\nWEFT_PIN_DIR=\(node.files.file("gone"))\n")
        let pod = try node.namespaces.add("pod2")
        let add = try node.cni("ADD", pod: pod)
        #expect(!add.succeeded)
        let error = try node.json(add.stdout)
        #expect(error["code"] as? Int == 11, "try again later: \(add.stdout)")
        #expect((error["msg"] as? String)?.contains("says this node runs the BPF dataplane") == true, "\(add.stdout)")
        let addresses = (try? FileManager.default.contentsOfDirectory(atPath: node.files.file("ipam/weft-test"))) ?? []
        #expect(addresses.allSatisfy { !$0.hasPrefix("10.244.") }, "nothing allocated: \(addresses)")
        #expect(try node.cni("DEL", pod: pod).succeeded, "DEL succeeds however the node is")
        try node.files.write("subnet.env", CNINode.flannelLines + "WEFT_DATAPLANE=ebpf\n")
        let bad = try node.json(try node.cni("ADD", pod: pod).stdout)
        #expect((bad["details"] as? String)?.contains("WEFT_DATAPLANE=ebpf is not bpf or kernel") == true, "\(bad)")
    }

    @Test("50 pods added and deleted leave no veth, address, map entry or filter behind")
    func fiftyPods() throws {
        let node = try CNINode(bpf: true)
        var pods: [String] = []
        for index in 0..<50 {
            let pod = try node.namespaces.add("p\(index)")
            pods.append(pod)
            let add = try node.cni("ADD", pod: pod)
            #expect(add.succeeded, "pod \(index): \(add.stdout)")
        }
        let endpoints = try node.namespaces.must(node.node, [WeftProcess.binary, "maps", "endpoints", "--pin-dir", node.pins!.path, "--json"])
        #expect(try JSONSerialization.jsonObject(with: Data(endpoints.utf8)) as? [Any] != nil)
        #expect((try JSONSerialization.jsonObject(with: Data(endpoints.utf8)) as? [Any])?.count == 50)
        for pod in pods { #expect(try node.cni("DEL", pod: pod).succeeded) }
        let links = try Command.must(["ip", "-n", node.node, "-o", "link", "show", "type", "veth"])
        #expect(!links.contains("veth"), "\(links)")
        let left = try node.namespaces.must(node.node, [WeftProcess.binary, "maps", "endpoints", "--pin-dir", node.pins!.path, "--json"])
        #expect(left.trimmingCharacters(in: .whitespacesAndNewlines) == "[]")
        let addresses = (try? FileManager.default.contentsOfDirectory(atPath: node.files.file("ipam/weft-test"))) ?? []
        #expect(addresses.allSatisfy { !$0.hasPrefix("10.244.") }, "\(addresses)")
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: node.files.file("cni"))) ?? []
        #expect(leftovers.isEmpty, "\(leftovers)")
    }

    @Test("Malformed config, missing subnet.env, missing delegate: each a spec error that says what to do")
    func errors() throws {
        let node = try CNINode()
        let pod = try node.namespaces.add("pod")
        let cases: [(String, Command.Result, Int, String)] = [
            ("malformed config", try node.cni("ADD", pod: pod, config: "{\"cniVersion\":"), 6, "not JSON"),
            ("missing subnet.env", try node.cni("ADD", pod: pod, config: node.config(subnetFile: node.files.file("absent.env"))), 11,
             "the Weft daemon is not running on this node yet"),
            ("missing delegate", try node.cni("ADD", pod: pod, cniPath: node.files.path), 7, "delegate plugin bridge not found in CNI_PATH"),
        ]
        for (name, result, code, text) in cases {
            #expect(!result.succeeded, "\(name)")
            let error = try node.json(result.stdout)
            #expect(error["code"] as? Int == code, "\(name): \(result.stdout)")
            #expect("\(error["msg"] ?? "") \(error["details"] ?? "")".contains(text), "\(name): \(result.stdout)")
        }
    }

    @Test("The delegate starts with no signal blocked, and its failure and status come back")
    func delegateStartsClean() throws {
        let node = try CNINode()
        let pod = try node.namespaces.add("pod")
        let plugins = try TemporaryDirectory()
        // A stand-in `bridge` that records its signal state, then fails as a CNI plugin does.
        let bridge = try plugins.write("bridge", """
            #!/bin/sh
            grep -E '^Sig(Blk|Ign)' /proc/self/status > \(plugins.file("signals"))
            echo '{"cniVersion":"1.0.0","code":7,"msg":"stand-in bridge refuses"}'
            exit 7
            """)
        chmod(bridge, 0o755)
        let add = try node.cni("ADD", pod: pod, cniPath: plugins.path)
        #expect(!add.succeeded)
        let error = try node.json(add.stdout)
        #expect(error["code"] as? Int == 100, "weft-cni's code for a failed delegate: \(add.stdout)")
        #expect("\(error["msg"] ?? "") \(error["details"] ?? "")".contains("stand-in bridge refuses"), "\(add.stdout)")
        let signals = try String(contentsOfFile: plugins.file("signals"), encoding: .utf8)
        #expect(signals.contains("SigBlk:\t0000000000000000"), "\(signals)")
    }
}
