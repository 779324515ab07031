import Foundation

/// Every sample of a run, and what it adds up to: medians with their spread per mode,
/// and each BPF mode's ratio to its kernel mode and to the underlay. Pure.
public struct BenchReport: Codable, Sendable {
    public struct Sample: Codable, Sendable {
        public let round: Int
        public let mode: String
        public let metric: Metric
        public let value: Double
    }

    public var machine: String
    public var date: String
    public var rounds: Int
    public var durationSeconds: Int
    public var modes: [String]
    /// Where the sender and the receiver ran, the same for every mode.
    public var placement: String
    public var samples: [Sample] = []

    public init(machine: String, date: String, rounds: Int, durationSeconds: Int, modes: [String], placement: String = "") {
        self.machine = machine
        self.placement = placement
        self.date = date
        self.rounds = rounds
        self.durationSeconds = durationSeconds
        self.modes = modes
    }

    public mutating func record(round: Int, mode: String, _ metric: Metric, _ value: Double) {
        samples.append(Sample(round: round, mode: mode, metric: metric, value: value))
    }

    public struct Summary: Sendable {
        public let median: Double
        public let low: Double
        public let high: Double
    }

    public func summary(_ mode: String, _ metric: Metric) -> Summary? {
        let values = samples.filter { $0.mode == mode && $0.metric == metric }.map(\.value).sorted()
        guard !values.isEmpty else { return nil }
        let middle = values.count / 2
        let median = values.count % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2
        return Summary(median: median, low: values.first!, high: values.last!)
    }

    /// `mode / reference` for a metric, from the medians.
    public func ratio(_ mode: String, to reference: String, _ metric: Metric) -> Double? {
        guard let value = summary(mode, metric)?.median, let base = summary(reference, metric)?.median, base > 0 else { return nil }
        return value / base
    }

    /// The comparisons the project's goals are stated in.
    public static let comparisons = [("bpf-vxlan", "kernel-vxlan"), ("bpf-host-gw", "kernel-host-gw"),
                                     ("bpf-vxlan", "underlay"), ("bpf-host-gw", "underlay"),
                                     ("bpf-vxlan", "kernel-vxlan-flannel"), ("kernel-vxlan-flannel", "kernel-vxlan"),
                                     ("bpf-vxlan", "bpf-vxlan-unchecked"), ("bpf-host-gw", "bpf-host-gw-unchecked")]

    public func table() -> String {
        func format(_ value: Double) -> String { value >= 100 ? String(format: "%.0f", value) : String(format: "%.2f", value) }
        let width = (Metric.allCases.map(\.title.count).max() ?? 24) + 2
        func pad(_ text: String, _ size: Int = width) -> String { text.padding(toLength: size, withPad: " ", startingAt: 0) }
        var lines = placement.isEmpty ? [] : [placement, ""]
        lines.append(pad("metric (median, min-max)") + modes.map { pad($0, 22) }.joined())
        for metric in Metric.allCases {
            var line = pad(metric.title)
            for mode in modes {
                if let summary = summary(mode, metric) {
                    line += pad("\(format(summary.median)) (\(format(summary.low))-\(format(summary.high)))", 22)
                } else {
                    line += pad("-", 22)
                }
            }
            lines.append(line)
        }
        lines.append("")
        lines.append(pad("ratio", 44) + Metric.allCases.map { pad($0.title, $0.title.count + 2) }.joined())
        for (mode, reference) in Self.comparisons where modes.contains(mode) && modes.contains(reference) {
            lines.append(pad("\(mode) / \(reference)", 44) + Metric.allCases.map { metric in
                pad(ratio(mode, to: reference, metric).map { String(format: "%.2fx", $0) } ?? "-", metric.title.count + 2)
            }.joined())
        }
        return lines.joined(separator: "\n")
    }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    /// One panel per metric, one bar per mode (the median, with a whisker for the spread),
    /// each panel scaled to its largest value, so the pattern reads at a glance.
    public func svg() -> String {
        let panelWidth = 300.0, panelHeight = 200.0, columns = 3
        let colors = ["underlay": "#7f7f7f", "kernel-vxlan": "#d62728", "bpf-vxlan": "#2ca02c", "kernel-host-gw": "#ff7f0e", "bpf-host-gw": "#1f77b4",
                      "kernel-vxlan-flannel": "#9467bd"]
        let rows = (Metric.allCases.count + columns - 1) / columns
        let width = panelWidth * Double(columns), height = panelHeight * Double(rows) + 60
        var parts = [#"<svg xmlns="http://www.w3.org/2000/svg" width="\#(Int(width))" height="\#(Int(height))" font-family="sans-serif" font-size="11">"#,
                     #"<rect width="100%" height="100%" fill="white"/>"#,
                     #"<text x="10" y="18" font-size="14">weft bench: \#(machine), \#(rounds) rounds of \#(durationSeconds) s, medians\#(placement.isEmpty ? "" : "; \(placement)")</text>"#]
        for (index, mode) in modes.enumerated() {
            parts.append(#"<rect x="\#(10 + index * 120)" y="28" width="10" height="10" fill="\#(colors[mode] ?? "#444")"/><text x="\#(24 + index * 120)" y="37">\#(mode)</text>"#)
        }
        for (index, metric) in Metric.allCases.enumerated() {
            let x0 = Double(index % columns) * panelWidth, y0 = 50 + Double(index / columns) * panelHeight
            let summaries = modes.map { summary($0, metric) }
            let top = max(summaries.compactMap { $0?.high }.max() ?? 1, 1e-9)
            parts.append(#"<text x="\#(x0 + 10)" y="\#(y0 + 16)" font-size="12">\#(metric.title)\#(metric.higherIsBetter ? " - higher is better" : " - lower is better")</text>"#)
            let barWidth = (panelWidth - 40) / Double(max(modes.count, 1))
            let chartHeight = panelHeight - 60
            for (barIndex, mode) in modes.enumerated() {
                guard let summary = summaries[barIndex] else { continue }
                let barHeight = chartHeight * summary.median / top
                let x = x0 + 20 + Double(barIndex) * barWidth
                let baseline = y0 + 30 + chartHeight
                parts.append(#"<rect x="\#(x)" y="\#(baseline - barHeight)" width="\#(barWidth - 6)" height="\#(barHeight)" fill="\#(colors[mode] ?? "#444")"/>"#)
                let whiskerX = x + (barWidth - 6) / 2
                parts.append(#"<line x1="\#(whiskerX)" x2="\#(whiskerX)" y1="\#(baseline - chartHeight * summary.high / top)" y2="\#(baseline - chartHeight * summary.low / top)" stroke="black"/>"#)
                parts.append(#"<text x="\#(x)" y="\#(baseline + 14)">\#(String(format: summary.median >= 100 ? "%.0f" : "%.2f", summary.median))</text>"#)
            }
        }
        parts.append("</svg>")
        return parts.joined(separator: "\n")
    }
}
