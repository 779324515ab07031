import Glibc
import Testing
import WeftSystem

@Suite("The one system-call error")
struct SystemCallErrorTests {
    @Test("Callers decide by typed questions, whatever the sign of the errno")
    func typedQuestions() {
        #expect(SystemCallError("delete route", "10.244.2.0/24", errno: -ENOENT).isNotFound)
        #expect(SystemCallError("delete neighbour", "10.244.2.0", errno: ESRCH).isNotFound)
        #expect(SystemCallError("look up link", "eth9", errno: ENODEV).isNotFound)
        #expect(SystemCallError("create vxlan device", "weft.1", errno: EEXIST).alreadyExists)
        #expect(SystemCallError("load program", "from_pod", errno: -EPERM).isPermission)
        #expect(!SystemCallError("load program", "from_pod", errno: EINVAL).isNotFound)
    }

    @Test("The message names the operation, the object and what to do")
    func messages() {
        #expect(SystemCallError("attach from_pod to", "veth3 (ifindex 7)", errno: EPERM).description
            == "attach from_pod to veth3 (ifindex 7): Operation not permitted: run as root, or with CAP_NET_ADMIN (and CAP_BPF for the BPF dataplane)")
        #expect(SystemCallError("start", "iperf3", errno: ENOENT).description == "start iperf3: No such file or directory: it is not installed, or not on PATH")
        #expect(SystemCallError("open pinned map", "/run/weft/bpf/weft_peers", errno: ENOENT).hint?.contains("the pins are gone") == true)
        #expect(SystemCallError("open BPF object", "from_pod.bpf.o", errno: ENOENT).hint?.contains("weft dataplane compile") == true)
        #expect(SystemCallError("read", "counters", errno: EINVAL).hint == nil)
    }
}
