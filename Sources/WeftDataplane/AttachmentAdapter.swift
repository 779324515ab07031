import Foundation
import Logging
import WeftBPF
import WeftCore
import WeftNetlink

/// Keeps the programs where `NodeDesiredState.attachments` puts them: attaches the pinned
/// program wherever Weft's filter holds another one (or none), and removes Weft's filters
/// from every interface the desired state does not name (an earlier run's underlay, a
/// forgotten pod's veth). Set-up and repair both come here; only the CNI plugin attaches
/// one pod's from_pod outside it, on ADD.
struct AttachmentAdapter {
    let pinDirectory: String
    let logger: Logger

    /// Returns what it changed. `registeredNow` reads the pods' interfaces from the endpoint
    /// map just before filters are removed: a pod the CNI plugin added since the desired state
    /// was worked out keeps its from_pod.
    func converge(_ attachments: [ProgramAttachment], interfaces: NodeInterfaceIndices, links: [NetworkLink],
                  registeredNow: () throws -> Set<Int32>) throws -> [String] {
        var changes: [String] = []
        var hooked: Set<Int32> = []
        for attachment in attachments {
            guard let index = interfaces.index(of: attachment.interface) else {
                throw DataplaneError("\(attachment): the \(attachment.interface) does not exist; set the dataplane up first")
            }
            hooked.insert(index)
            let hook = TCAttachment(interfaceIndex: index, direction: attachment.hook == .ingress ? .ingress : .egress)
            let program = try ProgramPin.open(attachment.program.rawValue, in: pinDirectory)
            defer { close(program) }
            if try hook.attachedProgramID() != ProgramPin.id(of: program) {
                try hook.attach(programDescriptor: program, name: attachment.program.rawValue)
                changes.append("\(attachment.program.rawValue) at the \(hook)")
            }
        }
        hooked.formUnion(try registeredNow())
        var detached: [String] = []
        for link in links where !hooked.contains(link.index) {
            for direction in [TCAttachment.Direction.ingress, .egress]
            where try TCAttachment(interfaceIndex: link.index, direction: direction).detach() {
                detached.append("\(link.name) \(direction)")
            }
        }
        if !detached.isEmpty {
            logger.notice("removed Weft's filters from interfaces it no longer uses", metadata: ["filters": "\(detached.joined(separator: ", "))"])
        }
        return changes + detached.map { "removed Weft's filter from \($0), which no pod or hook of this node uses" }
    }
}
