import WeftSystem
import CNetlink
import Glibc

/// A NETLINK_ROUTE socket: requests with acknowledgements, dumps, and (when bound to
/// multicast groups) change notifications. Not shared between threads.
public final class NetlinkSocket {
    private let descriptor: Int32
    private var sequence: UInt32 = 0
    private var buffer = [UInt8](repeating: 0, count: 1 << 16)

    /// `groups`: RTNLGRP_* numbers to receive notifications for.
    public init(groups: [UInt32] = []) throws(SystemCallError) {
        descriptor = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), NETLINK_ROUTE)
        guard descriptor >= 0 else { throw SystemCallError("open", "a netlink socket", errno: errno) }
        var address = sockaddr_nl()
        address.nl_family = sa_family_t(AF_NETLINK)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
            }
        }
        guard bound == 0 else {
            let error = errno
            close(descriptor)
            throw SystemCallError("bind", "a netlink socket", errno: error)
        }
        var receiveBuffer: Int32 = 4 << 20
        setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &receiveBuffer, socklen_t(MemoryLayout<Int32>.size))
        var strict: Int32 = 1
        setsockopt(descriptor, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &strict, socklen_t(MemoryLayout<Int32>.size))
        for group in groups {
            var group = group
            guard setsockopt(descriptor, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, socklen_t(MemoryLayout<UInt32>.size)) == 0 else {
                let error = errno
                close(descriptor)
                throw SystemCallError("join netlink group \(group) on", "a netlink socket", errno: error)
            }
        }
    }

    /// A socket in another network namespace (a path such as /run/netns/NAME), which stays
    /// bound to that namespace.
    public static func opened(inNamespace path: String, groups: [UInt32] = []) throws(SystemCallError) -> NetlinkSocket {
        try NetworkNamespace.entered(path) { () throws(SystemCallError) in try NetlinkSocket(groups: groups) }
    }

    deinit { close(descriptor) }

    /// The descriptor, for polling notifications.
    public var fileDescriptor: Int32 { descriptor }

    /// Sends a request that changes something and waits for the kernel's acknowledgement.
    func perform(_ request: NetlinkRequest, _ operation: String, _ object: String) throws(SystemCallError) {
        _ = try exchange(request, operation, object)
    }

    /// Sends a dump request and collects every reply message up to NLMSG_DONE. A dump the
    /// kernel marks interrupted (`NLM_F_DUMP_INTR`: the table changed while it was read) is
    /// incomplete, and is read again; after `attempts` such reads the error says so.
    func dump(_ request: NetlinkRequest, _ operation: String, _ object: String, attempts: Int = 5) throws(SystemCallError) -> [NetlinkMessage] {
        for _ in 0..<attempts {
            let replies = try exchange(request, operation, object)
            if !NetlinkMessage.dumpWasInterrupted(replies) { return replies }
        }
        throw SystemCallError(operation, "\(object) (the table kept changing while it was read, \(attempts) times)", errno: EAGAIN)
    }

    /// Blocks until change notifications arrive (on a socket made with `groups`), `wake`
    /// becomes readable, or `timeoutMilliseconds` pass; returns how many arrived. ENOBUFS
    /// (the kernel dropped some) is `overrun: true`: the caller must assume anything changed.
    public func waitForChanges(timeoutMilliseconds: Int32, wake: Int32 = -1) throws(SystemCallError) -> (count: Int, overrun: Bool) {
        let (messages, overrun) = try notifications(timeoutMilliseconds: timeoutMilliseconds, wake: wake)
        return (messages.count, overrun)
    }

    func notifications(timeoutMilliseconds: Int32, wake: Int32 = -1) throws(SystemCallError) -> (messages: [NetlinkMessage], overrun: Bool) {
        var pollers = [pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0), pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
        let ready = poll(&pollers, 2, timeoutMilliseconds)
        if ready < 0 && errno != EINTR { throw SystemCallError("wait for", "netlink notifications", errno: errno) }
        guard ready > 0, pollers[0].revents != 0 else { return ([], false) }
        let count = recv(descriptor, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        if count < 0 {
            if errno == ENOBUFS { return ([], true) }
            if errno == EAGAIN || errno == EINTR { return ([], false) }
            throw SystemCallError("read", "netlink notifications", errno: errno)
        }
        return (NetlinkMessage.parse(Array(buffer[0..<count])) ?? [], false)
    }

    private func exchange(_ request: NetlinkRequest, _ operation: String, _ object: String) throws(SystemCallError) -> [NetlinkMessage] {
        sequence &+= 1
        let message = request.encoded(sequence: sequence)
        let sent = message.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
        guard sent == message.count else { throw SystemCallError(operation, object, errno: sent < 0 ? errno : EIO) }
        var replies: [NetlinkMessage] = []
        while true {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemCallError(operation, object, errno: errno)
            }
            guard let messages = NetlinkMessage.parse(Array(buffer[0..<count])) else {
                throw SystemCallError(operation, "\(object) (malformed netlink reply)", errno: EPROTO)
            }
            for reply in messages where reply.sequence == sequence {
                switch Int32(reply.type) {
                case NLMSG_ERROR:
                    let code = reply.errorCode
                    guard code == 0 else { throw SystemCallError(operation, object, errno: code) }
                    return replies
                case NLMSG_DONE:
                    // A dump that failed part-way says so here.
                    let code = reply.errorCode
                    guard code <= 0 else { throw SystemCallError(operation, object, errno: code) }
                    return replies
                default:
                    replies.append(reply)
                }
            }
        }
    }
}
