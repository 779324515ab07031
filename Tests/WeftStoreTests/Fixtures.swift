import Foundation
import Logging
import WeftCore
@testable import WeftStore
@_exported import WeftTestSupport

/// A clock the test moves by hand, so TTL tests need no sleeping.
final class ManualClock: @unchecked Sendable {
    private let lock = NSLock()
    private var current = Date(timeIntervalSince1970: 1_800_000_000)

    var now: Date {
        lock.withLock { current }
    }

    func advance(seconds: TimeInterval) {
        lock.withLock { current = current.addingTimeInterval(seconds) }
    }
}

/// Collects `count` items from a stream, failing if they do not arrive within `seconds`: a bound
/// for a stream that stopped, with room for a test run whose other suites load both cores.
func collect<T: Sendable>(_ count: Int, from stream: AsyncThrowingStream<T, any Error>, within seconds: Double = 60) async throws -> [T] {
    try await withThrowingTaskGroup(of: [T].self) { group in
        group.addTask {
            var items: [T] = []
            for try await item in stream {
                items.append(item)
                if items.count == count { break }
            }
            return items
        }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            throw CollectTimeout(expected: count)
        }
        let items = try await group.next()!
        group.cancelAll()
        return items
    }
}

struct CollectTimeout: Error, CustomStringConvertible {
    let expected: Int
    var description: String { "the stream did not yield \(expected) items in time" }
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
