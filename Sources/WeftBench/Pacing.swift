/// When each batch of a paced generator is due: batch `k` of `batch` packets at `rate`
/// packets a second leaves `k * batch / rate` seconds after the start. Pure.
public struct PacingSchedule: Sendable, Equatable {
    public let rate: Double
    public let batch: Int

    public init(rate: Double, batch: Int) {
        self.rate = rate
        self.batch = batch
    }

    public func offset(ofBatch index: Int) -> Double {
        Double(index * batch) / rate
    }
}

/// What `weft bench packets receive` prints: the datagrams that arrived and over how long.
public struct PacketCount: Codable, Sendable, Equatable {
    public let packets: UInt64
    public let seconds: Double

    public init(packets: UInt64, seconds: Double) {
        self.packets = packets
        self.seconds = seconds
    }

    public var kpps: Double { seconds > 0 ? Double(packets) / seconds / 1000 : 0 }
}
