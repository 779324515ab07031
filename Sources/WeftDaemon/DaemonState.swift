import Foundation
import Synchronization
import WeftCore
import WeftDataplane

/// What the daemon knows about itself, shared by its services: the lease, the dataplane
/// and its health. Every change is written to the status file `weft status` reads.
public final class DaemonState: Sendable {
    public struct Snapshot: Sendable {
        public var pid = getpid()
        public var subnet: IPv4Prefix?
        public var network: IPv4Prefix?
        public var publicIP: IPv4Address?
        public var interface: String?
        public var interfaceRule: String?
        public var backend: String?
        public var vtepMAC: MACAddress?
        public var leaseExpiration: Date?
        public var mode: DataplaneMode?
        public var modeReason: String?
        public var pinDirectory: String?
        public var peers: [Lease] = []
        public var ignoredPeers: [PeerPlan.Ignored] = []
        public var subnetFileWritten = false
        public var dataplaneProgrammed = false
        public var leaseEvents = 0
        public var applies = 0
        public var applySeconds = 0.0
        public var repairs = 0
        public var lastError: String?

        public var ready: Bool { subnetFileWritten && dataplaneProgrammed }
    }

    private let snapshot = Mutex(Snapshot())
    private let statusFile: String

    public init(statusFile: String) {
        self.statusFile = statusFile
    }

    public var current: Snapshot { snapshot.withLock { $0 } }

    public func update(_ change: (inout Snapshot) -> Void) {
        let copy = snapshot.withLock { state -> Snapshot in
            change(&state)
            return state
        }
        try? StatusFile.write(copy, to: statusFile)
    }
}

/// The status file: the daemon's snapshot as JSON, replaced atomically.
public enum StatusFile {
    public static func write(_ state: DaemonState.Snapshot, to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data(render(state).utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    public static let keyOrder = [
        "pid", "ready", "subnet", "network", "publicIP", "interface", "interfaceRule", "backend", "vtepMAC", "leaseExpiration",
        "dataplane", "dataplaneReason", "pinDirectory", "peers", "ignoredPeers", "leaseEvents", "applies", "repairs", "lastError",
        "reason",
    ]

    public static func render(_ state: DaemonState.Snapshot) -> String {
        var members: [String: JSONValue] = [
            "pid": .integer(Int64(state.pid)),
            "ready": .bool(state.ready),
            "peers": .array(state.peers.sorted { $0.subnet < $1.subnet }.map { lease in
                .object(["subnet": .string(lease.subnet.description), "publicIP": .string(lease.attributes.publicIP.description),
                         "backendType": .string(lease.attributes.backendType),
                         "vtepMAC": lease.attributes.vxlan.map { .string($0.vtepMAC.description) } ?? .null])
            }),
            "ignoredPeers": .array(state.ignoredPeers.map { .object(["subnet": .string($0.subnet.description), "reason": .string($0.reason)]) }),
            "leaseEvents": .integer(Int64(state.leaseEvents)),
            "applies": .integer(Int64(state.applies)),
            "repairs": .integer(Int64(state.repairs)),
        ]
        func text(_ key: String, _ value: CustomStringConvertible?) {
            members[key] = value.map { .string($0.description) } ?? .null
        }
        text("subnet", state.subnet)
        text("network", state.network)
        text("publicIP", state.publicIP)
        text("interface", state.interface)
        text("interfaceRule", state.interfaceRule)
        text("backend", state.backend)
        text("vtepMAC", state.vtepMAC)
        text("leaseExpiration", state.leaseExpiration.map { $0.formatted(.iso8601) })
        text("dataplane", state.mode?.rawValue)
        text("dataplaneReason", state.modeReason)
        text("pinDirectory", state.pinDirectory)
        text("lastError", state.lastError)
        return JSONValue.object(members).serialized(keyOrder: keyOrder + ["backendType"])
    }
}
