import WeftSystem
import CLibBPF
import CWeftBPF
import Foundation
import WeftCore

/// Pods on this node (`weft_endpoints`).
public struct EndpointMap {
    public static let name = "weft_endpoints"
    public let map: BPFMap<weft_endpoint_key, weft_endpoint>

    public init(descriptor: Int32, owned: Bool = false) {
        map = BPFMap(descriptor: descriptor, name: Self.name, owned: owned)
    }

    public func set(_ address: IPv4Address, _ endpoint: LocalEndpoint) throws(SystemCallError) {
        try map.update(weft_endpoint_key(addr: address.value.bigEndian),
                       weft_endpoint(ifindex: endpoint.hostInterfaceIndex,
                                     pod_mac: endpoint.podMAC.cBytes,
                                     host_mac: endpoint.hostMAC.cBytes,
                                     reserved: 0))
    }

    @discardableResult
    public func remove(_ address: IPv4Address) throws(SystemCallError) -> Bool {
        try map.delete(weft_endpoint_key(addr: address.value.bigEndian))
    }

    public func entries() throws(SystemCallError) -> [IPv4Address: LocalEndpoint] {
        var result: [IPv4Address: LocalEndpoint] = [:]
        for (key, value) in try map.entries(initialKey: weft_endpoint_key(), initialValue: weft_endpoint()) {
            result[IPv4Address(UInt32(bigEndian: key.addr))] = LocalEndpoint(
                hostInterfaceIndex: value.ifindex,
                podMAC: MACAddress(cBytes: value.pod_mac),
                hostMAC: MACAddress(cBytes: value.host_mac))
        }
        return result
    }
}

/// A pod on this node, as the dataplane delivers to it.
public struct LocalEndpoint: Sendable, Equatable {
    public var hostInterfaceIndex: UInt32
    public var podMAC: MACAddress
    public var hostMAC: MACAddress

    public init(hostInterfaceIndex: UInt32, podMAC: MACAddress, hostMAC: MACAddress) {
        self.hostInterfaceIndex = hostInterfaceIndex
        self.podMAC = podMAC
        self.hostMAC = hostMAC
    }
}
