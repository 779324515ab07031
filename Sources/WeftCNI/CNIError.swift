/// An error in the form the CNI spec wants on stdout: a code, a message, details.
public struct CNIError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The spec's well-known codes.
    public static let incompatibleVersion = 1
    public static let unsupportedField = 2
    public static let invalidEnvironment = 4
    public static let ioFailure = 5
    public static let decodingFailure = 6
    public static let invalidConfig = 7
    public static let tryAgainLater = 11
    /// Plugin-specific codes start at 100.
    public static let delegateFailed = 100
    public static let dataplaneFailed = 101

    public let code: Int
    public let message: String
    public let details: String

    public init(_ code: Int, _ message: String, details: String = "") {
        self.code = code
        self.message = message
        self.details = details
    }

    public var description: String { details.isEmpty ? message : "\(message): \(details)" }

    public func json(cniVersion: String) -> String {
        JSONWriter.object([("cniVersion", .string(cniVersion)), ("code", .integer(Int64(code))), ("msg", .string(message)),
                           ("details", .string(details))])
    }
}
