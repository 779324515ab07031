/// What the dataplane refuses for the source a packet claims. Both are on by default; the
/// README's security section says when to turn one off.
public struct SourceChecks: Sendable, Equatable {
    /// A pod sends from its own address only (the BPF dataplane's from_pod;
    /// `--no-pod-source-check`).
    public var pod: Bool
    /// Plain IP from the underlay to the cluster network comes from direct peers only
    /// (from_underlay, or the kernel dataplane's `UnderlayGuard`; `--no-underlay-source-check`).
    public var underlay: Bool

    public init(pod: Bool = true, underlay: Bool = true) {
        self.pod = pod
        self.underlay = underlay
    }
}
