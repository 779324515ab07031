import CWeftShell
import Glibc
import WeftSystem
import Synchronization

/// A program Weft started. Every path by which Weft runs another program (the lab, the
/// benchmark, the CNI plugin's delegates, the BPF compiler, the tests) starts it here, so
/// each child begins the way a shell would start it: no signal blocked, every signal at
/// its default action, and no descriptor of ours but the three standard ones. Swift's
/// runtime threads block most signals, and a child inherits the mask of the thread that
/// spawns it: a blocked SIGALRM keeps `timeout` and `sockperf -t` from ever ending, a
/// blocked SIGTERM makes a server unstoppable.
public final class ChildProcess: Sendable {
    /// Where the child's standard input comes from.
    public enum Input: Sendable {
        /// `/dev/null`.
        case null
        /// A pipe that `collect(input:)` writes to.
        case pipe
        /// Ours.
        case inherit
    }

    /// Where the child's standard output or error goes.
    public enum Output: Sendable {
        case null
        /// A pipe that `collect` reads.
        case pipe
        case inherit
        /// Appended to a file, created if missing (a log).
        case file(String)
    }

    /// How the child ended.
    public enum Termination: Sendable, Equatable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)

        /// The shell's convention: the exit code, or 128 + the signal.
        public var status: Int32 {
            switch self {
            case .exited(let code): code
            case .signalled(let signal): 128 + signal
            }
        }

        public var description: String {
            switch self {
            case .exited(let code): "exited \(code)"
            case .signalled(let signal): "killed by signal \(signal) (\(String(cString: strsignal(signal))))"
            }
        }

        init(waitStatus: Int32) {
            // WIFEXITED/WEXITSTATUS/WTERMSIG are macros Swift cannot import.
            let signal = waitStatus & 0x7f
            self = signal == 0 ? .exited((waitStatus >> 8) & 0xff) : .signalled(signal)
        }
    }

    public let pid: pid_t
    /// The command line, for messages.
    public let arguments: [String]
    /// Our ends of the `.pipe`s: the child's standard input, output and error, until
    /// `collect` takes them; whatever is left is closed with this object.
    private let pipes: Mutex<(input: Int32?, output: Int32?, error: Int32?)>
    private let termination = Mutex<Termination?>(nil)

    /// Starts `arguments[0]` (a path, or a name looked up on PATH) with `arguments`.
    /// - Parameter environment: the child's whole environment; nil passes ours on.
    public init(_ arguments: [String], environment: [String: String]? = nil,
                input: Input = .null, output: Output = .inherit, error: Output = .inherit) throws {
        precondition(!arguments.isEmpty, "a command needs a program")
        self.arguments = arguments
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        // Descriptors the parent keeps (returned) and those only the child needs (closed here).
        var childEnds: [Int32] = []
        defer { for descriptor in childEnds { close(descriptor) } }
        func pipeEnds() throws -> (read: Int32, write: Int32) {
            var ends: [Int32] = [-1, -1]
            guard weft_pipe_cloexec(&ends) == 0 else { throw SystemCallError("create a pipe for", arguments[0], errno: errno) }
            return (ends[0], ends[1])
        }
        var inputEnd: Int32?
        switch input {
        case .null: posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        case .inherit: break
        case .pipe:
            let ends = try pipeEnds()
            childEnds.append(ends.read)
            inputEnd = ends.write
            posix_spawn_file_actions_adddup2(&actions, ends.read, 0)
        }
        func connect(_ output: Output, to target: Int32) throws -> Int32? {
            switch output {
            case .null: posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_WRONLY, 0)
            case .inherit: break
            case .file(let path): posix_spawn_file_actions_addopen(&actions, target, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            case .pipe:
                let ends = try pipeEnds()
                childEnds.append(ends.write)
                posix_spawn_file_actions_adddup2(&actions, ends.write, target)
                return ends.read
            }
            return nil
        }
        let outputEnd = try connect(output, to: 1)
        let errorEnd = try connect(error, to: 2)
        // Nothing else of ours reaches the child: not the daemon's lock, not a netlink socket.
        weft_spawn_close_from(&actions, 3)

        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let environmentStrings = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { environmentStrings?.forEach { free($0) } }
        var child: pid_t = 0
        let result = environmentStrings.map { posix_spawnp(&child, arguments[0], &actions, &attributes, argv, $0) }
            ?? posix_spawnp(&child, arguments[0], &actions, &attributes, argv, environ)
        guard result == 0 else {
            for descriptor in [inputEnd, outputEnd, errorEnd].compactMap({ $0 }) { close(descriptor) }
            throw SystemCallError("start", arguments[0], errno: result)
        }
        pid = child
        pipes = Mutex((inputEnd, outputEnd, errorEnd))
    }

    deinit {
        pipes.withLock { ends in
            for descriptor in [ends.input, ends.output, ends.error].compactMap({ $0 }) { close(descriptor) }
        }
    }

    /// Replaces this process with `arguments` (looked up on PATH), started the same way
    /// as a child: signals unblocked and at their defaults. Its exit status and the
    /// signals sent to this PID are then the command's own. Returns only by throwing.
    public static func exec(_ arguments: [String], environment: [String: String]? = nil) throws -> Never {
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        // Signals 1 to 64 are Linux's (NSIG - 1); SIGKILL and SIGSTOP cannot be changed.
        for signal in Int32(1)...64 where signal != SIGKILL && signal != SIGSTOP {
            Glibc.signal(signal, SIG_DFL)
        }
        pthread_sigmask(SIG_SETMASK, &noSignals, nil)
        if let environment {
            clearenv()
            for (name, value) in environment { setenv(name, value, 1) }
        }
        let argv = arguments.map { strdup($0) } + [nil]
        execvp(arguments[0], argv)
        throw SystemCallError("start", arguments[0], errno: errno)
    }

    /// Still running (not yet reaped)?
    public var isRunning: Bool {
        termination.withLock { ended in
            if ended != nil { return false }
            var status: Int32 = 0
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { ended = Termination(waitStatus: status) }
            return reaped == 0
        }
    }

    /// Waits for the child to end.
    @discardableResult
    public func wait() -> Termination {
        termination.withLock { ended in
            if let ended { return ended }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
            let result = Termination(waitStatus: status)
            ended = result
            return result
        }
    }

    /// Sends `signal` to the child, if it has not been reaped (so never to a reused PID).
    public func signal(_ signal: Int32) {
        termination.withLock { ended in
            if ended == nil { Glibc.kill(pid, signal) }
        }
    }

    /// Ends the child at once and reaps it.
    public func kill() {
        signal(SIGKILL)
        wait()
    }

    /// Feeds `input` (if any) to the input pipe, reads the output and error pipes to their
    /// ends (all at once, so a full pipe never blocks the child), then waits.
    public func collect(input: [UInt8]? = nil) -> (termination: Termination, output: [UInt8], error: [UInt8]) {
        let ends = pipes.withLock { ends in
            defer { ends = (nil, nil, nil) }
            return ends
        }
        var pending = input ?? []
        var writeEnd = ends.input
        if let descriptor = writeEnd {
            if pending.isEmpty {
                close(descriptor)
                writeEnd = nil
            } else {
                // Write only what fits, so a child busy writing its output is never waited on.
                _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
            }
        }
        // A child that exits without reading all its input makes the write fail with EPIPE
        // and raise SIGPIPE, which would end this process: hold the signal back on this
        // thread (the kernel sends it to the writing thread) and discard it afterwards.
        var brokenPipe = sigset_t()
        sigemptyset(&brokenPipe)
        sigaddset(&brokenPipe, SIGPIPE)
        var savedMask = sigset_t()
        pthread_sigmask(SIG_BLOCK, &brokenPipe, &savedMask)
        defer {
            var waiting = sigset_t()
            var now = timespec(tv_sec: 0, tv_nsec: 0)
            sigpending(&waiting)
            if sigismember(&waiting, SIGPIPE) == 1 && sigismember(&savedMask, SIGPIPE) == 0 { _ = sigtimedwait(&brokenPipe, nil, &now) }
            pthread_sigmask(SIG_SETMASK, &savedMask, nil)
        }
        var readEnds = [ends.output, ends.error]
        var collected: [[UInt8]] = [[], []]
        var buffer = [UInt8](repeating: 0, count: 65536)
        while writeEnd != nil || readEnds.contains(where: { $0 != nil }) {
            var polled = readEnds.map { pollfd(fd: $0 ?? -1, events: Int16(POLLIN), revents: 0) }
            polled.append(pollfd(fd: writeEnd ?? -1, events: Int16(POLLOUT), revents: 0))
            guard poll(&polled, nfds_t(polled.count), -1) >= 0 || errno == EINTR else { break }
            for index in readEnds.indices where polled[index].revents != 0 {
                guard let descriptor = readEnds[index] else { continue }
                let count = read(descriptor, &buffer, buffer.count)
                if count > 0 {
                    collected[index] += buffer[..<count]
                } else if count == 0 || errno != EINTR {
                    close(descriptor)
                    readEnds[index] = nil
                }
            }
            if let descriptor = writeEnd, polled[2].revents != 0 {
                let count = pending.withUnsafeBytes { write(descriptor, $0.baseAddress, min($0.count, 65536)) }
                if count > 0 { pending.removeFirst(count) }
                if pending.isEmpty || (count < 0 && errno != EINTR && errno != EAGAIN) {
                    close(descriptor)
                    writeEnd = nil
                }
            }
        }
        return (wait(), collected[0], collected[1])
    }
}
