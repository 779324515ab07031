import Testing
import WeftCore

@Suite("flanneld's command lines, read as flanneld reads them")
struct FlanneldCommandLineTests {
    let booleans: Set<String> = ["ip-masq"]

    @Test("Go's boolean spellings", arguments: ["1", "t", "T", "TRUE", "true", "True"])
    func trueSpellings(text: String) {
        #expect(FlanneldCommandLine.parseBool(text) == true)
    }

    @Test func falseAndOtherSpellings() {
        for text in ["0", "f", "F", "FALSE", "false", "False"] { #expect(FlanneldCommandLine.parseBool(text) == false) }
        for text in ["yes", "on", "", "tRuE"] { #expect(FlanneldCommandLine.parseBool(text) == nil, "\(text)") }
    }

    @Test("kube-flannel.yml's line and flanneld's documented spellings become weft daemon's")
    func normalizes() throws {
        #expect(try FlanneldCommandLine.normalize(["--ip-masq", "--iface=eth0"], booleanFlags: booleans) == ["--ip-masq", "--iface=eth0"])
        #expect(try FlanneldCommandLine.normalize(["-iface", "eth0", "-etcd-endpoints=http://10.0.0.1:2379"], booleanFlags: booleans)
            == ["--iface", "eth0", "--etcd-endpoints=http://10.0.0.1:2379"])
        #expect(try FlanneldCommandLine.normalize(["--ip-masq=true"], booleanFlags: booleans) == ["--ip-masq"])
        #expect(try FlanneldCommandLine.normalize(["-ip-masq=T"], booleanFlags: booleans) == ["--ip-masq"])
        #expect(try FlanneldCommandLine.normalize(["--ip-masq=false", "--iface", "eth0"], booleanFlags: booleans) == ["--iface", "eth0"])
        #expect(try FlanneldCommandLine.normalize(["-v=2"], booleanFlags: booleans) == ["--log-level", "debug"])
        #expect(try FlanneldCommandLine.normalize(["--v", "0"], booleanFlags: booleans) == ["--log-level", "info"])
        #expect(try FlanneldCommandLine.normalize(["-v=10"], booleanFlags: booleans) == ["--log-level", "trace"])
        #expect(try FlanneldCommandLine.normalize(["-h"], booleanFlags: booleans) == ["-h"])
        // A flag on by default is turned off by its --no- form.
        let forward: Set<String> = ["iptables-forward-rules"]
        #expect(try FlanneldCommandLine.normalize(["--iptables-forward-rules=false"], booleanFlags: forward, onByDefault: forward)
            == ["--no-iptables-forward-rules"])
        #expect(try FlanneldCommandLine.normalize(["-iptables-forward-rules=1"], booleanFlags: forward, onByDefault: forward)
            == ["--iptables-forward-rules"])
    }

    @Test("A bad boolean, a bad -v, and a flag Weft lacks each name the argument and what to do")
    func problems() {
        #expect { try FlanneldCommandLine.normalize(["--ip-masq=maybe"], booleanFlags: booleans) } throws: { error in
            "\(error)" == "--ip-masq=maybe: --ip-masq takes true or false (or 1, 0, t, f)"
        }
        #expect { try FlanneldCommandLine.normalize(["-v=loud"], booleanFlags: booleans) } throws: { error in
            "\(error)".hasPrefix("-v=loud: -v takes a number")
        }
        #expect { try FlanneldCommandLine.normalize(["--public-ipv6=fd00::1"], booleanFlags: booleans) } throws: { error in
            "\(error)".contains("weft daemon does not implement flanneld's --public-ipv6") && "\(error)".contains("IPv4 only")
        }
    }

    @Test("FLANNELD_ variables for flags Weft lacks are named, with what to do")
    func unsupportedVariables() {
        let environment = ["FLANNELD_IFACE": "eth0", "FLANNELD_PUBLIC_IPV6": "fd00::1", "FLANNELD_MADE_UP": "1", "PATH": "/bin"]
        let found = FlanneldCommandLine.unsupportedVariables(in: environment, known: ["iface"])
        #expect(found.map(\.variable) == ["FLANNELD_MADE_UP", "FLANNELD_PUBLIC_IPV6"])
        #expect(found[0].advice == "weft daemon has no --made-up; it is ignored")
        #expect(found[1].advice.contains("IPv4 only"))
    }
}
