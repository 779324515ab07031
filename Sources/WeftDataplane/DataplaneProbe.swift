import Foundation
import WeftBPF
import WeftNetlink

/// Whether this kernel, these privileges and these files can run the BPF dataplane,
/// and if not, every reason why, in words a user can act on.
public struct DataplaneProbe: Sendable, Equatable {
    public let reasons: [String]
    /// The VXLAN receive path: GRO aggregates and TCP decapsulated in the program (true), or
    /// by the vxlan device, where the kernel cannot reset their tunnel GSO state from BPF.
    public let aggregatesDecapsulatedInBPF: Bool

    public var canRunBPF: Bool { reasons.isEmpty }

    /// Whether the kernel has netkit devices (Linux 6.7+, `CONFIG_NETKIT`).
    public let netkit: Bool

    public init(reasons: [String], aggregatesDecapsulatedInBPF: Bool = false, netkit: Bool = false) {
        self.reasons = reasons
        self.aggregatesDecapsulatedInBPF = aggregatesDecapsulatedInBPF
        self.netkit = netkit
    }

    /// What pods are plugged with, in words.
    public var podInterfaces: String {
        netkit
            ? "veth on the bridge (this kernel has netkit, which Weft does not use yet)"
            : "veth on the bridge (this kernel has no netkit: Linux 6.7+ built with CONFIG_NETKIT)"
    }

    /// How VXLAN arrives, in words.
    public var vxlanReceivePath: String {
        aggregatesDecapsulatedInBPF
            ? "everything decapsulated in from_underlay"
            : "single UDP and ICMP packets decapsulated in from_underlay; TCP and GRO aggregates by the vxlan device (the kernel lacks BPF_F_ADJ_ROOM_DECAP_L4_UDP)"
    }

    /// Probes for real: the compiled objects, the capabilities, then the kernel's BPF
    /// features (which need the capabilities to be probed at all).
    public static func run(programs: BPFPrograms, capabilities: EffectiveCapabilities = .current) -> DataplaneProbe {
        var reasons: [String] = []
        let missing = programs.missing
        if !missing.isEmpty {
            reasons.append("compiled BPF programs missing in \(programs.directory): \(missing.joined(separator: ", ")); run `weft dataplane compile` or scripts/setup")
        }
        let lacking = capabilities.lackingForDataplane
        if !lacking.isEmpty {
            reasons.append("missing capabilities \(lacking.joined(separator: ", ")); run the daemon as root or grant them")
            return DataplaneProbe(reasons: reasons)
        }
        reasons += KernelFeatures.missingForDataplane().map(\.description)
        let netkit = (try? NetlinkSocket().kernelKnowsLinkKind("netkit")) ?? false
        return DataplaneProbe(reasons: reasons,
                              aggregatesDecapsulatedInBPF: reasons.isEmpty && KernelFeatures.decapsulationClearsTunnelGSO(),
                              netkit: netkit)
    }
}

/// The effective capability set, read from `CapEff:` in /proc/self/status.
public struct EffectiveCapabilities: Sendable, Equatable {
    public let mask: UInt64

    public static let netAdmin = 12
    public static let sysAdmin = 21
    public static let bpf = 39

    /// This process's effective capabilities.
    public static var current: EffectiveCapabilities {
        EffectiveCapabilities(procStatus: (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? "")
    }

    public init(procStatus: String) {
        let line = procStatus.split(separator: "\n").first { $0.hasPrefix("CapEff:") }
        let hex = line?.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces) ?? ""
        mask = UInt64(hex, radix: 16) ?? 0
    }

    public func has(_ capability: Int) -> Bool { mask & (UInt64(1) << UInt64(capability)) != 0 }

    /// What the BPF dataplane needs and this process lacks: CAP_NET_ADMIN for TC and
    /// netlink, and CAP_BPF (or the older catch-all CAP_SYS_ADMIN) to load programs.
    public var lackingForDataplane: [String] {
        var lacking: [String] = []
        if !has(Self.netAdmin) { lacking.append("CAP_NET_ADMIN") }
        if !has(Self.bpf) && !has(Self.sysAdmin) { lacking.append("CAP_BPF") }
        return lacking
    }
}
