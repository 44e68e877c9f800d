import MCPGJSON
import PluginKit
import Synchronization

/// Serves the gateway's metrics for Prometheus to scrape: `GET /metrics` on its own listen address, in the text
/// exposition format 0.0.4.
///
/// The series come from the ledger records the sink receives (calls, decisions, latency, principal groups,
/// record kinds, the newest sequence number) and from the kernel's own counters and gauges, which the kernel sends
/// every few seconds through op `metrics` (plugin errors, each sink's queue depth and drops, plugins' `metric`
/// samples). The derived series are bounded by `max_series`.
struct Prometheus: SinkPlugin {
    struct Config: Decodable, Sendable {
        var listen: String?
        var path: String?
        var max_series: Int?
    }
    static let name = "prometheus"
    static let version = "1.0.0"
    static var configSchema: JSON {
        [
            "type": "object", "additionalProperties": false,
            "properties": [
                "listen": [
                    "type": "string", "minLength": 3, "default": "127.0.0.1:9464",
                    "description": .string(
                        "Address the scrape endpoint listens on, host:port ([v6]:port for IPv6). It is plain HTTP "
                            + "with no authentication: keep it on loopback or a private network."),
                ],
                "path": [
                    "type": "string", "pattern": "^/", "default": "/metrics",
                    "description": "The scrape path; other paths answer 404.",
                ],
                "max_series": [
                    "type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 10_000,
                    "description": .string(
                        "Most label sets the derived metrics keep; past it, new label sets count into an "
                            + "_overflow series (all labels \"_overflow\") and a warning is logged once."),
                ],
            ],
        ]
    }

    let store: Store
    let server: ScrapeServer
    let host: Host

    /// The registry and whether the overflow warning was logged, shared with the scrape handler.
    final class Store: Sendable {
        let registry: Mutex<Registry>
        let warned = Mutex(false)
        init(maxSeries: Int) { registry = Mutex(Registry(maxSeries: maxSeries)) }
    }

    init(config: Config, host: Host) throws {
        let listen = config.listen ?? "127.0.0.1:9464"
        guard let (h, port) = splitHostPort(listen) else {
            throw PluginError.badRequest("prometheus: listen \"\(listen)\" is not host:port")
        }
        let store = Store(maxSeries: config.max_series ?? 10_000)
        let path = config.path ?? "/metrics"
        do {
            server = try ScrapeServer(host: h, port: port, path: path) {
                store.registry.withLock { $0.render() }
            }
        } catch {
            throw PluginError("prometheus: cannot listen on \(listen): \(error)")
        }
        self.store = store
        self.host = host
        host.log(.info, "prometheus: serving metrics", ["mcpg.sink.listen": "\(h):\(server.port)", "mcpg.sink.path": path])
    }

    func write(_ event: JSON) async throws {
        let overflowed = store.registry.withLock { r in
            r.observe(event)
            return r.overflowed
        }
        if overflowed, store.warned.withLock({ w in defer { w = true }; return !w }) {
            host.log(.warning, "prometheus: max_series reached; new label sets count into _overflow series")
        }
    }

    func metrics(_ snapshot: JSON) async throws {
        store.registry.withLock { $0.setKernel(snapshot) }
    }
}

/// `host:port` or `[v6]:port` split; nil when it is neither or the port is out of range.
func splitHostPort(_ s: String) -> (String, Int)? {
    guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (0...65535).contains(port) else {
        return nil
    }
    var host = String(s[..<colon])
    if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    guard !host.isEmpty else { return nil }
    return (host, port)
}

@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { PluginExport.descriptor(for: Prometheus.self) }
