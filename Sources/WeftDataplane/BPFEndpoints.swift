import Foundation
import Glibc
import WeftBPF
import WeftCore
import WeftNetlink

/// The pods on this node the BPF dataplane delivers to and takes traffic from: an
/// endpoint map entry and the from_pod program on the pod's host-side veth. The CNI
/// plugin adds and removes them; the daemon re-attaches them after a restart.
public struct BPFEndpoints {
    public let pinDirectory: String

    public init(pinDirectory: String) {
        self.pinDirectory = pinDirectory
    }

    /// Registers a pod: its address, the host side of its veth pair and its own MAC.
    public func add(address: IPv4Address, hostInterface: String, podMAC: MACAddress) throws {
        let netlink = try NetlinkSocket()
        guard let link = try netlink.link(named: hostInterface) else {
            throw DataplaneError("the pod's host-side interface \(hostInterface) does not exist in this network namespace")
        }
        guard link.kind == "veth" else {
            throw DataplaneError("interface \(hostInterface) is a \(link.kind ?? "device of no kind") (ifindex \(link.index)), not the host side of a pod's veth pair; the CNI result named the wrong interface")
        }
        guard let hostMAC = link.mac else { throw DataplaneError("interface \(hostInterface) has no MAC address; a pod veth has one") }
        let maps = try PinnedMaps(directory: pinDirectory)
        try maps.endpoints.set(address, LocalEndpoint(hostInterfaceIndex: UInt32(link.index), podMAC: podMAC, hostMAC: hostMAC))
        try attach(interfaceIndex: link.index)
    }

    /// Unregisters a pod; detaching from a veth that is already gone is not an error.
    public func remove(address: IPv4Address) throws {
        let maps = try PinnedMaps(directory: pinDirectory)
        guard let endpoint = try maps.endpoints.entries()[address] else { return }
        try TCAttachment(interfaceIndex: Int32(endpoint.hostInterfaceIndex), direction: .ingress).detach()
        try maps.endpoints.remove(address)
    }

    /// Registers the pods weft-cni recorded in `directory` that the endpoint map lacks (its
    /// pins were torn down, say), where the recorded veth is still a pod's. Returns what it
    /// registered and what it passed over, each with why.
    public func registerRecorded(in directory: String, links: [NetworkLink], underlay: Int32) throws -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let registered = try PinnedMaps(directory: pinDirectory).endpoints.entries()
        let byName = Dictionary(links.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var said: [String] = []
        for name in names.sorted() where name.hasSuffix(PodRecord.fileSuffix) {
            let path = "\(directory)/\(name)"
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
            let parsed: (address: IPv4Address, record: PodRecord?)
            do {
                parsed = try PodRecord.parse(text)
            } catch {
                said.append("passed over the pod record \(path): \(error); delete and add the pod again")
                continue
            }
            guard let record = parsed.record else {
                if registered[parsed.address] == nil {
                    said.append("passed over pod \(parsed.address): its record \(path) predates this version and names no veth; delete and add the pod again")
                }
                continue
            }
            guard registered[record.address] == nil, let link = byName[record.hostInterface], link.kind == "veth", link.index != underlay else { continue }
            try add(address: record.address, hostInterface: record.hostInterface, podMAC: record.podMAC)
            said.append("registered pod \(record.address) on \(record.hostInterface) again from its record in \(directory)")
        }
        return said
    }

    /// The registered pods whose host side is a pod's veth that exists; the others are
    /// forgotten, each with why: a pod gone without a CNI DEL, or an entry that names an
    /// interface no pod owns (`lo`, the underlay, the vxlan device), where from_pod must
    /// never run. `underlay` is the node's underlay interface.
    public func prune(links: [NetworkLink], underlay: Int32) throws -> (kept: [IPv4Address: LocalEndpoint], forgotten: [String]) {
        let maps = try PinnedMaps(directory: pinDirectory)
        let byIndex = Dictionary(links.map { ($0.index, $0) }, uniquingKeysWith: { first, _ in first })
        var kept: [IPv4Address: LocalEndpoint] = [:]
        var forgotten: [String] = []
        for (address, endpoint) in try maps.endpoints.entries().sorted(by: { $0.key < $1.key }) {
            let index = Int32(endpoint.hostInterfaceIndex)
            if let link = byIndex[index], link.kind == "veth", index != underlay {
                kept[address] = endpoint
                continue
            }
            try maps.endpoints.remove(address)
            forgotten.append(byIndex[index].map { "forgot pod \(address), whose entry names \($0.name) (ifindex \(index)), which is no pod's veth" }
                             ?? "forgot pod \(address), whose veth is gone")
        }
        return (kept, forgotten)
    }

    func attach(interfaceIndex: Int32) throws {
        let program = try ProgramPin.open("from_pod", in: pinDirectory)
        defer { close(program) }
        try TCAttachment(interfaceIndex: interfaceIndex, direction: .ingress).attach(programDescriptor: program, name: "from_pod")
    }
}
