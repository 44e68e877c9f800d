import MCPGJSON

/// The metrics the `prometheus` sink derives from ledger records, plus the latest kernel snapshot (op `metrics`),
/// rendered in the Prometheus text exposition format 0.0.4.
///
/// Series are counted across the derived families; once `maxSeries` distinct series exist, a record that would
/// make a new one counts into that family's `_overflow` series (every label `_overflow`) instead.
struct Registry: Sendable {
    /// Upper bounds (seconds) of the call latency histogram's buckets.
    static let latencyBuckets: [Double] = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
    ]
    /// The value every label of an overflow series has.
    static let overflow = "_overflow"

    /// One derived family: name, help, type, and its series by label values (in `labelNames` order).
    struct Family: Sendable {
        let name: String
        let help: String
        let type: String
        let labelNames: [String]
        var series: [[String]: Double] = [:]
    }

    /// One latency histogram series.
    struct Histogram: Sendable {
        var buckets = [UInt64](repeating: 0, count: Registry.latencyBuckets.count)
        var count: UInt64 = 0
        var sum: Double = 0
    }

    /// A kernel-side sample from op `metrics`.
    struct KernelSample: Sendable {
        let name: String
        let labels: [(String, String)]
        let value: Double
    }

    let maxSeries: Int
    private(set) var seriesCount = 0
    /// True once a series was refused because of `maxSeries` (the plugin logs that once).
    private(set) var overflowed = false

    var calls = Family(
        name: "mcpg_calls_total", help: "Requests recorded in the audit ledger, by type, tool, backend and outcome.",
        type: "counter", labelNames: ["type", "tool", "backend", "status"])
    var decisions = Family(
        name: "mcpg_decisions_total", help: "Policy decisions recorded in the audit ledger, by request type.",
        type: "counter", labelNames: ["type", "decision"])
    var groups = Family(
        name: "mcpg_calls_by_group_total",
        help: "tools/call requests by principal group (a caller in several groups counts in each).",
        type: "counter", labelNames: ["group"])
    var records = Family(
        name: "mcpg_ledger_records_total", help: "Ledger records received, by kind.", type: "counter",
        labelNames: ["kind"])
    var latency: [[String]: Histogram] = [:]
    var ledgerSeq: Int64 = 0
    var kernelCounters: [KernelSample] = []
    var kernelGauges: [KernelSample] = []

    init(maxSeries: Int) {
        self.maxSeries = maxSeries
    }

    /// Counts one ledger record (any kind; unknown kinds are only counted by kind).
    mutating func observe(_ record: JSON) {
        if let seq = record["seq"]?.intValue, seq > ledgerSeq { ledgerSeq = seq }
        var kind = "unknown"
        if case .object(let o) = record {
            for key in o.keys where !["seq", "ts", "prev", "hash"].contains(key) {
                kind = key
                break
            }
        }
        add(\.records, [kind])
        guard kind == "event", let event = record["event"], let type = event["type"]?.stringValue else { return }
        let tool = event["tool"]?.stringValue ?? event["name"]?.stringValue ?? ""
        let backend = event["backend"]?.stringValue ?? ""
        if let status = event["outcome"]?["status"]?.stringValue {
            add(\.calls, [type, tool, backend, status])
        }
        if let decision = event["decision"].flatMap(effect) {
            // A summary of authentication refusals stands for `refusals.count` of them.
            let n = event["refusals"]?["count"]?.intValue.map { Int(max(0, $0)) } ?? 1
            add(\.decisions, [type, decision], by: n)
        }
        guard type == "tools/call" else { return }
        for g in event["principal"]?["groups"]?.arrayValue ?? [] {
            if let g = g.stringValue { add(\.groups, [g]) }
        }
        if let us = event["latency_us"]?.intValue, us >= 0 {
            var key = [tool, backend]
            if latency[key] == nil {
                if admit() { latency[key] = Histogram() } else { key = [Self.overflow, Self.overflow] }
            }
            let seconds = Double(us) / 1_000_000
            var h = latency[key] ?? Histogram()
            for (i, bound) in Self.latencyBuckets.enumerated() where seconds <= bound { h.buckets[i] += 1 }
            h.count += 1
            h.sum += seconds
            latency[key] = h
        }
    }

    /// Replaces the kernel's counters and gauges with a new snapshot (op `metrics`).
    mutating func setKernel(_ snapshot: JSON) {
        func samples(_ key: String) -> [KernelSample] {
            (snapshot[key]?.arrayValue ?? []).compactMap { s in
                guard let name = s["name"]?.stringValue, let value = s["value"]?.doubleValue else { return nil }
                let labels = (s["labels"]?.objectValue ?? [:]).compactMap { m in m.value.stringValue.map { (m.key, $0) } }
                return KernelSample(name: name, labels: labels, value: value)
            }
        }
        kernelCounters = samples("counters")
        kernelGauges = samples("gauges")
    }

    private mutating func admit() -> Bool {
        guard seriesCount < maxSeries else {
            overflowed = true
            return false
        }
        seriesCount += 1
        return true
    }

    private mutating func add(_ family: WritableKeyPath<Registry, Family>, _ values: [String], by n: Int = 1) {
        var key = values
        if self[keyPath: family].series[values] == nil && !admit() {
            key = [String](repeating: Self.overflow, count: values.count)
        }
        self[keyPath: family].series[key, default: 0] += Double(n)
    }

    /// The exposition text (format 0.0.4).
    func render() -> String {
        var out = ""
        func header(_ name: String, _ help: String, _ type: String) {
            out += "# HELP \(name) \(escapeHelp(help))\n# TYPE \(name) \(type)\n"
        }
        func labels(_ names: [String], _ values: [String], extra: String? = nil) -> String {
            var parts = zip(names, values).map { "\($0)=\"\(escapeLabel($1))\"" }
            if let extra { parts.append(extra) }
            return parts.isEmpty ? "" : "{" + parts.joined(separator: ",") + "}"
        }
        for f in [calls, decisions, groups, records] {
            header(f.name, f.help, f.type)
            for (values, v) in f.series.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                out += "\(f.name)\(labels(f.labelNames, values)) \(number(v))\n"
            }
        }
        let h = "mcpg_call_latency_seconds"
        header(h, "tools/call latency as the gateway measured it (policy, transforms and backend).", "histogram")
        for (key, hist) in latency.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            let names = ["tool", "backend"]
            for (i, bound) in Self.latencyBuckets.enumerated() {
                out += "\(h)_bucket\(labels(names, key, extra: "le=\"\(number(bound))\"")) \(hist.buckets[i])\n"
            }
            out += "\(h)_bucket\(labels(names, key, extra: "le=\"+Inf\"")) \(hist.count)\n"
            out += "\(h)_sum\(labels(names, key)) \(number(hist.sum))\n"
            out += "\(h)_count\(labels(names, key)) \(hist.count)\n"
        }
        header("mcpg_ledger_seq", "Sequence number of the newest ledger record received.", "gauge")
        out += "mcpg_ledger_seq \(ledgerSeq)\n"
        header("mcpg_series_overflow", "1 once max_series was reached and new series count into _overflow.", "gauge")
        out += "mcpg_series_overflow \(overflowed ? 1 : 0)\n"
        for (samples, type) in [(kernelCounters, "counter"), (kernelGauges, "gauge")] {
            var byName: [String: [KernelSample]] = [:]
            for s in samples { byName[metricName(s.name), default: []].append(s) }
            for (name, list) in byName.sorted(by: { $0.key < $1.key }) {
                // Names the derived families use are not repeated (a family appears once per scrape).
                guard !Self.reservedNames.contains(name) else { continue }
                header(name, Self.kernelHelp[name] ?? "Reported by the gateway kernel.", type)
                for s in list {
                    out += "\(name)\(labels(s.labels.map { labelName($0.0) }, s.labels.map(\.1))) \(number(s.value))\n"
                }
            }
        }
        return out
    }

    /// HELP text for the kernel's own series; plugins' series (`<plugin>_<name>`) get a generic one.
    static let kernelHelp: [String: String] = [
        "mcpg_sink_dropped_total": "Ledger records a sink's full queue dropped (they stay in the ledger).",
        "mcpg_sink_queue_depth": "Ledger records waiting in a sink's queue.",
        "mcpg_plugin_errors_total": "Plugin calls that failed (error answer or timeout), by plugin instance and op.",
    ]

    static let reservedNames: Set<String> = [
        "mcpg_calls_total", "mcpg_decisions_total", "mcpg_calls_by_group_total", "mcpg_ledger_records_total",
        "mcpg_call_latency_seconds", "mcpg_ledger_seq", "mcpg_series_overflow",
    ]
}

/// A decision's effect: `effect` ("allow" / "deny"), or the boolean `allow`; nil when it has neither.
func effect(_ decision: JSON) -> String? {
    if let e = decision["effect"]?.stringValue { return e }
    return decision["allow"]?.boolValue.map { $0 ? "allow" : "deny" }
}

/// A label value escaped for the text format: backslash, double quote and line feed.
func escapeLabel(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for c in s.unicodeScalars {
        switch c {
        case "\\": out += "\\\\"
        case "\"": out += "\\\""
        case "\n": out += "\\n"
        default: out.unicodeScalars.append(c)
        }
    }
    return out
}

/// HELP text escaped for the text format: backslash and line feed.
func escapeHelp(_ s: String) -> String {
    s.replacing("\\", with: "\\\\").replacing("\n", with: "\\n")
}

/// `name` with every character outside `[a-zA-Z0-9_:]` replaced by `_` (and a leading digit prefixed by `_`).
func metricName(_ name: String) -> String {
    var out = ""
    for c in name.unicodeScalars {
        let ok = (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "_" || c == ":"
        out.unicodeScalars.append(ok ? c : "_")
    }
    if let f = out.unicodeScalars.first, f >= "0" && f <= "9" { out = "_" + out }
    return out.isEmpty ? "_" : out
}

/// A label name: like `metricName` without `:`.
func labelName(_ name: String) -> String {
    metricName(name).replacing(":", with: "_")
}

/// A sample value: integers without a fraction, others in Swift's shortest round-trip form.
func number(_ v: Double) -> String {
    if v.isNaN { return "NaN" }
    if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
    if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
    return "\(v)"
}
