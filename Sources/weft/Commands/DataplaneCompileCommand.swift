import ArgumentParser
import Foundation
import Logging
import WeftBPF
import WeftCore
import WeftDataplane
import WeftNetlink

extension DataplaneCommand {
    struct Compile: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Compile the TC programs in bpf/ with clang (-target bpf -O2 -g).")
        @Option(help: "The bpf/ source directory. Default: the checkout weft was built from.") var source: String?
        @Option(help: "Where to write the objects. Default: <source>/out.") var output: String?
        @Flag(help: "Compile even when the objects are newer than their sources.") var force = false

        func run() throws {
            guard let source = source ?? BPFPrograms.sourceDirectory(near: CommandLine.arguments[0]) else {
                throw CommandFailure("no bpf/ source directory beside this weft binary; pass --source DIR")
            }
            let target = BPFPrograms(directory: output ?? "\(source)/out")
            let compiler = BPFCompiler(sourceDirectory: source)
            guard force || compiler.isStale(target) else {
                print("up to date: \(target.directory)")
                return
            }
            try compiler.compile(into: target)
            print("compiled \(BPFPrograms.names.count) programs into \(target.directory)")
        }
    }
}
