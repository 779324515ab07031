import Foundation

/// A failed BPF operation: what was being done, to which object, and the errno, with a
/// hint for the errnos a user can act on.
public struct BPFError: Error, Sendable, Equatable, CustomStringConvertible {
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
        case EPERM, EACCES: text += ": run as root or with CAP_BPF and CAP_NET_ADMIN"
        case ENOENT where operation == "open BPF object": text += ": build the programs with `weft dataplane compile` (scripts/setup does)"
        case ENOENT where operation.hasPrefix("open pinned"): text += ": the pins are gone (deleted, or the bpffs unmounted); a running daemon puts them back, or run `weft dataplane up`"
        case ENODEV: text += ": no such interface"
        default: break
        }
        return text
    }
}
