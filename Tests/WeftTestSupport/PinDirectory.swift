import Foundation
import Glibc
import WeftBPF

/// A private bpffs mount for one test's pinned maps, unmounted and removed at the end.
public final class PinDirectory {
    public let path: String

    public init() throws {
        path = "/run/weft-test-\(UUID().uuidString.prefix(8))"
        do {
            try BPFFilesystem.ensureMounted(at: path)
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
    }

    deinit {
        BPFFilesystem.unmount(path)
        rmdir(path)
    }
}
