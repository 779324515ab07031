import Glibc

/// The daemon's open-file limit.
enum DescriptorLimit {
    /// Raises the soft limit to the hard one, as Go's runtime does for flanneld: the daemon's
    /// own work (netlink, pins, the store) must never run short because the health server's
    /// clients, bounded as they are, took descriptors. Returns the limit in force.
    @discardableResult
    static func raiseToHardLimit() -> rlim_t {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return raised.rlim_cur }
        }
        return limit.rlim_cur
    }
}
