import Foundation
import WeftTestSupport

/// Frames no socket API would send, written onto a pod's interface through a packet socket
/// (Python's AF_PACKET, in the pod's namespace), and a listener that counts the frames
/// carrying a marker: what a hostile pod sends and what reaches its victim.
public enum RawFrames {
    public static let marker = "weft-raw-frame-test"

    /// Sends `count` ICMP echo requests from `source` to `destination`, to `gatewayMAC`,
    /// tagged for `vlan` (0: untagged), each carrying the marker.
    public static func sendICMP(namespace: String, interface: String = "eth0", gatewayMAC: String, source: String, destination: String,
                         vlan: Int, count: Int = 5) throws -> Command.Result {
        try Command.run(["ip", "netns", "exec", namespace, "python3", "-c", script, "icmp", interface, gatewayMAC, source, destination, "\(vlan)", "\(count)"])
    }

    /// Sends `count` gratuitous ARP replies claiming `claimedIP` is at this interface's MAC.
    public static func sendARP(namespace: String, interface: String = "eth0", claimedIP: String, targetIP: String, count: Int = 5) throws -> Command.Result {
        try Command.run(["ip", "netns", "exec", namespace, "python3", "-c", script, "arp", interface, claimedIP, targetIP, "\(count)"])
    }

    /// Sends one frame as it is, tagged for `vlan` (0: untagged) after its MACs.
    public static func send(_ frame: [UInt8], namespace: String, interface: String, vlan: Int) throws -> Command.Result {
        let hex = frame.map { String(format: "%02x", $0) }.joined()
        return try Command.run(["ip", "netns", "exec", namespace, "python3", "-c", script, "frame", interface, hex, "\(vlan)"])
    }

    /// Counts, for `seconds`, the frames on the interface that carry the marker; prints the count.
    public static func listen(namespace: String, interface: String = "eth0", seconds: Int, output: String) throws -> ChildProcess {
        try ChildProcess(["ip", "netns", "exec", namespace, "python3", "-c", script, "listen", interface, "\(seconds)"], output: .file(output))
    }

    private static let script = #"""
import socket, struct, sys, time

MARKER = b"weft-raw-frame-test"

def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff

def mac(text):
    return bytes(int(part, 16) for part in text.split(":"))

def own_mac(interface):
    return mac(open("/sys/class/net/%s/address" % interface).read().strip())

def send(interface, frames):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((interface, 0))
    for frame in frames:
        sock.send(frame)
        time.sleep(0.05)

mode = sys.argv[1]
if mode == "icmp":
    interface, gateway, source, destination, vlan, count = sys.argv[2:8]
    icmp = struct.pack("!BBHHH", 8, 0, 0, 0x7777, 1) + MARKER
    icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 1, 0, 64, 1, 0,
                         socket.inet_aton(source), socket.inet_aton(destination))
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    tag = struct.pack("!HH", 0x8100, int(vlan)) if int(vlan) else b""
    frame = mac(gateway) + own_mac(interface) + tag + b"\x08\x00" + header + icmp
    send(interface, [frame] * int(count))
elif mode == "arp":
    interface, claimed, target, count = sys.argv[2:6]
    ours = own_mac(interface)
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + ours + socket.inet_aton(claimed) + b"\xff" * 6 + socket.inet_aton(target)
    frame = b"\xff" * 6 + ours + b"\x08\x06" + body
    send(interface, [frame] * int(count))
elif mode == "frame":
    interface, hexadecimal, vlan = sys.argv[2:5]
    frame = bytes.fromhex(hexadecimal)
    tag = struct.pack("!HH", 0x8100, int(vlan)) if int(vlan) else b""
    send(interface, [frame[:12] + tag + frame[12:]])
elif mode == "listen":
    interface, seconds = sys.argv[2:4]
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    sock.bind((interface, 0))
    sock.settimeout(0.2)
    seen = 0
    end = time.time() + float(seconds)
    while time.time() < end:
        try:
            frame = sock.recv(65535)
        except socket.timeout:
            continue
        if MARKER in frame:
            seen += 1
    print(seen, flush=True)
"""#
}
