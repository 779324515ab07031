import Testing
import WeftCore

@Suite("The kernel dataplane's underlay guard")
struct UnderlayGuardTests {
    let scope = UnderlayGuard.Scope(interface: "eth0", network: IPv4Prefix("10.244.0.0/16")!)
    let hostGW: [IPv4Prefix: IPv4Address] = [IPv4Prefix("10.244.3.0/24")!: IPv4Address("198.18.0.3")!,
                                             IPv4Prefix("10.244.2.0/24")!: IPv4Address("198.18.0.2")!]

    @Test("Direct peers' subnets and underlay IPs return, in order; everything else to the cluster network from the underlay is dropped")
    func chain() {
        let chain = UnderlayGuard(scope, directPeers: hostGW).chain
        #expect(chain.table == "raw" && chain.hook == "PREROUTING" && chain.name == "WEFT-UNDERLAY")
        #expect(chain.jump == #"-d 10.244.0.0/16 -i eth0 -m comment --comment "weft underlay guard" -j WEFT-UNDERLAY"#)
        #expect(chain.rules == [
            "-s 10.244.2.0/24 -j RETURN", "-s 10.244.3.0/24 -j RETURN", "-s 198.18.0.2/32 -j RETURN", "-s 198.18.0.3/32 -j RETURN",
            #"-m comment --comment "weft: plain IP to the cluster network from no direct peer" -j DROP"#,
        ])
    }

    @Test("In a VXLAN-only cluster no source is allowed")
    func vxlanOnly() {
        let guardRules = UnderlayGuard(scope, directPeers: [:])
        #expect(guardRules.chain.rules.count == 1 && guardRules.chain.rules[0].hasSuffix("-j DROP"))
        #expect(guardRules.nftablesScript.contains(#"iifname "eth0" ip daddr 10.244.0.0/16 counter drop"#), "\(guardRules.nftablesScript)")
    }

    @Test("Planned against iptables-save: written once, then nothing; a new peer rewrites the chain only; another interface replaces the jump")
    func planning() throws {
        let first = UnderlayGuard(scope, directPeers: hostGW).chain
        let fresh = try #require(IPTablesChain.restore(wanted: [first], unwanted: [], from: IPTablesSave("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n")))
        #expect(fresh.input.hasPrefix("*raw\n:WEFT-UNDERLAY - [0:0]\n"), "\(fresh.input)")
        #expect(fresh.input.contains("-I PREROUTING 1 \(first.jump)"))

        let saved = IPTablesSave(Self.save(first, jumps: [first.jump]))
        #expect(IPTablesChain.restore(wanted: [first], unwanted: [], from: saved) == nil)

        var more = hostGW
        more[IPv4Prefix("10.244.4.0/24")!] = IPv4Address("198.18.0.4")!
        let grown = try #require(IPTablesChain.restore(wanted: [UnderlayGuard(scope, directPeers: more).chain], unwanted: [], from: saved))
        #expect(grown.input.contains("-A WEFT-UNDERLAY -s 10.244.4.0/24 -j RETURN"))
        #expect(!grown.input.contains("PREROUTING"), "the jump stays: \(grown.input)")

        let moved = UnderlayGuard(.init(interface: "ens5", network: scope.network), directPeers: hostGW).chain
        let replaced = try #require(IPTablesChain.restore(wanted: [moved], unwanted: [], from: saved))
        #expect(replaced.input.contains("-D PREROUTING \(first.jump)"))
        #expect(replaced.input.contains("-I PREROUTING 1 \(moved.jump)"))

        let removal = try #require(IPTablesChain.removal(of: [UnderlayGuard.place], from: saved))
        #expect(removal == "*raw\n-D PREROUTING \(first.jump)\n:WEFT-UNDERLAY - [0:0]\n-X WEFT-UNDERLAY\nCOMMIT\n")
    }

    @Test("nftables: one set of allowed sources, hosts without /32")
    func nftables() {
        let script = UnderlayGuard(scope, directPeers: hostGW).nftablesScript
        #expect(script.contains("type filter hook prerouting priority raw"))
        #expect(script.contains("ip saddr != { 10.244.2.0/24, 10.244.3.0/24, 198.18.0.2, 198.18.0.3 } counter drop"), "\(script)")
        #expect(script.contains("flush chain ip weft-ipv4 underlay"))
    }

    /// `iptables-save` of a raw table holding `chain` and these jumps.
    static func save(_ chain: IPTablesChain, jumps: [String]) -> String {
        (["*raw", ":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":\(chain.name) - [0:0]"]
            + jumps.map { "-A PREROUTING \($0)" } + chain.rules.map { "-A \(chain.name) \($0)" } + ["COMMIT"]).joined(separator: "\n")
    }
}
