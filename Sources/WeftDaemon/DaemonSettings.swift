import WeftCore
import WeftDataplane

/// Everything `weft daemon` is told, after flags and `FLANNELD_*` variables are merged.
public struct DaemonSettings: Sendable {
    /// net-conf.json on disk; nil reads `<prefix>/config` from the store.
    public var netConfigPath: String?
    public var interfaces = InterfaceSelection.Request()
    public var canReach: IPv4Address?
    /// The address to advertise when it differs from the interface's (NAT).
    public var publicIP: IPv4Address?
    public var subnetFile = SubnetEnv.defaultPath
    /// Renew this long before the lease expires (flanneld's `--subnet-lease-renew-margin`).
    public var renewMargin: Duration = .seconds(60 * 60)
    public var leaseTTLSeconds: Int64 = 24 * 3600
    /// `--ip-masq`: write FLANNEL_IPMASQ=true and install flanneld's masquerade rules.
    public var ipMasquerade = false
    /// `--iptables-forward-rules`: install flanneld's FLANNEL-FWD chain (on by default, as in flanneld).
    public var forwardRules = true
    /// `--ip-masq-fully-random-disable` turns this off.
    public var fullyRandomMasquerade = true
    /// `--iptables-resync`: how often the rules are checked and put back.
    public var rulesResync: Duration = .seconds(5)
    /// `--no-pod-source-check` and `--no-underlay-source-check` turn these off.
    public var sourceChecks = SourceChecks()
    public var dataplane = DataplaneChoice.auto
    public var pinDirectory = "/run/weft/bpf"
    /// What the BPF dataplane becomes when the daemon stops (`--on-stop`).
    public var onStop = StopAction.keep
    /// weft-cni's `dataDir`: the pod records the BPF dataplane registers again at start.
    public var cniDataDirectory = DaemonSettings.defaultCNIDataDirectory
    public static let defaultCNIDataDirectory = "/var/lib/cni/flannel"
    public var programs = BPFPrograms.locate()
    public var healthAddress = "0.0.0.0"
    /// 0 serves no health endpoint, as in flanneld.
    public var healthPort = 0
    public var statusFile = DaemonSettings.defaultStatusFile
    /// Between the dataplane's full checks when nothing happens; a change in the namespace
    /// triggers one at once. Flannel re-checks its host-gw routes every 10 s.
    public var repairInterval: Duration = .seconds(10)
    /// How often the daemon reads its own lease back and the store's revision.
    public var leaseCheckInterval: Duration = .seconds(5)

    public static let defaultStatusFile = "/run/weft/status.json"

    public init() {}
}

/// What a stopping daemon leaves of its BPF dataplane.
public enum StopAction: String, Sendable, CaseIterable {
    /// The BPF dataplane as it is: a restarted Weft adopts it; flanneld cannot start beside it.
    case keep
    /// The kernel dataplane in Flannel's own form (`flannel.<VNI>` with the lease's MAC, a
    /// neighbour, FDB entry and route per peer): it carries the pods' traffic with no daemon,
    /// and a restarted Weft or a flanneld started in Weft's place adopts it.
    case flannel
}

/// A condition the daemon cannot run under, worded for the operator.
public struct DaemonError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
