import Foundation
import Glibc
import Testing
import WeftTestSupport

@Suite("weft lab", .enabled(if: isRoot, "needs root for namespaces and BPF"))
struct LabTests {
    struct Shape: CustomTestStringConvertible, Sendable {
        let backend: String
        let dataplane: String
        var testDescription: String { "\(backend), \(dataplane)" }
    }

    @Test("Three nodes: lab check passes, lab down leaves nothing behind",
          arguments: ["vxlan", "host-gw"].flatMap { backend in ["bpf", "kernel", "mixed"].map { Shape(backend: backend, dataplane: $0) } })
    func threeNodes(shape: Shape) throws {
        let lab = try LabFixture(backend: shape.backend, dataplane: shape.dataplane)
        let check = try lab.weft(["lab", "check"])
        #expect(check.succeeded, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("all pods reach each other across nodes (3 pods, 3 nodes)"))
        let nodes = try lab.status()["nodes"] as? [[String: Any]] ?? []
        let modes = nodes.map { $0["dataplane"] as? String ?? "" }
        #expect(modes == (shape.dataplane == "mixed" ? ["bpf", "kernel", "bpf"] : Array(repeating: shape.dataplane, count: 3)))
        #expect(nodes.allSatisfy { $0["health"] as? String == "ready" }, "\(nodes)")
        #expect(try lab.weft(["lab", "down"]).succeeded)
        let leftovers = try lab.leftovers()
        #expect(leftovers.isEmpty, "\(leftovers)")
    }

    @Test("lab down after kill -9 of every daemon leaves nothing behind; a second down is fine")
    func downAfterCrash() throws {
        let lab = try LabFixture(nodes: 2)
        let pids = (try lab.status()["nodes"] as? [[String: Any]] ?? []).compactMap { $0["pid"] as? Int }.filter { $0 > 0 }
        // Two daemons to crash; never kill(0), which would signal the test runner's own group.
        try #require(pids.count == 2, "the lab's status lists both daemons: \(pids)")
        for pid in pids { kill(pid_t(pid), SIGKILL) }
        #expect(try lab.weft(["lab", "down"]).succeeded)
        let leftovers = try lab.leftovers()
        #expect(leftovers.isEmpty, "\(leftovers)")
        #expect(try lab.weft(["lab", "down"]).succeeded)
    }

    @Test("lab up while the lab runs: a clear message, and the running lab is untouched")
    func upTwice() throws {
        let lab = try LabFixture(nodes: 2)
        let again = try lab.weft(["lab", "up", "--nodes", "2"])
        #expect(!again.succeeded)
        #expect(again.stderr.contains("a lab named \(lab.name) is already running"), "\(again.stderr)")
        #expect(try lab.weft(["lab", "check"]).succeeded)
    }

    @Test("lab exec points weft maps, status and leases at the node")
    func exec() throws {
        let lab = try LabFixture(nodes: 2)
        let subnet2 = try lab.node("n2")["subnet"] as? String ?? "?"
        #expect(try lab.peers(of: "n1") == [subnet2])
        let status = try lab.inNode("n1", ["status", "--json"])
        #expect(status.stdout.contains(#""dataplane":"bpf""#), "\(status.stdout)")
        #expect(try lab.inNode("n1", ["leases"]).stdout.contains(subnet2))
        let unknown = try lab.weft(["lab", "exec", "n9", "--", "true"])
        #expect(unknown.stderr.contains("no node or pod n9"), "\(unknown.stderr)")
    }

    @Test("lab exec: the command starts with no signal blocked, ends on SIGTERM and on its own alarms, and its status comes back")
    func execSignalsAndStatus() throws {
        let lab = try LabFixture(nodes: 1)
        let status = try lab.weft(["lab", "exec", "n1-p1", "--", "grep", "SigBlk", "/proc/self/status"])
        #expect(status.stdout == "SigBlk:\t0000000000000000\n", "\(status.stdout)\(status.stderr)")
        #expect(try lab.weft(["lab", "exec", "n1", "--", "sh", "-c", "exit 7"]).status == 7)

        let start = ContinuousClock.now
        let timed = try lab.weft(["lab", "exec", "n1-p1", "--", "timeout", "1", "sleep", "5"])
        #expect(timed.status == 124)
        #expect(ContinuousClock.now - start < .seconds(4))

        let sleeper = try ChildProcess([WeftProcess.binary, "lab", "exec", "--name", lab.name, "n1", "--", "sleep", "30"])
        defer { sleeper.kill() }
        // The exec chain keeps the PID: once it is sleep, SIGTERM goes straight to it.
        #expect(try waitUntil(seconds: 5) {
            (try? String(contentsOfFile: "/proc/\(sleeper.pid)/comm", encoding: .utf8)) == "sleep\n"
        })
        let signalled = ContinuousClock.now
        sleeper.signal(SIGTERM)
        #expect(sleeper.wait() == .signalled(SIGTERM))
        #expect(ContinuousClock.now - signalled < .seconds(1))
    }
}
