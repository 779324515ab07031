import Foundation
import Glibc

/// One daemon per node: an exclusive `flock` on a file beside the pins, held for the
/// daemon's life and released by the kernel however the process ends (even `kill -9`).
/// The file names the holder's PID, so a second daemon can say who to stop. Two daemons
/// on one node would fight over the maps, filters and routes.
final class NodeLock {
    let path: String
    private let descriptor: Int32

    init(path: String) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw DaemonError("cannot open the daemon lock \(path): \(String(cString: strerror(errno))); check --pin-dir and that the daemon runs as root")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(descriptor)
            let who = holder.isEmpty ? "another weft daemon" : "another weft daemon (pid \(holder))"
            throw DaemonError("\(who) already runs this node: it holds \(path). Stop it first\(holder.isEmpty ? "" : " (kill \(holder))"), or give this one its own --pin-dir and --subnet-file")
        }
        ftruncate(descriptor, 0)
        let pid = "\(getpid())\n"
        _ = pid.withCString { write(descriptor, $0, strlen($0)) }
    }

    deinit {
        close(descriptor)
    }
}
