import WeftSystem
import CLibBPF
import CWeftBPF
import Foundation

/// The maps a node's dataplane pinned in its bpffs directory, opened by path: how the
/// CLI and a restarted daemon reach the same maps the running programs use. Each
/// descriptor is closed when its map is no longer used.
public struct PinnedMaps {
    /// Where Weft pins by default: a bpffs of its own, so `ip netns exec` does not hide it.
    public static let defaultDirectory = "/run/weft/bpf"

    /// Every map the programs pin, by its full name (the kernel keeps only 15 characters).
    public static let allNames = [PeerMap.name, TunnelMap.name, EndpointMap.name, CounterMap.name, EventReader.name,
                                  MonitorSettingsMap.name, EventBudgetMap.name, MapUsage.deviceFlowsName]

    public let directory: String
    public let peers: PeerMap
    public let endpoints: EndpointMap
    public let tunnels: TunnelMap
    public let counters: CounterMap
    public let monitor: MonitorSettingsMap
    public let eventBudget: EventBudgetMap

    public init(directory: String) throws(SystemCallError) {
        self.directory = directory
        peers = PeerMap(descriptor: try Self.open(PeerMap.name, in: directory), owned: true)
        endpoints = EndpointMap(descriptor: try Self.open(EndpointMap.name, in: directory), owned: true)
        tunnels = TunnelMap(descriptor: try Self.open(TunnelMap.name, in: directory), owned: true)
        counters = CounterMap(descriptor: try Self.open(CounterMap.name, in: directory), owned: true)
        monitor = MonitorSettingsMap(descriptor: try Self.open(MonitorSettingsMap.name, in: directory), owned: true)
        eventBudget = EventBudgetMap(descriptor: try Self.open(EventBudgetMap.name, in: directory), owned: true)
    }

    /// A reader of the programs' events (drops, and decisions while traced).
    public func events() throws(SystemCallError) -> EventReader {
        try EventReader(descriptor: try Self.open(EventReader.name, in: directory), owned: true)
    }

    /// Pins again, in `directory`, the maps the running program `programID` uses, where
    /// their pins are gone: the programs keep their maps alive, so the peers and pods they
    /// hold survive a deleted pin directory. Returns how many maps it pinned.
    public static func restore(fromProgram programID: UInt32, into directory: String) throws(SystemCallError) -> Int {
        let names = allNames.map { strdup($0) }
        defer { names.forEach { free($0) } }
        let result = names.map { UnsafePointer($0) }.withUnsafeBufferPointer { weft_pin_program_maps(programID, directory, $0.baseAddress, $0.count) }
        guard result >= 0 else { throw SystemCallError("pin again the maps of program", "\(programID) in \(directory)", errno: result) }
        return Int(result)
    }

    static func open(_ name: String, in directory: String) throws(SystemCallError) -> Int32 {
        let path = "\(directory)/\(name)"
        let descriptor = bpf_obj_get(path)
        guard descriptor >= 0 else {
            let error = descriptor == -1 ? errno : -descriptor
            if error == ENOENT {
                throw SystemCallError("open pinned map", "\(path) (is the Weft dataplane running on this node with this pin directory?)", errno: error)
            }
            throw SystemCallError("open pinned map", path, errno: error)
        }
        return descriptor
    }
}
