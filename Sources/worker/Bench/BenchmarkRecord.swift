import Foundation

/// One result line in the peers' harness format (one JSON object per line, as `results.jsonl`).
struct BenchmarkRecord: Encodable {
    struct Quiet: Encodable {
        var waited_s = 0.0
        var gave_up = false
        var busy_samples = 0
        var samples = 0
    }

    var ts: String
    var peer = "keel"
    var backend: String
    var workload: String
    var n: Int
    var metrics: [String: Double]
    var quiet = Quiet()
    var tag = ""

    init(backend: String, workload: String, n: Int, metrics: [String: Double]) {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
        formatter.locale = Locale(identifier: "en_US_POSIX")
        ts = formatter.string(from: Date())
        self.backend = backend
        self.workload = workload
        self.n = n
        self.metrics = metrics
    }

    func jsonLine() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}

/// Nearest-rank percentiles, as the peers' harness computes them.
enum LatencySummary {
    static func metrics(_ milliseconds: [Double]) -> [String: Double] {
        let sorted = milliseconds.sorted()
        func percentile(_ p: Double) -> Double {
            let rank = Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1
            return sorted[max(0, min(sorted.count - 1, rank))]
        }
        func round2(_ value: Double) -> Double { (value * 100).rounded() / 100 }
        return [
            "count": Double(sorted.count), "p50_ms": round2(percentile(50)), "p90_ms": round2(percentile(90)),
            "p99_ms": round2(percentile(99)), "max_ms": round2(sorted.last ?? 0),
            "mean_ms": round2(sorted.reduce(0, +) / Double(max(1, sorted.count))),
        ]
    }
}
