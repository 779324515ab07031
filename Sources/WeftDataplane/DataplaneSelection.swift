import WeftCore
/// Which dataplane a node runs: what the user asked for (`--dataplane`), settled against
/// what the BPF probe found, with the reason in words a user can act on.
public enum DataplaneChoice: String, Sendable, CaseIterable {
    case auto, bpf, kernel
}

public struct DataplaneSelection: Sendable, Equatable {
    public let mode: DataplaneMode
    public let reason: String

    /// `bpf` insists (and fails with the probe's reasons); `kernel` is taken as asked;
    /// `auto` takes BPF when the probe passes and otherwise falls back, saying why.
    public static func select(_ choice: DataplaneChoice, probe: DataplaneProbe) throws -> DataplaneSelection {
        switch choice {
        case .kernel:
            return DataplaneSelection(mode: .kernel, reason: "--dataplane kernel was requested")
        case .bpf:
            guard probe.canRunBPF else {
                throw DataplaneError("--dataplane bpf was requested but BPF cannot run here: " + probe.reasons.joined(separator: "; ")
                    + ". Fix that, or use --dataplane auto or kernel")
            }
            return DataplaneSelection(mode: .bpf, reason: "--dataplane bpf was requested and the BPF probe passed")
        case .auto:
            if probe.canRunBPF {
                return DataplaneSelection(mode: .bpf, reason: "the BPF probe passed")
            }
            return DataplaneSelection(mode: .kernel, reason: "BPF cannot run here (" + probe.reasons.joined(separator: "; ")
                + "), so the kernel dataplane (Flannel's vxlan/host-gw programming) is used")
        }
    }
}
