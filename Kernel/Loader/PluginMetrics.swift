import Synchronization

/// The process-wide registry behind the host table's `metric`: counters, gauges and histograms keyed by name and
/// labels, for a metrics sink (e.g. Prometheus text) to read.
public final class PluginMetrics: Sendable {
    /// The registry plugins write to.
    public static let shared = PluginMetrics()

    /// Histogram bucket upper bounds (seconds), Prometheus' defaults.
    public static let buckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    /// Which metric type a series is.
    public enum Kind: Int32, Sendable { case counter = 0, gauge = 1, histogram = 2 }

    /// One series' identity: name and sorted labels.
    public struct Key: Sendable, Hashable {
        /// Metric name, prefixed with the plugin's name by the kernel.
        public let name: String
        /// Label pairs, sorted by label name.
        public let labels: [Label]
    }

    /// One label pair.
    public struct Label: Sendable, Hashable {
        /// Label name.
        public let name: String
        /// Label value.
        public let value: String
    }

    /// One series' current value.
    public struct Sample: Sendable, Equatable {
        /// Series type.
        public var kind: Kind
        /// Counter total or gauge value; for a histogram the sum of observations.
        public var value: Double
        /// Histogram: number of observations (counters and gauges: number of samples recorded).
        public var count: UInt64
        /// Histogram: cumulative count per bucket of `PluginMetrics.buckets` (empty for others).
        public var bucketCounts: [UInt64]
    }

    private let series = Mutex<[Key: Sample]>([:])

    /// An empty registry (tests use their own; the kernel uses `shared`).
    public init() {}

    /// Records one sample. A series keeps the kind it was first recorded with; samples of another kind for the same
    /// key are dropped (and reported by returning false).
    @discardableResult
    public func record(_ kind: Kind, name: String, value: Double, labels: [(String, String)] = []) -> Bool {
        guard value.isFinite else { return false }
        let key = Key(name: name, labels: labels.map { Label(name: $0.0, value: $0.1) }.sorted { $0.name < $1.name })
        return series.withLock { s in
            var sample = s[key] ?? Sample(
                kind: kind, value: 0, count: 0, bucketCounts: kind == .histogram ? Array(repeating: 0, count: Self.buckets.count) : [])
            guard sample.kind == kind else { return false }
            switch kind {
            case .counter:
                guard value >= 0 else { return false }
                sample.value += value
            case .gauge:
                sample.value = value
            case .histogram:
                sample.value += value
                for (i, bound) in Self.buckets.enumerated() where value <= bound { sample.bucketCounts[i] += 1 }
            }
            sample.count += 1
            s[key] = sample
            return true
        }
    }

    /// All series, sorted by name then labels.
    public func snapshot() -> [(key: Key, sample: Sample)] {
        series.withLock { s in s.map { (key: $0.key, sample: $0.value) } }
            .sorted { a, b in
                a.key.name != b.key.name
                    ? a.key.name < b.key.name
                    : a.key.labels.map { "\($0.name)=\($0.value)" }.joined(separator: ",")
                        < b.key.labels.map { "\($0.name)=\($0.value)" }.joined(separator: ",")
            }
    }

    /// One series' value, or nil.
    public func sample(name: String, labels: [(String, String)] = []) -> Sample? {
        let key = Key(name: name, labels: labels.map { Label(name: $0.0, value: $0.1) }.sorted { $0.name < $1.name })
        return series.withLock { $0[key] }
    }
}
