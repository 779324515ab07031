import Foundation

/// One interface as the selection sees it.
public struct CandidateInterface: Sendable, Equatable {
    public var name: String
    public var addresses: [IPv4Address]
    public var isUp: Bool
    public var isLoopback: Bool

    public init(name: String, addresses: [IPv4Address], isUp: Bool = true, isLoopback: Bool = false) {
        self.name = name
        self.addresses = addresses
        self.isUp = isUp
        self.isLoopback = isLoopback
    }
}

/// The interface a node's overlay uses and the address it advertises, chosen by
/// flanneld's rules: `--iface` values in order (a name or one of the host's IPs), then
/// `--iface-regex` patterns (matched against each IP, then the name), then the interface
/// that routes to `--iface-can-reach`, then the default route's interface.
public struct InterfaceSelection: Sendable, Equatable {
    public var interface: String
    public var address: IPv4Address
    /// Which rule chose it, for the log.
    public var rule: String

    public struct Request: Sendable {
        public var names: [String] = []
        public var regexes: [String] = []
        /// The interface the kernel routes `--iface-can-reach` through, looked up by the caller.
        public var canReachInterface: String?
        public var defaultRouteInterface: String?

        public init(names: [String] = [], regexes: [String] = [], canReachInterface: String? = nil, defaultRouteInterface: String? = nil) {
            self.names = names
            self.regexes = regexes
            self.canReachInterface = canReachInterface
            self.defaultRouteInterface = defaultRouteInterface
        }
    }

    public static func choose(_ request: Request, from interfaces: [CandidateInterface]) throws(InterfaceSelectionError) -> InterfaceSelection {
        let usable = interfaces.filter { !$0.addresses.isEmpty }
        func listing() -> String {
            interfaces.map { "\($0.name) (\($0.addresses.map(\.description).joined(separator: ", ")))" }.sorted().joined(separator: ", ")
        }
        if !request.names.isEmpty {
            for wanted in request.names {
                if let ip = IPv4Address(wanted), let match = usable.first(where: { $0.addresses.contains(ip) }) {
                    return InterfaceSelection(interface: match.name, address: ip, rule: "--iface \(wanted)")
                }
                if let match = usable.first(where: { $0.name == wanted }) {
                    return InterfaceSelection(interface: match.name, address: match.addresses[0], rule: "--iface \(wanted)")
                }
            }
            throw InterfaceSelectionError("no interface matches --iface \(request.names.joined(separator: ", ")) with an IPv4 address; this host has: \(listing())")
        }
        if !request.regexes.isEmpty {
            for pattern in request.regexes {
                guard let regex = try? Regex(pattern) else {
                    throw InterfaceSelectionError("--iface-regex \(pattern): not a valid regular expression")
                }
                for candidate in usable where !candidate.isLoopback {
                    if let ip = candidate.addresses.first(where: { $0.description.firstMatch(of: regex) != nil }) {
                        return InterfaceSelection(interface: candidate.name, address: ip, rule: "--iface-regex \(pattern) (address)")
                    }
                }
                for candidate in usable where !candidate.isLoopback && candidate.name.firstMatch(of: regex) != nil {
                    return InterfaceSelection(interface: candidate.name, address: candidate.addresses[0], rule: "--iface-regex \(pattern) (name)")
                }
            }
            throw InterfaceSelectionError("no interface matches --iface-regex \(request.regexes.joined(separator: ", ")); this host has: \(listing())")
        }
        if let name = request.canReachInterface {
            guard let match = usable.first(where: { $0.name == name }) else {
                throw InterfaceSelectionError("the route for --iface-can-reach leaves through \(name), which has no IPv4 address")
            }
            return InterfaceSelection(interface: name, address: match.addresses[0], rule: "--iface-can-reach")
        }
        guard let name = request.defaultRouteInterface, let match = usable.first(where: { $0.name == name }) else {
            throw InterfaceSelectionError("no default route to choose an interface by; pass --iface NAME. This host has: \(listing())")
        }
        return InterfaceSelection(interface: name, address: match.addresses[0], rule: "the default route")
    }
}

public struct InterfaceSelectionError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
