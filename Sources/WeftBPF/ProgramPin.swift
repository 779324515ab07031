import WeftSystem
import CLibBPF
import Foundation

/// Program pins: a loaded program kept under a name in the pin directory, so a CNI
/// invocation can attach it to a new pod's veth without loading anything.
public enum ProgramPin {
    public static func path(_ name: String, in directory: String) -> String { "\(directory)/prog_\(name)" }

    /// Pins `descriptor` as `name`, replacing an older pin of that name.
    public static func pin(_ descriptor: Int32, name: String, in directory: String) throws(SystemCallError) {
        let path = path(name, in: directory)
        let temporary = "\(path)_new" // bpffs refuses names with a dot
        unlink(temporary)
        let result = bpf_obj_pin(descriptor, temporary)
        guard result == 0 else { throw SystemCallError("pin program \(name) at", temporary, errno: result == -1 ? errno : result) }
        guard rename(temporary, path) == 0 else {
            let error = errno
            unlink(temporary)
            throw SystemCallError("pin program \(name) at", path, errno: error)
        }
    }

    /// A descriptor of the pinned program; the caller closes it.
    public static func open(_ name: String, in directory: String) throws(SystemCallError) -> Int32 {
        let path = path(name, in: directory)
        let descriptor = bpf_obj_get(path)
        guard descriptor >= 0 else {
            let error = descriptor == -1 ? errno : -descriptor
            throw SystemCallError("open pinned program", error == ENOENT ? "\(path) (is the Weft BPF dataplane set up on this node?)" : path, errno: error)
        }
        return descriptor
    }

    /// The kernel id of a program descriptor, to compare with what a hook holds.
    public static func id(of descriptor: Int32) throws(SystemCallError) -> UInt32 {
        var info = bpf_prog_info()
        var length = UInt32(MemoryLayout<bpf_prog_info>.size)
        let result = bpf_obj_get_info_by_fd(descriptor, &info, &length)
        guard result == 0 else { throw SystemCallError("read program info of descriptor", "\(descriptor)", errno: result) }
        return info.id
    }
}
