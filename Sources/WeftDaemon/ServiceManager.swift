import Foundation
import Synchronization

/// Tells a service manager how the daemon is, by systemd's notification protocol
/// (`sd_notify`): datagrams of `KEY=value` lines to the socket named in `$NOTIFY_SOCKET`.
/// `READY=1` goes once, when the node is first ready (a unit with `Type=notify` counts as
/// started then); `STATUS=` whenever the one-line summary changes; `STOPPING=1` at the end.
/// Without `$NOTIFY_SOCKET` (not started by systemd) it sends nothing.
public final class ServiceManager: Sendable {
    private let socketPath: String?
    private let sent = Mutex<(ready: Bool, status: String?)>((false, nil))

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        socketPath = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The one line `systemctl status` shows for a snapshot.
    public static func status(of state: DaemonState.Snapshot) -> String {
        guard let reason = state.notReadyReason else {
            let subnet = state.subnet.map { "subnet \($0)" } ?? "no subnet"
            let mode = state.mode.map { "\($0.rawValue) dataplane" } ?? "no dataplane"
            return "ready: \(subnet), \(state.peers.count) peers, \(mode)"
        }
        return "not ready: \(reason)"
    }

    /// What to send for `state`, given what was sent before; nil when nothing changed.
    static func message(for state: DaemonState.Snapshot, readySent: Bool, lastStatus: String?) -> String? {
        let status = status(of: state)
        let ready = state.ready && !readySent
        guard ready || status != lastStatus else { return nil }
        return (ready ? "READY=1\n" : "") + "STATUS=\(status)\n"
    }

    public func report(_ state: DaemonState.Snapshot) {
        guard socketPath != nil else { return }
        let message = sent.withLock { sent -> String? in
            guard let message = Self.message(for: state, readySent: sent.ready, lastStatus: sent.status) else { return nil }
            sent = (sent.ready || state.ready, Self.status(of: state))
            return message
        }
        if let message { send(message) }
    }

    public func stopping() {
        send("STOPPING=1\nSTATUS=stopping; the dataplane stays in place\n")
    }

    /// One datagram; a manager that does not listen is not the daemon's problem.
    private func send(_ message: String) {
        guard let socketPath else { return }
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        // `@name` is an abstract socket: its name starts with a NUL byte.
        var path = Array(socketPath.utf8)
        if path.first == UInt8(ascii: "@") { path[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.count < capacity else { return }
        withUnsafeMutableBytes(of: &address.sun_path) { bytes in
            for (index, byte) in path.enumerated() { bytes[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count)
        let bytes = Array(message.utf8)
        _ = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                sendto(descriptor, bytes, bytes.count, Int32(MSG_NOSIGNAL), socketAddress, length)
            }
        }
    }
}
