import Foundation
import Glibc
import Testing
import WeftShell

/// The mask and ignored set a child reads of itself in `/proc/self/status`, as bit sets
/// (bit n - 1 for signal n). Signals 32 and 33 are glibc's own (thread cancellation and
/// setxid), which its posix_spawn always leaves ignored and no program may use; they are
/// masked out.
func signalState(_ status: String) -> [String: UInt64] {
    let glibcInternal: UInt64 = (1 << 31) | (1 << 32)
    var fields: [String: UInt64] = [:]
    for line in status.split(separator: "\n") where line.hasPrefix("SigBlk:") || line.hasPrefix("SigIgn:") {
        let parts = line.split(separator: ":", maxSplits: 1)
        fields[String(parts[0])] = UInt64(parts[1].trimmingCharacters(in: .whitespaces), radix: 16).map { $0 & ~glibcInternal }
    }
    return fields
}

/// Runs `body` on this thread with SIGTERM, SIGALRM and SIGINT blocked and SIGUSR2 ignored,
/// as Swift's runtime threads leave things, so a spawner that passes its state on is caught
/// whichever thread the test runs on.
func withHostileSignalState<T>(_ body: () throws -> T) rethrows -> T {
    var blocked = sigset_t()
    var saved = sigset_t()
    sigemptyset(&blocked)
    for signal in [SIGTERM, SIGALRM, SIGINT] { sigaddset(&blocked, signal) }
    pthread_sigmask(SIG_BLOCK, &blocked, &saved)
    let previous = signal(SIGUSR2, SIG_IGN)
    defer {
        signal(SIGUSR2, previous)
        pthread_sigmask(SIG_SETMASK, &saved, nil)
    }
    return try body()
}

let defaultSignalState: [String: UInt64] = ["SigBlk": 0, "SigIgn": 0]

@Suite("One spawner: children start with no signal blocked or ignored, and end as they should")
struct ChildProcessTests {
    @Test("Command.run: the child's SigBlk and SigIgn are 0")
    func commandRunSignalState() throws {
        let result = try withHostileSignalState { try Command.run(["cat", "/proc/self/status"]) }
        #expect(result.succeeded)
        #expect(signalState(result.stdout) == defaultSignalState)
    }

    @Test("A started child's SigBlk and SigIgn are 0")
    func startedChildSignalState() throws {
        let child = try withHostileSignalState { try ChildProcess(["cat", "/proc/self/status"], output: .pipe) }
        let (termination, output, _) = child.collect()
        #expect(termination == .exited(0))
        #expect(signalState(String(decoding: output, as: UTF8.self)) == defaultSignalState)
    }

    @Test("sleep 30 ends on SIGTERM within a second, reported as that signal")
    func sigtermEndsSleep() throws {
        let child = try withHostileSignalState { try ChildProcess(["sleep", "30"]) }
        // Once it is sleep (exec done), the signal meets sleep itself.
        let deadline = ContinuousClock.now + .seconds(5)
        while (try? String(contentsOfFile: "/proc/\(child.pid)/comm", encoding: .utf8)) != "sleep\n" && ContinuousClock.now < deadline {
            usleep(10_000)
        }
        let start = ContinuousClock.now
        child.signal(SIGTERM)
        let termination = child.wait()
        #expect(ContinuousClock.now - start < .seconds(1))
        #expect(termination == .signalled(SIGTERM))
        #expect(termination.status == 128 + SIGTERM)
        #expect(!child.isRunning)
    }

    @Test("A command that times itself with SIGALRM ends on time: timeout 1 sleep 5")
    func alarmEndsOnTime() throws {
        let start = ContinuousClock.now
        let result = try withHostileSignalState { try Command.run(["timeout", "1", "sleep", "5"]) }
        #expect(ContinuousClock.now - start < .seconds(3))
        #expect(result.status == 124, "timeout's own status when the time ran out")
    }

    @Test("Exit statuses come back unchanged", arguments: [0, 1, 7, 255])
    func exitStatus(code: Int32) throws {
        #expect(try Command.run(["sh", "-c", "exit \(code)"]).status == code)
        let child = try ChildProcess(["sh", "-c", "exit \(code)"])
        #expect(child.wait() == .exited(code))
    }

    @Test("No descriptor of the parent's reaches the child but the standard three")
    func descriptorsStayHome() throws {
        // A descriptor without close-on-exec, as a lock file or a socket might be.
        let leaked = open("/dev/null", O_RDONLY)
        defer { close(leaked) }
        let listing = try Command.must(["ls", "/proc/self/fd"])
        let descriptors = listing.split(separator: "\n").compactMap { Int32($0) }
        // ls itself opens one to read the directory.
        #expect(!descriptors.contains(leaked), "\(descriptors)")
        #expect(descriptors.filter { $0 > 2 }.count <= 1, "\(descriptors)")
    }

    @Test("Input and output larger than a pipe's buffer cross without a deadlock")
    func largeInputAndOutput() throws {
        let text = String(repeating: "0123456789abcdef", count: 65536)  // 1 MiB
        let result = try Command.run(["cat"], input: text)
        #expect(result.status == 0)
        #expect(result.stdout == text)
    }

    @Test("A child that exits without reading its input ends neither the caller nor the call")
    func childThatIgnoresItsInput() throws {
        let text = String(repeating: "x", count: 1 << 20)  // more than a pipe holds
        let result = try Command.run(["sh", "-c", "exit 3"], input: text)
        #expect(result.status == 3)
        // And the caller still runs children normally afterwards.
        #expect(try Command.run(["true"]).succeeded)
    }

    @Test("The environment given is the child's whole environment")
    func environment() throws {
        let result = try Command.run(["/usr/bin/env"], environment: ["WEFT_TEST": "1"])
        #expect(result.stdout == "WEFT_TEST=1\n")
    }

    @Test("A missing program: an error naming it and what to check")
    func missingProgram() {
        #expect {
            try Command.run(["weft-no-such-program"])
        } throws: { error in
            "\(error)" == "start weft-no-such-program: No such file or directory: it is not installed, or not on PATH"
        }
    }
}
