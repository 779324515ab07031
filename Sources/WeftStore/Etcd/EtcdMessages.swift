import Foundation
import WeftCore

/// etcd's v3 JSON gateway messages: keys and values are base64, 64-bit integers are
/// strings, and fields at their zero value are left out. Pure encoding and decoding.
enum EtcdMessages {
    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
    static func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    /// The key just past every key under `prefix`: etcd's `range_end` for a prefix scan.
    static func prefixEnd(_ prefix: String) -> [UInt8] {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0xff {
                bytes[bytes.count - 1] = last + 1
                return bytes
            }
            bytes.removeLast()
        }
        return [0]
    }

    static func body(_ members: [String: JSONValue]) -> Data {
        Data(JSONValue.object(members).serialized().utf8)
    }

    static func rangeRequest(key: String, prefix: Bool) -> Data {
        var members: [String: JSONValue] = ["key": .string(base64(key))]
        if prefix { members["range_end"] = .string(base64(prefixEnd(key))) }
        return body(members)
    }

    /// `if <compare> then put` as one transaction.
    static func putRequest(key: String, value: [UInt8], lease: Int64) -> JSONValue {
        var put: [String: JSONValue] = ["key": .string(base64(key)), "value": .string(base64(value))]
        if lease != 0 { put["lease"] = .string(String(lease)) }
        return .object(["request_put": .object(put)])
    }

    /// One transaction of unconditional puts.
    static func putAll(_ entries: [(key: String, value: [UInt8])], lease: Int64) -> Data {
        body(["success": .array(entries.map { putRequest(key: $0.key, value: $0.value, lease: lease) })])
    }

    static func conditionalPut(key: String, value: [UInt8], lease: Int64, compare: (target: String, field: String, value: Int64)) -> Data {
        body([
            "compare": .array([.object([
                "key": .string(base64(key)), "target": .string(compare.target), "result": .string("EQUAL"),
                compare.field: .string(String(compare.value)),
            ])]),
            "success": .array([putRequest(key: key, value: value, lease: lease)]),
        ])
    }

    static func watchRequest(prefix: String, fromRevision revision: Int64) -> Data {
        body(["create_request": .object([
            "key": .string(base64(prefix)), "range_end": .string(base64(prefixEnd(prefix))),
            "start_revision": .string(String(revision)),
        ])])
    }

    // MARK: decoding

    static func object(_ data: Data) throws -> [String: JSONValue] {
        guard case .object(let members) = try JSONValue.parse(data) else { throw EtcdProtocolError("expected a JSON object: \(String(decoding: data, as: UTF8.self))") }
        return members
    }

    static func int64(_ value: JSONValue?) -> Int64 {
        switch value {
        case .string(let text)?: Int64(text) ?? 0
        case .integer(let number)?: number
        default: 0
        }
    }

    static func bool(_ value: JSONValue?) -> Bool {
        if case .bool(let flag)? = value { return flag }
        return false
    }

    static func bytes(_ value: JSONValue?) -> [UInt8] {
        guard case .string(let text)? = value, let data = Data(base64Encoded: text) else { return [] }
        return Array(data)
    }

    static func revision(_ response: [String: JSONValue]) -> Int64 {
        guard case .object(let header)? = response["header"] else { return 0 }
        return int64(header["revision"])
    }

    static func keyValue(_ value: JSONValue) -> StoredValue? {
        guard case .object(let kv) = value else { return nil }
        return StoredValue(key: String(decoding: bytes(kv["key"]), as: UTF8.self), value: bytes(kv["value"]),
                           createRevision: int64(kv["create_revision"]), modRevision: int64(kv["mod_revision"]),
                           lease: int64(kv["lease"]))
    }

    static func keyValues(_ response: [String: JSONValue]) -> [StoredValue] {
        guard case .array(let kvs)? = response["kvs"] else { return [] }
        return kvs.compactMap(keyValue)
    }

    /// One message of a watch stream.
    static func watchResponse(_ message: [String: JSONValue]) -> WatchResponse? {
        guard case .object(let result)? = message["result"] else { return nil }
        let compacted = int64(result["compact_revision"])
        if compacted > 0 { return .compacted(revision: compacted) }
        guard case .array(let events)? = result["events"], !events.isEmpty else { return nil }
        let changes = events.compactMap { event -> WatchEvent? in
            guard case .object(let members) = event, let kv = members["kv"].flatMap(keyValue) else { return nil }
            let isDelete = members["type"] == .string("DELETE")
            return WatchEvent(kind: isDelete ? .delete : .put, key: kv.key, value: isDelete ? [] : kv.value, revision: kv.modRevision)
        }
        return .events(changes, revision: revision(result))
    }
}

/// etcd answered with something this client cannot read.
struct EtcdProtocolError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
