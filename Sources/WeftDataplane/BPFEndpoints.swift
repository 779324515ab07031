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

    /// Puts the current from_pod program on every registered pod's veth, and forgets pods
    /// whose veth no longer exists. Returns how many were re-attached and forgotten.
    @discardableResult
    public func reattachAll(existingInterfaces: Set<Int32>) throws -> (attached: Int, forgotten: Int) {
        let maps = try PinnedMaps(directory: pinDirectory)
        var attached = 0
        var forgotten = 0
        for (address, endpoint) in try maps.endpoints.entries() {
            let index = Int32(endpoint.hostInterfaceIndex)
            if existingInterfaces.contains(index) {
                try attach(interfaceIndex: index)
                attached += 1
            } else {
                try maps.endpoints.remove(address)
                forgotten += 1
            }
        }
        return (attached, forgotten)
    }

    private func attach(interfaceIndex: Int32) throws {
        let program = try ProgramPin.open("from_pod", in: pinDirectory)
        defer { close(program) }
        try TCAttachment(interfaceIndex: interfaceIndex, direction: .ingress).attach(programDescriptor: program, name: "from_pod")
    }
}
