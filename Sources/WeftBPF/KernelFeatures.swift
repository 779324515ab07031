import CLibBPF
import CWeftBPF
import Glibc

/// What the running kernel lets this process do with BPF, probed by loading tiny
/// programs and maps (libbpf's feature probes). Each missing feature comes back with
/// the kernel release that added it.
public enum KernelFeatures {
    public struct Missing: Sendable, Equatable, CustomStringConvertible {
        public let feature: String
        public let since: String
        public let errno: Int32

        public var description: String {
            errno == EPERM || errno == EACCES
                ? "\(feature): not allowed for this process (it needs CAP_BPF and CAP_NET_ADMIN, or root)"
                : "\(feature): not supported by this kernel (needs Linux \(since) or later)"
        }
    }

    /// Everything the programs use that the kernel lacks; empty when all is there.
    public static func missingForDataplane() -> [Missing] {
        var missing: [Missing] = []
        func check(_ feature: String, _ since: String, _ result: Int32) {
            if result != 1 { missing.append(Missing(feature: feature, since: since, errno: result < 0 ? -result : 0)) }
        }
        check("TC BPF programs", "4.1", libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SCHED_CLS, nil))
        guard missing.isEmpty else { return missing }
        check("LPM trie maps", "4.11", libbpf_probe_bpf_map_type(BPF_MAP_TYPE_LPM_TRIE, nil))
        check("per-CPU array maps", "4.6", libbpf_probe_bpf_map_type(BPF_MAP_TYPE_PERCPU_ARRAY, nil))
        let helpers: [(String, bpf_func_id, String)] = [
            ("bpf_skb_set_tunnel_key", BPF_FUNC_skb_set_tunnel_key, "4.3"),
            ("bpf_redirect_neigh", BPF_FUNC_redirect_neigh, "5.10"),
            ("bpf_redirect_peer", BPF_FUNC_redirect_peer, "5.10"),
            ("bpf_skb_change_type", BPF_FUNC_skb_change_type, "4.8"),
            ("bpf_check_mtu", BPF_FUNC_check_mtu, "5.12"),
            ("bpf_skb_adjust_room", BPF_FUNC_skb_adjust_room, "5.2"),
            ("bpf_csum_level", BPF_FUNC_csum_level, "5.7"),
        ]
        for (name, helper, since) in helpers {
            check("helper \(name)", since, libbpf_probe_bpf_helper(BPF_PROG_TYPE_SCHED_CLS, helper, nil))
        }
        return missing
    }

    /// Whether `bpf_skb_adjust_room` resets the UDP tunnel GSO state of what it decapsulates
    /// (`BPF_F_ADJ_ROOM_DECAP_L4_UDP`, newer than Linux 6.18), so GRO aggregates and TCP can be
    /// decapsulated in the program. Probed by running a three-instruction program that uses the
    /// flag; false where the kernel refuses it or the probe cannot run.
    public static func decapsulationClearsTunnelGSO() -> Bool {
        weft_probe_decap_clears_tunnel_gso() == 1
    }
}
