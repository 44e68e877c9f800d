import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How many authentication refusals from one source are recorded one by one (`audit.refusals`).
public struct RefusalLimits: Sendable, Equatable {
    /// Refusals recorded individually per source and window.
    public var perSource: Int
    /// The window's length.
    public var window: Duration

    public init(perSource: Int = 10, window: Duration = .seconds(60)) {
        self.perSource = perSource
        self.window = window
    }
}

/// Keeps a flood of unauthenticated requests from growing the ledger (and costing an fsync each) without
/// hiding it: the first `perSource` refusals from a source in a window are recorded as usual, the rest are
/// counted, and when the window has ended one summary record says how many there were, when, and why.
///
/// A source is the peer's IPv4 address, or its IPv6 /64 (one host usually holds a whole /64). At most
/// `maxSources` sources are tracked; refusals from further sources share the source `*`, so memory stays bounded
/// and a spread-out flood is still limited and counted.
final class RefusalLimiter: Sendable {
    struct Summary: Equatable {
        var source: String
        var count: Int
        var first: String
        var last: String
        /// Refusal reasons with their counts, at most `maxReasons` distinct ones (the rest under "other").
        var reasons: [String: Int]
    }

    struct Entry {
        var windowStart: ContinuousClock.Instant
        var recorded = 0
        var suppressed = 0
        var first = ""
        var last = ""
        var reasons: [String: Int] = [:]

        func summary(_ source: String) -> Summary? {
            suppressed > 0 ? Summary(source: source, count: suppressed, first: first, last: last, reasons: reasons) : nil
        }
    }

    static let overflowSource = "*"
    static let maxReasons = 8

    let limits: RefusalLimits
    let maxSources: Int
    private let entries = Mutex<[String: Entry]>([:])

    init(_ limits: RefusalLimits, maxSources: Int = 4096) {
        self.limits = limits
        self.maxSources = maxSources
    }

    /// Decides one refusal from `peer` at `now` (`ts` is its timestamp, `reason` its reason): `record` is true when
    /// it goes into the ledger on its own; `ended` is the summary of the source's previous window, if that window
    /// suppressed refusals, to record first.
    func admit(peer: String, reason: String, now: ContinuousClock.Instant, ts: String) -> (record: Bool, ended: Summary?) {
        entries.withLock { table in
            var source = Self.source(of: peer)
            if table[source] == nil && table.count >= maxSources { source = Self.overflowSource }
            var ended: Summary?
            var entry = table[source] ?? Entry(windowStart: now)
            if now - entry.windowStart >= limits.window {
                ended = entry.summary(source)
                entry = Entry(windowStart: now)
            }
            let record = entry.recorded < limits.perSource
            if record {
                entry.recorded += 1
            } else {
                entry.suppressed += 1
                if entry.first.isEmpty { entry.first = ts }
                entry.last = ts
                let key = entry.reasons[reason] != nil || entry.reasons.count < Self.maxReasons ? reason : "other"
                entry.reasons[key, default: 0] += 1
            }
            table[source] = entry
            return (record, ended)
        }
    }

    /// Removes the sources whose window has ended (all of them when `all`) and returns the summaries of those that
    /// suppressed refusals, oldest source first.
    func drain(now: ContinuousClock.Instant, all: Bool = false) -> [Summary] {
        entries.withLock { table in
            var out: [(ContinuousClock.Instant, Summary)] = []
            for (source, entry) in table where all || now - entry.windowStart >= limits.window {
                if let s = entry.summary(source) { out.append((entry.windowStart, s)) }
                table[source] = nil
            }
            return out.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    var trackedSources: Int { entries.withLock { $0.count } }

    /// The source a peer address belongs to: an IPv4 address as is, an IPv6 address as its /64 (`2001:db8:0:1::/64`),
    /// anything else (a stdio peer, a name) as given.
    static func source(of peer: String) -> String {
        var v4 = in_addr()
        if inet_pton(AF_INET, peer, &v4) == 1 { return peer }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, peer, &v6) == 1 else { return peer }
        // IPv4-mapped and loopback addresses (the first 10 bytes zero) are kept whole.
        if withUnsafeBytes(of: v6, { $0.prefix(10).allSatisfy { $0 == 0 } }) { return peer }
        withUnsafeMutableBytes(of: &v6) { bytes in
            for i in 8..<16 { bytes[i] = 0 }
        }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &v6, &text, socklen_t(text.count)) != nil else { return peer }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/64"
    }
}
