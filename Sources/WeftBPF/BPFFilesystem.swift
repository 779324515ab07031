import WeftSystem
import CWeftBPF
import Foundation

/// The bpffs mount that holds a node's pins.
public enum BPFFilesystem {
    public static func isMounted(at path: String) -> Bool {
        weft_is_bpffs(path) == 1
    }

    /// Creates `path` and mounts a bpffs there unless one already is.
    public static func ensureMounted(at path: String) throws(SystemCallError) {
        if isMounted(at: path) { return }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw SystemCallError("create the pin directory", path, errno: EACCES)
        }
        guard mount("bpf", path, "bpf", 0, nil) == 0 else { throw SystemCallError("mount a bpffs at", path, errno: errno) }
    }

    /// Detaches the bpffs at `path`, if one is mounted there; the pins in it go once nothing
    /// holds them.
    public static func unmount(_ path: String) {
        if isMounted(at: path) { umount2(path, Int32(MNT_DETACH)) }
    }
}
