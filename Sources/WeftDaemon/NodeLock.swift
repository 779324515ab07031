import Foundation
import Glibc
import WeftBPF

/// One daemon per node, and one per pin directory, held for the daemon's life and released
/// by the kernel however the process ends (even `kill -9`). Two daemons on one node would
/// fight over the filters, devices and routes whatever their pin directories; two on one pin
/// directory (in two network namespaces) over the maps.
///
/// - The node: a listening socket in the abstract namespace of the daemon's network
///   namespace, which the kernel keeps per network namespace. A second daemon learns the
///   holder's PID from it (`SO_PEERCRED`).
/// - The pin directory: an exclusive `flock` on a file beside it, which names the holder's
///   PID; where the pin directory lies inside a mounted bpffs, which holds no regular files,
///   on the directory itself.
final class NodeLock {
    private let namespaceSocket: Int32
    private let pinDirectoryLock: Int32

    /// - Parameter nodeName: the abstract socket's name (`NodeHost.nodeLockName`).
    init(nodeName: String, pinDirectory: String) throws {
        namespaceSocket = try Self.claimNamespace(nodeName)
        do {
            pinDirectoryLock = try Self.lockPinDirectory(pinDirectory)
        } catch {
            close(namespaceSocket)
            throw error
        }
    }

    deinit {
        close(pinDirectoryLock)
        close(namespaceSocket)
    }

    /// Where the pin directory's lock is taken: a file beside it, or the directory itself
    /// when its parent is a bpffs.
    static func lockPath(pinDirectory: String, parentIsBPFFilesystem: Bool) -> String {
        parentIsBPFFilesystem ? pinDirectory : pinDirectory + ".lock"
    }

    private static func claimNamespace(_ name: String) throws -> Int32 {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw DaemonError("cannot create the node lock's socket: \(String(cString: strerror(errno)))") }
        let bound = withAbstractAddress(name) { bind(descriptor, $0, $1) }
        guard bound == 0, listen(descriptor, 128) == 0 else {
            let failure = errno
            close(descriptor)
            guard failure == EADDRINUSE else {
                throw DaemonError("cannot take the node lock @\(name): \(String(cString: strerror(failure))); the daemon needs a network namespace of its own to run in")
            }
            let holder = holderOf(name)
            let who = holder.map { "another weft daemon (pid \($0))" } ?? "another weft daemon"
            throw DaemonError("\(who) already runs this node (this network namespace), whatever its --pin-dir. Stop it first\(holder.map { " (kill \($0))" } ?? "")")
        }
        return descriptor
    }

    /// The PID of the process listening on the abstract socket, if it can be told.
    private static func holderOf(_ name: String) -> pid_t? {
        let client = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard client >= 0 else { return nil }
        defer { close(client) }
        guard withAbstractAddress(name, { connect(client, $0, $1) }) == 0 else { return nil }
        // struct ucred (pid, uid, gid), which Glibc's module hides behind _GNU_SOURCE.
        var credentials: (pid: pid_t, uid: uid_t, gid: gid_t) = (0, 0, 0)
        var length = socklen_t(MemoryLayout.size(ofValue: credentials))
        guard getsockopt(client, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0, credentials.pid > 0 else { return nil }
        return credentials.pid
    }

    private static func withAbstractAddress(_ name: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(name.utf8.prefix(MemoryLayout.size(ofValue: address.sun_path) - 1))
        withUnsafeMutableBytes(of: &address.sun_path) { path in
            path[0] = 0 // the abstract namespace: no file, gone with the socket
            for (index, byte) in bytes.enumerated() { path[index + 1] = byte }
        }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + 1 + bytes.count)
        return withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) } }
    }

    private static func lockPinDirectory(_ pinDirectory: String) throws -> Int32 {
        let parent = (pinDirectory as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        let insideBPFFilesystem = BPFFilesystem.isMounted(at: parent)
        let path = lockPath(pinDirectory: pinDirectory, parentIsBPFFilesystem: insideBPFFilesystem)
        let descriptor: Int32
        if insideBPFFilesystem {
            if mkdir(pinDirectory, 0o700) != 0 && errno != EEXIST {
                throw DaemonError("cannot create the pin directory \(pinDirectory) inside the bpffs at \(parent): \(String(cString: strerror(errno)))")
            }
            descriptor = open(pinDirectory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        } else {
            descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        }
        guard descriptor >= 0 else {
            throw DaemonError("cannot open the pin directory's lock \(path): \(String(cString: strerror(errno))); check that \(parent) is writable by the daemon, or choose another --pin-dir")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = insideBPFFilesystem ? "" : ((try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "")
            close(descriptor)
            let who = holder.isEmpty ? "another weft daemon" : "another weft daemon (pid \(holder))"
            throw DaemonError("\(who) uses the pin directory \(pinDirectory) from another network namespace: it holds \(path). Stop it first\(holder.isEmpty ? "" : " (kill \(holder))"), or give this one its own --pin-dir")
        }
        if !insideBPFFilesystem {
            ftruncate(descriptor, 0)
            let pid = "\(getpid())\n"
            _ = pid.withCString { write(descriptor, $0, strlen($0)) }
        }
        return descriptor
    }
}
