import WeftSystem
import Glibc
import Testing
import WeftCore
import WeftNetlink
import WeftTestSupport

/// The netlink layer against the kernel, in a namespace of the test's own; every entry is
/// also read back with iproute2 so the two views must agree.
@Suite("Netlink in a network namespace", .enabled(if: getuid() == 0, "needs root for namespaces"))
struct NetlinkNamespaceTests {
    @Test("The link-kind probe knows vxlan, veth and bridge, not a made-up kind, and netkit exactly when the kernel was built with it; it creates nothing")
    func linkKindProbe() throws {
        let namespaces = Namespaces()
        let ns = try namespaces.add("probe")
        let netlink = try NetlinkSocket.opened(inNamespace: "/run/netns/\(ns)")
        for kind in ["vxlan", "veth", "bridge"] { #expect(try netlink.kernelKnowsLinkKind(kind), "\(kind)") }
        #expect(try !netlink.kernelKnowsLinkKind("weft-no-such-kind"))
        let config = try Command.run(["sh", "-c", "zcat /proc/config.gz | grep -E '^CONFIG_NETKIT=[ym]'"])
        if try Command.run(["test", "-r", "/proc/config.gz"]).succeeded {
            #expect(try netlink.kernelKnowsLinkKind("netkit") == config.succeeded, "CONFIG_NETKIT: \(config.stdout)")
        }
        #expect(try Command.must(["ip", "-n", ns, "-o", "link", "show"]).split(separator: "\n").count == 1, "only lo")
    }

    @Test("Flannel's device, address, neighbour, FDB entry and onlink route, read back both ways")
    func flannelEntries() throws {
        let namespaces = Namespaces()
        let ns = try namespaces.add("node")
        try namespaces.topology.addLoneLink(.init(ns, "u1", "198.18.0.1/24"))
        let netlink = try NetlinkSocket.opened(inNamespace: "/run/netns/\(ns)")
        let underlay = try #require(try netlink.link(named: "u1"))
        let mac = MACAddress("0a:58:0a:f4:01:00")!
        let settings = VXLANSettings.flannel(vni: 1, local: IPv4Address("198.18.0.1")!, underlayIndex: underlay.index, port: 8472)
        try netlink.createVXLAN(name: "flannel.1", settings: settings, mtu: 1450, mac: mac)
        let device = try #require(try netlink.link(named: "flannel.1"))
        try netlink.setLink(index: device.index, up: true)
        #expect(device.vxlan == settings)
        #expect(device.mtu == 1450 && device.mac == mac && device.kind == "vxlan")
        let details = try Command.must(["ip", "-n", ns, "-d", "link", "show", "flannel.1"])
        #expect(details.contains("vxlan id 1 local 198.18.0.1 dev u1"))
        #expect(details.contains("dstport 8472 nolearning"))

        let address = InterfaceAddress(interfaceIndex: device.index, address: IPv4Address("10.244.1.0")!, prefixLength: 32)
        try netlink.addAddress(address)
        try netlink.addAddress(address)
        #expect(try netlink.addresses(index: device.index) == [address])

        let peerMAC = MACAddress("0a:58:0a:f4:02:00")!
        let neighbour = NeighbourEntry(interfaceIndex: device.index, address: IPv4Address("10.244.2.0")!, mac: peerMAC)
        try netlink.replaceNeighbour(neighbour)
        let neighbours = try netlink.neighbours(index: device.index)
        #expect(neighbours.contains(neighbour), "\(neighbours)")
        #expect(try Command.must(["ip", "-n", ns, "neigh", "show", "dev", "flannel.1"]).contains("10.244.2.0 lladdr 0a:58:0a:f4:02:00 PERMANENT"))

        let forwarding = ForwardingEntry(interfaceIndex: device.index, mac: peerMAC, destination: IPv4Address("198.18.0.2")!)
        try netlink.replaceForwardingEntry(forwarding)
        let entries = try netlink.forwardingEntries(index: device.index)
        #expect(entries.contains(forwarding), "\(entries)")
        #expect(try Command.must(["bridge", "-n", ns, "fdb", "show", "dev", "flannel.1"]).contains("0a:58:0a:f4:02:00 dst 198.18.0.2 self permanent"))

        let route = Route(destination: IPv4Prefix("10.244.2.0/24")!, gateway: IPv4Address("10.244.2.0")!, interfaceIndex: device.index, onlink: true)
        try netlink.replaceRoute(route)
        try netlink.replaceRoute(route)
        #expect(try netlink.routes().filter { $0.destination == route.destination } == [route])
        #expect(try Command.must(["ip", "-n", ns, "route", "show", "10.244.2.0/24"]).contains("via 10.244.2.0 dev flannel.1 proto 87 onlink"))

        try netlink.deleteRoute(route)
        try netlink.deleteForwardingEntry(forwarding)
        try netlink.deleteNeighbour(neighbour)
        #expect(try netlink.routes().allSatisfy { $0.destination != route.destination })
        #expect(try !netlink.forwardingEntries(index: device.index).contains(forwarding))
        #expect(try !netlink.neighbours(index: device.index).contains(neighbour))
        try netlink.deleteLink(index: device.index)
        #expect(try netlink.link(named: "flannel.1") == nil)
    }

    @Test("Errors name the operation and the object, and missing interfaces are nil, not errors")
    func errors() throws {
        let namespaces = Namespaces()
        let ns = try namespaces.add("node")
        let netlink = try NetlinkSocket.opened(inNamespace: "/run/netns/\(ns)")
        #expect(try netlink.link(named: "eth9") == nil)
        let route = Route(destination: IPv4Prefix("10.244.2.0/24")!, gateway: IPv4Address("198.18.0.2")!, interfaceIndex: 999)
        let error = #expect(throws: SystemCallError.self) { try netlink.replaceRoute(route) }
        #expect(error?.description.hasPrefix("install route 10.244.2.0/24 via 198.18.0.2 dev 999:") == true)
        #expect(throws: SystemCallError.self) { try NetlinkSocket.opened(inNamespace: "/run/netns/\(namespaces.tag)-missing") }
    }
}
