import SystemPackage

/// A failed system call (netlink, bpf, starting a program, a file): what was being done, to which object, the
/// `Errno`, and what the user can do about it. The one error type below the dataplane, so
/// callers decide by its typed questions (`isNotFound`, `alreadyExists`, `isPermission`),
/// never by matching message text.
public struct SystemCallError: Error, Sendable, Equatable, CustomStringConvertible {
    public let operation: String
    public let object: String
    public let errno: Errno

    /// - Parameter errno: a positive or negative errno (libbpf and netlink return negative ones).
    public init(_ operation: String, _ object: String, errno code: Int32) {
        self.operation = operation
        self.object = object
        errno = Errno(rawValue: code == Int32.min ? Int32.max : abs(code))
    }

    /// The object is not there (a file, an interface, a route, a process).
    public var isNotFound: Bool { [Errno.noSuchFileOrDirectory, .noSuchProcess, .noSuchAddressOrDevice, .operationNotSupportedByDevice].contains(errno) }
    /// It exists already.
    public var alreadyExists: Bool { errno == .fileExists }
    /// The kernel refuses the request or a flag of it as unknown, as an older kernel does.
    public var isUnsupportedRequest: Bool { errno == .invalidArgument || errno == .notSupported }
    /// The process lacks the privilege.
    public var isPermission: Bool { errno == .notPermitted || errno == .permissionDenied }

    /// What to do, for the errnos a user can act on.
    public var hint: String? {
        switch errno {
        case .noSuchFileOrDirectory where operation == "start":
            "it is not installed, or not on PATH"
        case .permissionDenied where operation == "start":
            "it is not executable"
        case .notPermitted, .permissionDenied:
            "run as root, or with CAP_NET_ADMIN (and CAP_BPF for the BPF dataplane)"
        case .noSuchFileOrDirectory where operation == "open BPF object":
            "build the programs with `weft dataplane compile` (scripts/setup does)"
        case .noSuchFileOrDirectory where operation.hasPrefix("open pinned"):
            "the pins are gone (deleted, or the bpffs unmounted); a running daemon puts them back, or run `weft dataplane up`"
        case .operationNotSupportedByDevice:
            "no such interface"
        case .addressInUse where operation.contains("vxlan"):
            "another vxlan device already uses this UDP port in this network namespace"
        default:
            nil
        }
    }

    public var description: String {
        "\(operation) \(object): \(errno.description)" + (hint.map { ": \($0)" } ?? "")
    }
}
