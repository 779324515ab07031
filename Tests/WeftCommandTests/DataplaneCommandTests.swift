import Foundation
import Glibc
import Testing
import WeftTestSupport

@Suite("weft dataplane probe and compile")
struct DataplaneCommandTests {
    @Test("The probe names what is missing and how to get it, and fails")
    func probeWithoutPrograms() throws {
        let empty = try TemporaryDirectory()
        let result = try WeftProcess.run(["dataplane", "probe", "--bpf-dir", empty.path])
        #expect(result.status == 1)
        #expect(result.stdout.contains("bpf: not usable"))
        #expect(result.stdout.contains("compiled BPF programs missing in \(empty.path): from_pod, from_overlay, from_underlay, to_overlay"))
        #expect(result.stdout.contains("weft dataplane compile"))
    }

    @Test("The probe passes on this machine as root, with the built programs", .enabled(if: getuid() == 0))
    func probeAsRoot() throws {
        let result = try WeftProcess.run(["dataplane", "probe", "--json"])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        // The kernel names the flag that lets from_underlay take aggregates exactly when it has it.
        let btf = try Data(contentsOf: URL(fileURLWithPath: "/sys/kernel/btf/vmlinux"))
        let aggregates = btf.range(of: Data("BPF_F_ADJ_ROOM_DECAP_L4_UDP".utf8)) != nil
        let netkit = try Command.run(["sh", "-c", "zcat /proc/config.gz | grep -qE '^CONFIG_NETKIT=[ym]'"]).succeeded
        #expect(result.stdout == #"{"bpf":true,"reasons":[],"vxlan_aggregates_in_bpf":\#(aggregates),"netkit":\#(netkit)}"# + "\n")
    }

    @Test("weft compiles the programs itself, and skips the work when they are up to date")
    func compileOnDemand() throws {
        let output = try TemporaryDirectory()
        let first = try WeftProcess.run(["dataplane", "compile", "--output", output.path])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("compiled 4 programs into \(output.path)"))
        for name in ["from_pod", "from_overlay", "from_underlay", "to_overlay"] {
            let object = try #require(FileManager.default.contents(atPath: "\(output.path)/\(name).bpf.o"))
            #expect(object.prefix(4) == Data([0x7f, 0x45, 0x4c, 0x46]), "\(name) is an ELF object")
        }
        let second = try WeftProcess.run(["dataplane", "compile", "--output", output.path])
        #expect(second.stdout.contains("up to date"))
    }

    @Test("The compiler starts with no signal blocked, and its diagnostics come back")
    func compilerStartsClean() throws {
        let output = try TemporaryDirectory()
        let tools = try TemporaryDirectory()
        let clang = try tools.write("clang", """
            #!/bin/sh
            grep SigBlk /proc/self/status > \(tools.file("signals"))
            echo "stand-in clang: error" >&2
            exit 1
            """)
        chmod(clang, 0o755)
        let result = try Command.run(["env", "CLANG=\(clang)", WeftProcess.binary, "dataplane", "compile", "--force", "--output", output.path])
        #expect(result.status != 0)
        #expect(result.stderr.contains("stand-in clang: error"), "\(result.stderr)")
        #expect(try String(contentsOfFile: tools.file("signals"), encoding: .utf8) == "SigBlk:\t0000000000000000\n")
    }
}

@Suite("weft daemon reads flanneld's command lines")
struct DaemonCommandLineTests {
    @Test("flanneld's spellings parse: the only complaint is the deliberately bad value")
    func flanneldSpellingsParse() throws {
        let result = try WeftProcess.run(["daemon", "-iface=eth0", "--ip-masq=true", "-v=2", "-subnet-file", "/nonexistent/subnet.env",
                                          "--iptables-forward-rules=false", "-iptables-resync=10", "--ip-masq-fully-random-disable=T",
                                          "--dataplane", "nonsense"])
        #expect(result.status != 0)
        let complaint = String(result.stderr.split(separator: "\n").first ?? "")
        #expect(complaint.contains("nonsense"), "\(result.stderr)")
        for flag in ["iface", "ip-masq", "subnet-file", "iptables", "random"] {
            #expect(!complaint.contains(flag), "\(result.stderr)")
        }
    }

    /// Command lines from flanneld's documentation, its systemd examples and kube-flannel.yml.
    @Test("flanneld's documented command lines are ones weft daemon takes", arguments: [
        ["--etcd-endpoints=http://127.0.0.1:2379", "--iface=eth0", "--ip-masq"],
        ["--ip-masq"],
        ["-etcd-endpoints=https://10.0.0.1:2379,https://10.0.0.2:2379", "-etcd-prefix=/coreos.com/network", "-etcd-cafile=/etc/ssl/ca.pem",
         "-etcd-certfile=/etc/ssl/node.pem", "-etcd-keyfile=/etc/ssl/node-key.pem", "-iface=eth1", "-ip-masq=true", "-v=2"],
        ["--etcd-endpoints=http://10.0.0.1:2379", "--iface-regex=^enp", "--public-ip=10.0.0.5", "--subnet-file=/run/flannel/subnet.env",
         "--healthz-ip=0.0.0.0", "--healthz-port=8285", "--iptables-resync=10", "--iptables-forward-rules=false", "--subnet-lease-renew-margin=30"],
        ["--etcd-endpoints=http://10.0.0.1:2379", "--iface-can-reach=10.0.0.1", "--net-config-path=/etc/kube-flannel/net-conf.json",
         "--ip-masq-fully-random-disable"],
        ["--ip-masq", "--kube-subnet-mgr"],
        ["--ip-masq", "--kube-subnet-mgr", "--kubeconfig-file=/etc/kubernetes/flannel.conf", "--kube-annotation-prefix=example.com/net",
         "--set-node-network-unavailable=false"],
    ])
    func documentedCommandLines(_ arguments: [String]) throws {
        let result = try WeftProcess.run(["daemon"] + arguments + ["--check-command-line"])
        #expect(result.status == 0, "\(arguments): \(result.stderr)")
        #expect(result.stdout.hasPrefix("weft daemon: the command line is good"), "\(result.stdout)")
    }

    @Test("A flanneld flag Weft lacks is named, with what to use instead")
    func unsupportedFlag() throws {
        let result = try WeftProcess.run(["daemon", "--public-ipv6=fd00::1", "--iface", "eth0"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("weft daemon does not implement flanneld's --public-ipv6"), "\(result.stderr)")
    }

    @Test("weft --version and weft daemon --version print the version")
    func version() throws {
        #expect(try WeftProcess.run(["--version"]).stdout == "0.5.0\n")
        #expect(try WeftProcess.run(["daemon", "--version"]).stdout == "0.5.0\n")
    }
}
