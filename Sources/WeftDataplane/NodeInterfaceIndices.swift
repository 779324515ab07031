import WeftCore
import WeftNetlink

/// The interface indices the desired state's `NodeInterface`s stand for now, once the
/// devices exist: how the adapters turn a desired value into kernel objects.
struct NodeInterfaceIndices {
    var underlay: Int32
    var vxlanDevice: Int32?

    func index(of interface: NodeInterface) -> Int32? {
        switch interface {
        case .underlay: underlay
        case .vxlanDevice: vxlanDevice
        case .pod(let index): index
        }
    }

    /// The kernel routes `routes` stand for.
    func routes(_ routes: [IPv4Prefix: PeerRouteSpec]) throws -> [IPv4Prefix: Route] {
        try routes.mapValues { spec in
            guard let index = index(of: spec.interface) else {
                throw DataplaneError("the route to \(spec.destination) goes out of the \(spec.interface), which does not exist; set the dataplane up first")
            }
            return Route(destination: spec.destination, gateway: spec.gateway, interfaceIndex: index, onlink: spec.onlink)
        }
    }
}
