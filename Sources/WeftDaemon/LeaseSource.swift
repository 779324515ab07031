import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WeftCore
import WeftDataplane
import WeftStore

/// Where the node's lease and its peers' leases live: a lease store (embedded or etcd,
/// `StoreLeaseSource`) or the Kubernetes API (`--kube-subnet-mgr`, `KubeLeaseSource`). The
/// daemon does the rest (interface, subnet.env, dataplane, supervisor) the same for both.
protocol LeaseSource: Sendable {
    /// The network config (net-conf.json).
    func networkConfig() async throws -> NetworkConfig
    /// The node's own lease, advertising `attributes` (their VTEP MAC may be replaced by the
    /// one the source already holds for this node, so a restart keeps it).
    func acquire(_ attributes: LeaseAttributes, config: NetworkConfig, previousSubnet: IPv4Prefix?, hostAddresses: Set<IPv4Address>) async throws -> Lease
    /// Every peer lease now, own excluded or not (the planner passes over its own subnet).
    func listPeers() async throws -> [PeerLease]
    /// What follows the peers into `supervisor` and defends the own lease, for the daemon's life.
    func service(supervisor: DataplaneSupervisor) -> any Service
    /// Called once the dataplane holds the peers.
    func nodeReady() async
}

/// Leases in a key-value store, as flanneld keeps them in etcd.
final class StoreLeaseSource: LeaseSource {
    let registry: SubnetRegistry
    let settings: DaemonSettings
    let state: DaemonState
    let logger: Logger
    /// What `acquire` and `listPeers` learnt, for the lease service.
    private let learnt = Mutex<(acquirer: LeaseAcquirer?, own: RegisteredLease?, hostAddresses: Set<IPv4Address>, revision: Int64)>((nil, nil, [], 0))

    init(registry: SubnetRegistry, settings: DaemonSettings, state: DaemonState, logger: Logger) {
        self.registry = registry
        self.settings = settings
        self.state = state
        self.logger = logger
    }

    func networkConfig() async throws -> NetworkConfig {
        try await withStoreRetry("read the network config", state: state, logger: logger) { try await self.registry.networkConfig(file: self.settings.netConfigPath) }
    }

    func acquire(_ attributes: LeaseAttributes, config: NetworkConfig, previousSubnet: IPv4Prefix?, hostAddresses: Set<IPv4Address>) async throws -> Lease {
        let acquirer = LeaseAcquirer(registry: registry, config: config, ttlSeconds: settings.leaseTTLSeconds, logger: logger)
        let lease = try await withStoreRetry("acquire a lease", state: state, logger: logger) {
            try await acquirer.acquire(attributes: attributes, previousSubnet: previousSubnet, hostAddresses: hostAddresses)
        }
        learnt.withLock {
            $0.acquirer = acquirer
            $0.own = lease
            $0.hostAddresses = hostAddresses
        }
        return lease.lease
    }

    func listPeers() async throws -> [PeerLease] {
        let listing = try await withStoreRetry("list the leases", state: state, logger: logger) { try await self.registry.leases() }
        learnt.withLock { $0.revision = listing.revision }
        return listing.leases.map { PeerLease($0.lease, since: $0.createRevision) }
    }

    func service(supervisor: DataplaneSupervisor) -> any Service {
        let (acquirer, own, hostAddresses, revision) = learnt.withLock { ($0.acquirer!, $0.own!, $0.hostAddresses, $0.revision) }
        return LeaseService(registry: registry, acquirer: acquirer, own: own, attributes: own.lease.attributes, hostAddresses: hostAddresses,
                            listedRevision: revision, renewMargin: settings.renewMargin, checkInterval: settings.leaseCheckInterval,
                            supervisor: supervisor, state: state, logger: logger)
    }

    func nodeReady() async {}
}

/// Retries a store or API operation while it is unreachable, with the one retry policy,
/// the reason on /readyz; anything else (out of subnets, a bad config, a refused permission)
/// ends the daemon with what to change.
func withStoreRetry<T: Sendable>(_ what: String, state: DaemonState, logger: Logger, _ operation: () async throws -> T) async throws -> T {
    var retry = StoreRetry()
    while true {
        do {
            let result = try await operation()
            state.update { $0.storeProblem = nil }
            return result
        } catch StoreError.misconfigured(let location, let reason) {
            // No retry fixes a configuration: stop, and say what to change.
            throw DaemonError("cannot \(what): lease store \(location) cannot be used as configured: \(reason)")
        } catch let error as StoreError {
            try await retry.wait(after: error, what, logger: logger, state: state)
        } catch let error as KubeError where error.isRetryable {
            try await retry.wait(after: error, what, logger: logger, state: state)
        } catch let error as KubeError {
            throw DaemonError("cannot \(what): \(error)")
        }
    }
}

extension KubeError {
    /// The API server may come back: keep trying, with the reason on /readyz.
    var isRetryable: Bool {
        switch self {
        case .unavailable, .expired: true
        case .misconfigured, .forbidden, .notFound, .rejected: false
        }
    }
}
