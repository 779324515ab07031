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
}
