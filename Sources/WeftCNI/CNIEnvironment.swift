/// The CNI variables a runtime passes, checked by the CNI specification's rules before
/// any of them names a file: a container ID or interface name that could walk out of the
/// plugin's data directory, or into another interface, is refused with code 4 and the
/// variable named.
public enum CNIEnvironment {
    /// The largest network config read from standard input. Real ones, a `prevResult`
    /// included, are a few KiB; a runtime never sends more.
    public static let maximumConfigBytes = 1 << 20

    /// `CNI_CONTAINERID`: at least one character, alphanumerics, `_`, `.` and `-`, starting
    /// with an alphanumeric (the specification's `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`).
    public static func containerID(_ value: String?) throws(CNIError) -> String {
        guard let value, !value.isEmpty else {
            throw CNIError(CNIError.invalidEnvironment, "CNI_CONTAINERID is not set", details: "the runtime must name the container")
        }
        let bytes = Array(value.utf8)
        let allowed = bytes.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
        guard isAlphanumeric(bytes[0]), allowed, bytes.count <= 256 else {
            throw CNIError(CNIError.invalidEnvironment, "CNI_CONTAINERID \(quoted(value)) is not a container ID",
                           details: "the CNI specification allows letters, digits, '_', '.' and '-', starting with a letter or digit")
        }
        return value
    }

    /// `CNI_IFNAME`: a Linux interface name: 1 to 15 bytes, not `.` or `..`, without `/`, `:`
    /// or white space. Unset means `eth0`, as runtimes that omit it expect.
    public static func interfaceName(_ value: String?) throws(CNIError) -> String {
        guard let value else { return "eth0" }
        let bytes = Array(value.utf8)
        let forbidden: Set<UInt8> = [UInt8(ascii: "/"), UInt8(ascii: ":"), UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), 0]
        guard (1...15).contains(bytes.count), value != ".", value != "..", !bytes.contains(where: forbidden.contains) else {
            throw CNIError(CNIError.invalidEnvironment, "CNI_IFNAME \(quoted(value)) is not an interface name",
                           details: "1 to 15 characters, not '.' or '..', without '/', ':' or white space")
        }
        return value
    }

    /// A delegate's `type`: the plain name of a plugin in CNI_PATH, never a path.
    public static func pluginName(_ value: String) throws(CNIError) -> String {
        guard !value.isEmpty, !value.contains("/"), value != ".", value != ".." else {
            throw CNIError(CNIError.invalidConfig, "delegate.type \(quoted(value)) is not a plugin name",
                           details: "name a plugin found in CNI_PATH, such as \"bridge\"")
        }
        return value
    }

    /// A file of one container in the data directory; nil when the name would land anywhere else.
    public static func file(in directory: String, container: String, suffix: String = "") -> String? {
        let name = container + suffix
        guard !name.contains("/"), name != ".", name != ".." else { return nil }
        let trimmed = directory.hasSuffix("/") && directory.count > 1 ? String(directory.dropLast()) : directory
        return "\(trimmed)/\(name)"
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    private static func quoted(_ value: String) -> String {
        "\"" + String(value.prefix(64)).unicodeScalars.map { $0.isASCII && $0.value >= 0x20 ? String($0) : "?" }.joined() + "\""
    }
}
