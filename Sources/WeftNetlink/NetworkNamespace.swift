import CNetlink
import Glibc
import WeftSystem

/// Work done in another network namespace by the calling thread alone.
public enum NetworkNamespace {
    /// Runs `body` with the calling thread in the namespace at `path` (such as
    /// /run/netns/NAME) and puts the thread back afterwards. `body` must not suspend: only
    /// this thread moves, so a socket `body` opens stays bound to that namespace.
    public static func entered<T>(_ path: String, _ body: () throws(SystemCallError) -> T) throws(SystemCallError) -> T {
        let target = open(path, O_RDONLY | O_CLOEXEC)
        guard target >= 0 else { throw SystemCallError("open network namespace", path, errno: errno) }
        defer { close(target) }
        let original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        guard original >= 0 else { throw SystemCallError("open the current network namespace of", "this thread", errno: errno) }
        defer { close(original) }
        guard weft_enter_network_namespace(target) == 0 else { throw SystemCallError("enter network namespace", path, errno: errno) }
        defer { precondition(weft_enter_network_namespace(original) == 0, "cannot return this thread to its network namespace") }
        return try body()
    }
}
