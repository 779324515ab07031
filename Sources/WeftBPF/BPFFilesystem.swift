import WeftSystem
import CWeftBPF
import Foundation

/// The bpffs mount that holds a node's pins.
public enum BPFFilesystem {
    public static func isMounted(at path: String) -> Bool {
        weft_is_bpffs(path) == 1
    }

    /// Creates `path` and mounts a bpffs there (mode 0700: the pins are the dataplane's
    /// controls) unless it lies on one already: its root (`/run/weft/bpf`) or a directory
    /// inside a mounted one (`/sys/fs/bpf/weft`, as a DaemonSet mounts the host's).
    public static func ensureMounted(at path: String) throws(SystemCallError) {
        if isMounted(at: path) { return }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw SystemCallError("create the pin directory", path, errno: EACCES)
        }
        if isMounted(at: path) { return }
        guard mount("bpf", path, "bpf", 0, "mode=0700") == 0 else { throw SystemCallError("mount a bpffs at", path, errno: errno) }
    }

    /// Makes `path` this user's alone (mode 0700), as a pin directory must be: whoever can
    /// write it can replace the dataplane's maps. Returns why it cannot be made so (another
    /// user owns it), or nil once it is.
    public static func restrictToOwner(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        if info.st_uid != 0 && info.st_uid != geteuid() {
            return "it belongs to user \(info.st_uid), who could replace the dataplane's maps; use a directory of root's own"
        }
        if info.st_mode & 0o077 != 0 && chmod(path, 0o700) != 0 {
            return "its mode \(String(info.st_mode & 0o7777, radix: 8)) lets other users in, and chmod failed: \(String(cString: strerror(errno)))"
        }
        return nil
    }

    /// Detaches the bpffs at `path`, if one is mounted there; the pins in it go once nothing
    /// holds them.
    public static func unmount(_ path: String) {
        if isMounted(at: path) { umount2(path, Int32(MNT_DETACH)) }
    }
}
