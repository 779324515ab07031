import WeftSystem
import CLibBPF
import CWeftBPF
import Foundation

/// One compiled BPF object file: opened, given its runtime globals, loaded, and then
/// the source of program and map file descriptors. Closing it does not detach programs
/// or remove pinned maps: the kernel holds those.
public final class BPFObject {
    public let path: String
    private let object: OpaquePointer
    private var loaded = false

    /// Opens `path`; its pinned maps live under `pinDirectory` (a bpffs directory).
    public init(path: String, pinDirectory: String) throws(SystemCallError) {
        self.path = path
        var error: Int32 = 0
        guard let object = weft_object_open(path, pinDirectory, &error) else {
            throw SystemCallError("open BPF object", path, errno: error)
        }
        self.object = object
    }

    deinit {
        bpf_object__close(object)
    }

    /// Sets a `const volatile` global. Only before `load()`.
    public func setGlobal(_ name: String, bytes: [UInt8]) throws(SystemCallError) {
        precondition(!loaded, "globals are frozen once the object is loaded")
        let result = bytes.withUnsafeBytes { weft_object_set_global(object, name, $0.baseAddress, $0.count) }
        guard result == 0 else { throw SystemCallError("set global \(name) in", path, errno: result) }
    }

    /// The `const volatile` globals the object declares (its `.rodata` variables), with their sizes in bytes.
    public var globals: [String: Int] {
        var found: [String: Int] = [:]
        for index in 0..<max(0, weft_object_global_count(object)) {
            var size = 0
            if let name = weft_object_global(object, index, &size) { found[String(cString: name)] = size }
        }
        return found
    }

    /// Sets an integer global; its width must match the C declaration's.
    public func setGlobal<Value: FixedWidthInteger>(_ name: String, _ value: Value) throws(SystemCallError) {
        try setGlobal(name, bytes: withUnsafeBytes(of: value) { Array($0) })
    }

    /// Verifies and loads the programs; creates or reuses the pinned maps.
    public func load() throws(SystemCallError) {
        let result = bpf_object__load(object)
        guard result == 0 else { throw SystemCallError("load BPF object", path, errno: result) }
        loaded = true
    }

    /// Whether the object holds a program of that name.
    public func hasProgram(_ name: String) -> Bool {
        bpf_object__find_program_by_name(object, name) != nil
    }

    public func programDescriptor(_ name: String) throws(SystemCallError) -> Int32 {
        guard let program = bpf_object__find_program_by_name(object, name) else {
            throw SystemCallError("find program \(name) in", path, errno: ENOENT)
        }
        let descriptor = bpf_program__fd(program)
        guard descriptor >= 0 else { throw SystemCallError("get the descriptor of program \(name) in", path, errno: descriptor) }
        return descriptor
    }

    public func mapDescriptor(_ name: String) throws(SystemCallError) -> Int32 {
        guard let map = bpf_object__find_map_by_name(object, name) else {
            throw SystemCallError("find map \(name) in", path, errno: ENOENT)
        }
        let descriptor = bpf_map__fd(map)
        guard descriptor >= 0 else { throw SystemCallError("get the descriptor of map \(name) in", path, errno: descriptor) }
        return descriptor
    }
}
