import Foundation
import WeftCore
import WeftShell

/// The compiled TC programs: one object file per attach point, found in a directory
/// and, when they are missing or older than their sources, compiled with clang.
public struct BPFPrograms: Sendable {
    /// Every program, named after its entry file and its function.
    public static let names = ProgramName.allCases.map(\.rawValue)

    /// Where the objects are (`<source>/out` for a source tree).
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    public func objectPath(_ name: String) -> String { "\(directory)/\(name).bpf.o" }

    /// Where `scripts/install` puts the objects, below its prefix: `<prefix>/lib/weft/bpf`
    /// beside `<prefix>/bin/weft`.
    public static let installedSubdirectory = "lib/weft/bpf"

    /// The objects the daemon uses when no `--bpf-dir` says otherwise, the first found of:
    /// `$WEFT_BPF_DIR`; `bpf/out` of the checkout this executable was built in; the installed
    /// copy beside it (`<prefix>/lib/weft/bpf` for `<prefix>/bin/weft`); `/usr/local/lib/weft/bpf`.
    public static func locate(executable: String = CommandLine.arguments[0]) -> BPFPrograms {
        if let directory = ProcessInfo.processInfo.environment["WEFT_BPF_DIR"] { return BPFPrograms(directory: directory) }
        if let source = sourceDirectory(near: executable) { return BPFPrograms(directory: "\(source)/out") }
        let prefix = URL(fileURLWithPath: executable).resolvingSymlinksInPath().deletingLastPathComponent().deletingLastPathComponent()
        let installed = prefix.appendingPathComponent(installedSubdirectory).path
        if FileManager.default.fileExists(atPath: "\(installed)/\(names[0]).bpf.o") { return BPFPrograms(directory: installed) }
        return BPFPrograms(directory: "/usr/local/\(installedSubdirectory)")
    }

    /// The `bpf/` source directory of the checkout that holds `executable`, if any.
    public static func sourceDirectory(near executable: String) -> String? {
        var directory = URL(fileURLWithPath: executable).resolvingSymlinksInPath().deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("bpf")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("from_pod.c").path) { return candidate.path }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }

    /// The objects that are missing.
    public var missing: [String] {
        Self.names.filter { !FileManager.default.fileExists(atPath: objectPath($0)) }
    }
}

/// Compiles `bpf/` as its Makefile does, with the flags both read from `bpf/build.flags`,
/// so `weft` needs no make and no manual step.
public struct BPFCompiler: Sendable {
    public let sourceDirectory: String
    public let clang: String

    public init(sourceDirectory: String, clang: String? = nil) {
        self.sourceDirectory = sourceDirectory
        self.clang = clang ?? ProcessInfo.processInfo.environment["CLANG"] ?? Self.findClang()
    }

    /// The toolchain's clang (it targets BPF), else the first on PATH.
    static func findClang() -> String {
        for candidate in ["/opt/swift/usr/bin/clang"] where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        return "clang"
    }

    /// Whether an object is missing or older than any source it is built from.
    public func isStale(_ programs: BPFPrograms) -> Bool {
        let manager = FileManager.default
        let sources = ([sourceDirectory] + ["include", "lib"].map { "\(sourceDirectory)/\($0)" })
            .flatMap { directory in ((try? manager.contentsOfDirectory(atPath: directory)) ?? []).map { "\(directory)/\($0)" } }
            .filter { $0.hasSuffix(".c") || $0.hasSuffix(".h") || $0.hasSuffix("build.flags") }
        let newestSource = sources.compactMap { try? manager.attributesOfItem(atPath: $0)[.modificationDate] as? Date }.max() ?? .distantPast
        return BPFPrograms.names.contains { name in
            guard let built = try? manager.attributesOfItem(atPath: programs.objectPath(name))[.modificationDate] as? Date else { return true }
            return built < newestSource
        }
    }

    /// Compiles every program into `output`; the error carries clang's diagnostics.
    public func compile(into output: BPFPrograms) throws {
        try FileManager.default.createDirectory(atPath: output.directory, withIntermediateDirectories: true)
        var machine = utsname()
        uname(&machine)
        let architecture = withUnsafeBytes(of: &machine.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let flagsFile = "\(sourceDirectory)/build.flags"
        guard let flags = try? String(contentsOfFile: flagsFile, encoding: .utf8) else {
            throw DataplaneError("cannot read \(flagsFile), the compiler flags of the BPF programs; is \(sourceDirectory) a Weft bpf/ directory?")
        }
        for name in BPFPrograms.names {
            let arguments = [clang] + flags.split(whereSeparator: \.isWhitespace).map(String.init) + [
                             "-I\(sourceDirectory)/include", "-I\(sourceDirectory)",
                             "-idirafter", "/usr/include/\(architecture)-linux-gnu",
                             "-c", "\(sourceDirectory)/\(name).c", "-o", output.objectPath(name)]
            let result: Command.Result
            do {
                result = try Command.run(arguments)
            } catch {
                throw DataplaneError("\(error) (compiling the BPF programs): install clang or set CLANG")
            }
            guard result.succeeded else {
                let diagnostics = result.stderr + result.stdout
                throw DataplaneError("compiling \(sourceDirectory)/\(name).c failed:\n\(diagnostics)")
            }
        }
    }
}
