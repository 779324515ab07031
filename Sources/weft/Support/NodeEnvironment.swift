import Foundation
import WeftBPF
import WeftDaemon

/// Defaults a shell can point at one node: `weft lab exec NODE -- weft maps peers` sets
/// these, so the inspection commands read that node's pins, status and store.
enum NodeEnvironment {
    static let pinDirectoryVariable = "WEFT_PIN_DIR"
    static let statusFileVariable = "WEFT_STATUS_FILE"
    static let storeFileVariable = "WEFT_STORE_FILE"

    static func value(_ variable: String) -> String? {
        ProcessInfo.processInfo.environment[variable].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// flanneld's variable for a flag: `--iface-regex` is FLANNELD_IFACE_REGEX.
    static func flanneldVariable(_ flag: String) -> String {
        "FLANNELD_" + flag.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// The flag's `FLANNELD_*` value, when set and not empty.
    static func flanneld(_ flag: String, in environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        environment[flanneldVariable(flag)].flatMap { $0.isEmpty ? nil : $0 }
    }

    static var pinDirectory: String { value(pinDirectoryVariable) ?? PinnedMaps.defaultDirectory }
    static var statusFile: String { value(statusFileVariable) ?? DaemonSettings.defaultStatusFile }
    static var storeFile: String { value(storeFileVariable) ?? StoreOptions.defaultStoreFile }
}
