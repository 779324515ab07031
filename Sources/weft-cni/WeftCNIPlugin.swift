import Foundation
import Glibc
import WeftBPF
import WeftCNI
import WeftCore
import WeftDataplane
import WeftShell

/// `weft-cni`: Flannel's CNI plugin, plus the BPF dataplane's side. ADD reads subnet.env,
/// renders the bridge/host-local delegate config as Flannel does, runs the delegate, keeps
/// the rendered config for DEL, and, when the node runs the BPF dataplane, registers the pod
/// in the endpoint map and attaches from_pod to its veth. DEL undoes all of it, and is
/// safe to repeat. Errors go to stdout as the spec's JSON.
@main
struct WeftCNIPlugin {
    static func main() {
        let environment = ProcessInfo.processInfo.environment
        let command = environment["CNI_COMMAND"] ?? ""
        if command == "VERSION" {
            print(#"{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}"#)
            exit(0)
        }
        var version = "1.0.0"
        do {
            let input = try readConfig()
            let config = try CNIConfig.parse(input)
            version = config.cniVersion
            let plugin = try Invocation(environment: environment, config: config, input: input)
            switch command {
            case "ADD": FileHandle.standardOutput.write(try plugin.add())
            case "DEL": try plugin.delete()
            case "CHECK": try plugin.check()
            default: throw CNIError(CNIError.invalidEnvironment, "CNI_COMMAND \(command.isEmpty ? "is not set" : command + " is unknown")",
                                    details: "expected ADD, DEL, CHECK or VERSION")
            }
            exit(0)
        } catch let error as CNIError {
            print(error.json(cniVersion: version))
        } catch {
            print(CNIError(CNIError.ioFailure, "weft-cni failed", details: "\(error)").json(cniVersion: version))
        }
        exit(1)
    }

    /// Standard input, up to `CNIEnvironment.maximumConfigBytes`: a runtime never sends more,
    /// and a plugin that reads without a bound can be made to take any amount of memory.
    static func readConfig() throws(CNIError) -> Data {
        let limit = CNIEnvironment.maximumConfigBytes
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = read(STDIN_FILENO, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            data.append(contentsOf: buffer.prefix(count))
            if data.count > limit {
                throw CNIError(CNIError.invalidConfig, "the network config on stdin is larger than \(limit / 1024) KiB",
                               details: "no real network config is this big; check what the runtime passes")
            }
        }
        return data
    }
}

/// One call of the plugin: its environment, its config, and the files it keeps.
struct Invocation {
    let environment: [String: String]
    let config: CNIConfig
    let input: Data
    let containerID: String
    let interfaceName: String

    init(environment: [String: String], config: CNIConfig, input: Data) throws(CNIError) {
        self.environment = environment
        self.config = config
        self.input = input
        containerID = try CNIEnvironment.containerID(environment["CNI_CONTAINERID"])
        interfaceName = try CNIEnvironment.interfaceName(environment["CNI_IFNAME"])
        guard let delegateFile = CNIEnvironment.file(in: config.dataDirectory, container: containerID),
              let endpointFile = CNIEnvironment.file(in: config.dataDirectory, container: containerID, suffix: PodRecord.fileSuffix) else {
            throw CNIError(CNIError.invalidEnvironment, "CNI_CONTAINERID does not name a file in \(config.dataDirectory)")
        }
        self.delegateFile = delegateFile
        self.endpointFile = endpointFile
    }

    /// The rendered delegate config and the registered pod address, kept for DEL: always
    /// inside the data directory (the container ID is checked first).
    let delegateFile: String
    let endpointFile: String

    func add() throws -> Data {
        guard let text = try? String(contentsOfFile: config.subnetFile, encoding: .utf8) else {
            throw CNIError(CNIError.tryAgainLater, "\(config.subnetFile) is missing",
                           details: "the Weft daemon is not running on this node yet (it writes the file once it holds a lease); start `weft daemon` and retry")
        }
        let env: SubnetEnv
        do {
            env = try SubnetEnv.parse(text)
        } catch {
            throw CNIError(CNIError.invalidConfig, "\(config.subnetFile) is not a valid subnet.env", details: "\(error)")
        }
        // Before the delegate runs: a node whose pins are not there yet gets nothing allocated.
        let endpoints = try bpfEndpoints(env)
        let delegate = config.delegateConfig(env)
        let rendered = JSONValue.object(delegate).serialized()
        do {
            try FileManager.default.createDirectory(atPath: config.dataDirectory, withIntermediateDirectories: true)
            try Data(rendered.utf8).write(to: URL(fileURLWithPath: delegateFile), options: .atomic)
        } catch {
            throw CNIError(CNIError.ioFailure, "cannot keep the delegate config in \(config.dataDirectory)", details: "\(error)")
        }
        let result = try runDelegate(delegate, command: "ADD")
        let bridge: String = if case .string(let name)? = delegate["bridge"] { name } else { "cni0" }
        let pod: PodAttachment
        do {
            pod = try PodAttachment.from(result: result, containerInterface: interfaceName, bridge: bridge)
        } catch {
            // Only the BPF dataplane needs to know the pod; the kernel's routes find it anyway.
            if endpoints != nil { throw error }
            return result
        }
        // The record first, on every node: the daemon registers the pods it finds recorded,
        // so a node whose pins were torn down (or that ran flanneld for a while) finds them.
        do {
            try Data(pod.rendered.utf8).write(to: URL(fileURLWithPath: endpointFile), options: .atomic)
            try endpoints?.add(address: pod.address, hostInterface: pod.hostInterface, podMAC: pod.podMAC)
        } catch {
            try? FileManager.default.removeItem(atPath: endpointFile)
            _ = try? runDelegate(delegate, command: "DEL")
            throw CNIError(CNIError.dataplaneFailed, "cannot register pod \(pod.address) with the BPF dataplane", details: "\(error)")
        }
        return result
    }

    /// The pod's address as this container's record names it.
    private func recordedAddress() -> IPv4Address? {
        (try? String(contentsOfFile: endpointFile, encoding: .utf8)).flatMap { try? PodRecord.parse($0).address }
    }

    func delete() throws {
        // The record goes before the entry, so a daemon registering recorded pods cannot
        // bring back the entry of a pod being deleted.
        let address = recordedAddress()
        try? FileManager.default.removeItem(atPath: endpointFile)
        if let endpoints = endpointsForCleanup(), let address {
            do {
                try endpoints.remove(address: address)
            } catch {
                throw CNIError(CNIError.dataplaneFailed, "cannot unregister pod \(address) from the BPF dataplane", details: "\(error)")
            }
        }
        var delegate: [String: JSONValue]?
        if let data = FileManager.default.contents(atPath: delegateFile), case .object(let saved)? = try? JSONValue.parse(data) {
            delegate = saved
        } else if let text = try? String(contentsOfFile: config.subnetFile, encoding: .utf8), let env = try? SubnetEnv.parse(text) {
            delegate = config.delegateConfig(env)
        }
        // With neither the saved config nor subnet.env there is nothing left to release.
        if let delegate { _ = try runDelegate(delegate, command: "DEL") }
        try? FileManager.default.removeItem(atPath: delegateFile)
    }

    func check() throws {
        guard let data = FileManager.default.contents(atPath: delegateFile), case .object(var delegate)? = try? JSONValue.parse(data) else {
            throw CNIError(CNIError.invalidConfig, "no ADD recorded for container \(containerID)", details: "\(delegateFile) is missing")
        }
        if case .object(let members)? = try? JSONValue.parse(input), let previous = members["prevResult"] { delegate["prevResult"] = previous }
        _ = try runDelegate(delegate, command: "CHECK")
        let env = (try? String(contentsOfFile: config.subnetFile, encoding: .utf8)).flatMap { try? SubnetEnv.parse($0) }
        if let env, let endpoints = try bpfEndpoints(env), let address = recordedAddress() {
            guard (try? PinnedMaps(directory: endpoints.pinDirectory).endpoints.entries()[address]) != nil else {
                throw CNIError(CNIError.dataplaneFailed, "pod \(address) is missing from the BPF endpoint map", details: "delete and re-add the pod")
            }
        }
    }

    /// The node's BPF endpoints, when its daemon says in subnet.env that it runs the BPF
    /// dataplane (`WEFT_DATAPLANE`, pins in `WEFT_PIN_DIR`, else the config's `pinDir`); nil on
    /// the kernel path, which needs nothing of weft-cni. Pins that cannot be opened while the
    /// daemon says BPF are a retryable error, never a pod left unregistered.
    func bpfEndpoints(_ env: SubnetEnv) throws(CNIError) -> BPFEndpoints? {
        guard env.dataplane == .bpf else { return nil }
        let directory = env.pinDirectory ?? config.pinDirectory
        do {
            _ = try PinnedMaps(directory: directory)
        } catch {
            throw CNIError(CNIError.tryAgainLater, "\(config.subnetFile) says this node runs the BPF dataplane, but its pins in \(directory) cannot be opened",
                           details: "\(error); a running Weft daemon puts them back within a second: check `weft status` on the node, and retry")
        }
        return BPFEndpoints(pinDirectory: directory)
    }

    /// The endpoints to remove a pod from on DEL, which must succeed however the node is: the
    /// ones subnet.env names, else whatever pins the config's `pinDir` holds.
    func endpointsForCleanup() -> BPFEndpoints? {
        if let text = try? String(contentsOfFile: config.subnetFile, encoding: .utf8), let env = try? SubnetEnv.parse(text) {
            return try? bpfEndpoints(env)
        }
        return (try? PinnedMaps(directory: config.pinDirectory)) == nil ? nil : BPFEndpoints(pinDirectory: config.pinDirectory)
    }

    /// Runs the delegate plugin found in CNI_PATH with our environment; its stdout is the result.
    func runDelegate(_ delegate: [String: JSONValue], command: String) throws -> Data {
        guard case .string(let name)? = delegate["type"] else { throw CNIError(CNIError.invalidConfig, "delegate.type must be a string") }
        let type = try CNIEnvironment.pluginName(name)
        let searchPath = environment["CNI_PATH"] ?? ""
        guard let binary = searchPath.split(separator: ":").map({ "\($0)/\(type)" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw CNIError(CNIError.invalidConfig, "delegate plugin \(type) not found in CNI_PATH",
                           details: "searched \(searchPath.isEmpty ? "nothing (CNI_PATH is empty)" : searchPath); install it (Debian: containernetworking-plugins)")
        }
        var childEnvironment = environment
        childEnvironment["CNI_COMMAND"] = command
        let result: Command.Result
        do {
            // The delegate's standard error is the runtime's to log, as with Flannel's plugin.
            result = try Command.run([binary], input: JSONValue.object(delegate).serialized(), environment: childEnvironment,
                                     error: .inherit)
        } catch {
            throw CNIError(CNIError.ioFailure, "cannot run delegate plugin \(binary)", details: "\(error)")
        }
        let output = Data(result.stdout.utf8)
        guard result.succeeded else {
            var message = String(decoding: output, as: UTF8.self)
            if case .object(let error)? = try? JSONValue.parse(output), case .string(let text)? = error["msg"] {
                message = text
                if case .string(let details)? = error["details"], !details.isEmpty { message += ": \(details)" }
            }
            throw CNIError(CNIError.delegateFailed, "delegate plugin \(type) failed on \(command)", details: message)
        }
        return output
    }
}
