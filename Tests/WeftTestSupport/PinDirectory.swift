import Foundation
import Glibc

/// A private bpffs mount for one test's pinned maps, unmounted and removed at the end.
public final class PinDirectory {
    public let path: String

    public init() throws {
        path = "/run/weft-test-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        guard mount("bpf", path, "bpf", 0, nil) == 0 else {
            let error = errno
            try? FileManager.default.removeItem(atPath: path)
            throw POSIXError(POSIXErrorCode(rawValue: error) ?? .EIO)
        }
    }

    deinit {
        umount2(path, Int32(MNT_DETACH))
        rmdir(path)
    }
}

