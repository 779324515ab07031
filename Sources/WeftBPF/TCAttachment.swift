import WeftSystem
import CLibBPF
import CWeftBPF
import Foundation

/// Where a Weft program sits on an interface: the clsact ingress or egress hook, with the
/// handle and priority Weft uses for every filter it owns, so that a restart replaces its
/// own filters atomically and leaves everyone else's alone.
public struct TCAttachment: Sendable, Equatable, CustomStringConvertible {
    public enum Direction: Sendable { case ingress, egress }

    /// "WF": the filter handle of every Weft program.
    public static let handle: UInt32 = 0x5746
    public static let priority: UInt32 = 1

    public var interfaceIndex: Int32
    public var direction: Direction

    public init(interfaceIndex: Int32, direction: Direction) {
        self.interfaceIndex = interfaceIndex
        self.direction = direction
    }

    public var description: String {
        "\(direction == .ingress ? "ingress" : "egress") of interface \(interfaceIndex)"
    }

    /// Attaches the program, atomically replacing the one Weft had there.
    public func attach(programDescriptor: Int32, name: String) throws(SystemCallError) {
        let result = weft_tc_attach(interfaceIndex, direction == .ingress ? 1 : 0, programDescriptor, Self.handle, Self.priority)
        guard result == 0 else { throw SystemCallError("attach program \(name) at the TC", description, errno: result) }
    }

    /// Removes Weft's filter; false if there was none (or no interface any more).
    @discardableResult
    public func detach() throws(SystemCallError) -> Bool {
        let result = weft_tc_detach(interfaceIndex, direction == .ingress ? 1 : 0, Self.handle, Self.priority)
        if result == -ENOENT || result == -ENODEV || result == -EINVAL { return false }
        guard result == 0 else { throw SystemCallError("detach the Weft program from the TC", description, errno: result) }
        return true
    }

    /// The id of the program Weft has attached here, or nil.
    public func attachedProgramID() throws(SystemCallError) -> UInt32? {
        var id: UInt32 = 0
        let result = weft_tc_query(interfaceIndex, direction == .ingress ? 1 : 0, Self.handle, Self.priority, &id)
        if result == -ENOENT || result == -ENODEV || result == -EINVAL { return nil }
        guard result == 0 else { throw SystemCallError("query the TC", description, errno: result) }
        return id
    }
}
