import Glibc

/// A failed netlink operation: what was being done, to which object, and the errno,
/// with a hint for the errnos a user can act on.
public struct NetlinkError: Error, Sendable, Equatable, CustomStringConvertible {
    public let operation: String
    public let object: String
    public let errno: Int32

    public init(_ operation: String, _ object: String, errno: Int32) {
        self.operation = operation
        self.object = object
        self.errno = abs(errno)
    }

    public var description: String {
        var text = "\(operation) \(object): \(String(cString: strerror(errno)))"
        switch errno {
        case EPERM, EACCES: text += ": run as root or with CAP_NET_ADMIN"
        case ENODEV: text += ": no such interface"
        case EADDRINUSE where operation.contains("vxlan"):
            text += ": another vxlan device already uses this UDP port in this network namespace"
        default: break
        }
        return text
    }
}
