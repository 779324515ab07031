import WeftShell

/// Nodes, an underlay and pods made of network namespaces on this machine: what `weft lab`,
/// `weft bench` and the tests stand a cluster on. Every namespace is `<prefix><suffix>`, so
/// `remove()` deletes what this one made and `Topology.remove(prefix:)` finds it all again
/// after a crash. Nothing outside those namespaces is touched.
public final class Topology {
    public let prefix: String
    /// The namespaces made so far, oldest first.
    public private(set) var namespaces: [String] = []

    public init(prefix: String) {
        self.prefix = prefix
    }

    public func name(_ suffix: String) -> String { prefix + suffix }

    /// Creates `<prefix><suffix>` with its loopback up and returns its name.
    @discardableResult
    public func addNamespace(_ suffix: String) throws -> String {
        let namespace = name(suffix)
        try Command.must(["ip", "netns", "add", namespace])
        namespaces.append(namespace)
        try ip(namespace, "link", "set", "lo", "up")
        return namespace
    }

    /// A node: a namespace that forwards IPv4, as every Kubernetes node does.
    @discardableResult
    public func addNode(_ suffix: String) throws -> String {
        let namespace = try addNamespace(suffix)
        try Command.must(["ip", "netns", "exec", namespace, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
        return namespace
    }

    /// One end of an underlay link: the interface in a node and its address (`198.18.0.1/24`).
    public struct Port: Sendable {
        public let namespace: String
        public let interface: String
        public let address: String

        public init(_ namespace: String, _ interface: String, _ address: String) {
            self.namespace = namespace
            self.interface = interface
            self.address = address
        }
    }

    /// Two nodes on one veth pair, addressed and up: the underlay of a two-node cluster.
    public func join(_ a: Port, _ b: Port) throws {
        try Command.must(["ip", "link", "add", a.interface, "netns", a.namespace, "type", "veth",
                          "peer", "name", b.interface, "netns", b.namespace])
        for port in [a, b] { try bringUp(port) }
    }

    /// An underlay interface whose other end stays in the node: for a node that needs an
    /// address and a link but no peer (the control-plane benchmark's).
    public func addLoneLink(_ port: Port) throws {
        try ip(port.namespace, "link", "add", port.interface, "type", "veth", "peer", "name", "\(port.interface)peer")
        try bringUp(port)
    }

    /// A switch: bridge `br0`, up, in a namespace of its own. Plug nodes into it with `plug`.
    @discardableResult
    public func addSwitch(_ suffix: String) throws -> String {
        let namespace = try addNamespace(suffix)
        try ip(namespace, "link", "add", "br0", "type", "bridge")
        try ip(namespace, "link", "set", "br0", "up")
        return namespace
    }

    /// Plugs a node into a switch: a veth pair from `node` to the switch's `br0`, where its
    /// end is called `switchPort`.
    public func plug(_ node: Port, into switchNamespace: String, as switchPort: String) throws {
        try Command.must(["ip", "link", "add", node.interface, "netns", node.namespace, "type", "veth",
                          "peer", "name", switchPort, "netns", switchNamespace])
        try ip(switchNamespace, "link", "set", switchPort, "master", "br0", "up")
        try bringUp(node)
    }

    /// A pod wired as the CNI bridge plugin wires one, for tests and benchmarks that need no
    /// CNI: the node's `cni0` bridge holding the subnet's gateway address (made with the
    /// first pod), a veth `hostInterface` enslaved to it, and `eth0` in the pod with `address`,
    /// `mtu` and a default route through the gateway. Returns the pod's namespace.
    @discardableResult
    public func addBridgePod(_ suffix: String, on node: String, hostInterface: String,
                             gateway: String, address: String, mtu: Int) throws -> String {
        let pod = try addNamespace(suffix)
        if try !Command.run(["ip", "-n", node, "link", "show", "cni0"]).succeeded {
            try ip(node, "link", "add", "cni0", "type", "bridge")
            try ip(node, "addr", "add", gateway, "dev", "cni0")
            try ip(node, "link", "set", "cni0", "up")
        }
        try ip(node, "link", "add", hostInterface, "type", "veth", "peer", "name", "eth0", "netns", pod)
        try ip(node, "link", "set", hostInterface, "master", "cni0", "up")
        try ip(pod, "addr", "add", address, "dev", "eth0")
        try ip(pod, "link", "set", "eth0", "mtu", "\(mtu)", "up")
        let gatewayIP = String(gateway.prefix { $0 != "/" })
        try ip(pod, "route", "add", "default", "via", gatewayIP)
        return pod
    }

    /// Deletes the namespaces this topology made, newest first; every link in them goes too.
    public func remove() {
        for namespace in namespaces.reversed() {
            _ = try? Command.run(["ip", "netns", "del", namespace])
        }
        namespaces = []
    }

    /// The namespaces on this machine named `<prefix>*`, whoever made them.
    public static func existing(prefix: String) throws -> [String] {
        try Command.must(["ip", "netns", "list"]).split(separator: "\n")
            .map { String($0.split(separator: " ").first ?? "") }
            .filter { $0.hasPrefix(prefix) }
    }

    /// Deletes every namespace named `<prefix>*`, longest name first (pods before their
    /// nodes); returns what it deleted. For cleaning up after a process that died.
    @discardableResult
    public static func remove(prefix: String) throws -> [String] {
        let namespaces = try existing(prefix: prefix).sorted(by: >)
        for namespace in namespaces { try Command.must(["ip", "netns", "del", namespace]) }
        return namespaces
    }

    private func bringUp(_ port: Port) throws {
        try ip(port.namespace, "addr", "add", port.address, "dev", port.interface)
        try ip(port.namespace, "link", "set", port.interface, "up")
    }

    private func ip(_ namespace: String, _ arguments: String...) throws {
        try Command.must(["ip", "-n", namespace] + arguments)
    }
}
