import Foundation

/// A decoded JSON document, kept loose so that parsers can report every problem
/// by field name instead of stopping at the first type mismatch.
public indirect enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Parses a JSON text. The error names the position when the decoder gives one.
    public static func parse(_ data: Data) throws(JSONSyntaxError) -> JSONValue {
        do {
            return try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw JSONSyntaxError(detail: syntaxDetail(data) ?? "\(error)")
        }
    }

    /// JSONDecoder does not say where a text went wrong; JSONSerialization does.
    private static func syntaxDetail(_ data: Data) -> String? {
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            return nil
        } catch {
            return (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
        }
    }

    public static func parse(_ text: String) throws(JSONSyntaxError) -> JSONValue {
        try parse(Data(text.utf8))
    }

    /// Looks a key up the way Go's encoding/json does: an exact match first, then a
    /// case-insensitive one. Returns the key as spelled in the document.
    public func member(_ name: String) -> (key: String, value: JSONValue)? {
        guard case .object(let members) = self else { return nil }
        if let value = members[name] { return (name, value) }
        let folded = name.lowercased()
        return members.first { $0.key.lowercased() == folded }.map { ($0.key, $0.value) }
    }

    /// A short name of the value's JSON type, for error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .integer, .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// Compact JSON text. Object members named in `keyOrder` come first, in that order;
    /// the rest follow sorted, so the output is deterministic.
    public func serialized(keyOrder: [String] = []) -> String {
        var output = ""
        write(to: &output, keyOrder: keyOrder)
        return output
    }

    private func write(to output: inout String, keyOrder: [String]) {
        switch self {
        case .null: output += "null"
        case .bool(let value): output += value ? "true" : "false"
        case .integer(let value): output += String(value)
        case .number(let value): output += value.isFinite ? "\(value)" : "null"
        case .string(let value): Self.writeString(value, to: &output)
        case .array(let values):
            output += "["
            for (index, value) in values.enumerated() {
                if index > 0 { output += "," }
                value.write(to: &output, keyOrder: keyOrder)
            }
            output += "]"
        case .object(let members):
            let ordered = keyOrder.filter { members[$0] != nil }
            let rest = members.keys.filter { !keyOrder.contains($0) }.sorted()
            output += "{"
            for (index, key) in (ordered + rest).enumerated() {
                if index > 0 { output += "," }
                Self.writeString(key, to: &output)
                output += ":"
                members[key]!.write(to: &output, keyOrder: keyOrder)
            }
            output += "}"
        }
    }

    private static func writeString(_ value: String, to output: inout String) {
        output += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
    }
}

extension JSONValue: Decodable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }
}

/// The text is not JSON at all.
public struct JSONSyntaxError: Error, Sendable, CustomStringConvertible {
    public let detail: String
    public var description: String { "not valid JSON: \(detail)" }
}
