import ArgumentParser
import Logging
import MCPGAudit
import MCPGConfig
import MCPGJSON
import MCPGLoader
import MCPGRouter
import MCPGTransport
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the gateway.",
        discussion: """
            Loads the config, verifies and loads every plugin, lists the backends' tools and opens the audit \
            ledger; any problem stops it before it listens. Serves MCP over Streamable HTTP as configured in \
            server.http, or with --stdio one client on stdin/stdout (logs go to stderr either way). SIGTERM or \
            SIGINT stops it gracefully: in-flight calls finish, the ledger gets a final signed checkpoint.
            """)

    @Option(name: .long, help: "The config file (YAML).")
    var config: String = "mcpg.yaml"

    @Flag(name: .long, help: "Serve one MCP client on stdin/stdout instead of HTTP.")
    var stdio = false

    func run() async throws {
        let gatewayConfig: GatewayConfig
        do throws(ConfigError) { gatewayConfig = try ConfigLoader.load(path: config) } catch {
            for d in error.diagnostics { printError(d.description) }
            if !fileExists(config) { printError("hint: `mcpg init DIR` writes a working config") }
            throw ExitCode(1)
        }
        if !stdio && gatewayConfig.server.http == nil {
            printError("\(config): error: no server.http in the config; add it or use --stdio")
            throw ExitCode(1)
        }
        bootstrapLogging(gatewayConfig.log)
        let logger = Logger(label: "mcpg")
        // The certificate and key load before anything starts: a bad file stops boot at its config line.
        let tlsCredentials: TLSCredentials?
        do throws(ConfigError) {
            tlsCredentials = stdio ? nil : try loadTLS(gatewayConfig, logger: logger)
        } catch {
            for d in error.diagnostics { printError(d.description) }
            throw ExitCode(1)
        }

        let parts: Boot.Parts
        do throws(ConfigError) {
            parts = try await Boot.start(gatewayConfig, logger: logger, version: mcpgVersion)
        } catch {
            for d in error.diagnostics { printError(d.description) }
            throw ExitCode(1)
        }

        let sinks = SinkPump(ledger: parts.ledger, sinks: parts.sinks, logger: logger)
        let sinkTask = Task { await sinks.run() }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        services.append(.init(service: CatalogKeeper(gateway: parts.gateway)))
        services.append(.init(service: Periodic(interval: .seconds(1)) { [gateway = parts.gateway] in
            await gateway.flushRefusalSummaries()
        }))
        if stdio {
            let front = StdioFront(gateway: parts.gateway, logger: logger,
                                   maxMessageBytes: gatewayConfig.server.http?.maxBodyBytes ?? 4 << 20)
            services.append(.init(service: front, successTerminationBehavior: .gracefullyShutdownGroup))
        } else if let http = gatewayConfig.server.http {
            var frontConfig = HTTPFrontConfig(host: http.host, port: http.port, path: http.path,
                                              allowedOrigins: Set(http.allowedOrigins), maxBodyBytes: http.maxBodyBytes)
            frontConfig.tls = tlsCredentials
            frontConfig.publicURL = http.publicURL
            frontConfig.resourceMetadata = await parts.gateway.identityResourceMetadata()
            let scheme = frontConfig.scheme
            let front = HTTPFront(
                gateway: parts.gateway, config: frontConfig, group: group, logger: logger,
                onListening: { addr in
                    let host = addr.ipAddress.map { $0.contains(":") ? "[\($0)]" : $0 } ?? http.host
                    printError("mcpg: listening on \(scheme)://\(host):\(addr.port ?? http.port)\(http.path)")
                })
            services.append(.init(service: front))
            services.append(.init(service: Periodic(interval: .seconds(60)) { [sessions = parts.gateway.sessions] in
                sessions.sweep()
            }))
        }
        let serviceGroup = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        var failure: (any Error)?
        do { try await serviceGroup.run() } catch { failure = error }

        parts.gateway.sessions.closeAll()
        await parts.gateway.flushRefusalSummaries(all: true)
        do { try await parts.ledger?.close() } catch {
            logger.critical("closing the audit ledger failed", metadata: ["mcpg.error": "\(error)"])
            failure = failure ?? error
        }
        await sinkTask.value
        // Every record has reached every sink's queue and call; let the sinks deliver what they still buffer.
        await withTaskGroup(of: Void.self) { finishing in
            for sink in parts.sinks {
                finishing.addTask { await Task.detached { sink.instance.finish() }.value }
            }
        }
        try? await group.shutdownGracefully()
        if let failure {
            logger.error("gateway stopped with an error", metadata: ["mcpg.error": "\(failure)"])
            throw ExitCode(1)
        }
        logger.info("gateway stopped")
    }
}

/// Runs `action` every `interval` until graceful shutdown: ending idle sessions once a minute; recording the
/// summaries of ended refusal windows (`audit.refusals`) once a second, so a flood that stopped is in the ledger
/// soon after its window ends rather than at the next refusal or at shutdown.
struct Periodic: Service {
    let interval: Duration
    let action: @Sendable () async -> Void
    func run() async {
        // Ends quietly on shutdown: the sleep throws CancellationError, which is the normal way out.
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                await action()
            }
        }
    }
}

/// Keeps the catalog current while the gateway runs (backend change notifications, refreshes, retries).
struct CatalogKeeper: Service {
    let gateway: Gateway
    func run() async {
        await cancelWhenGracefulShutdown { await gateway.maintainCatalog() }
    }
}

/// Feeds every durable ledger record to each sink through its own bounded queue: a slow or dead sink never
/// blocks calls; records it cannot take are dropped, counted and logged (they stay in the ledger).
///
/// Every `metricsInterval` it also sends each sink op `metrics`: the kernel's counters and gauges
/// (`PluginMetrics.shared`, including each sink's `mcpg_sink_queue_depth` and `mcpg_sink_dropped_total`) as
/// `{"counters":[{"name","labels":{…},"value"}],"gauges":[…]}`. A sink that answers -32601 gets no more.
struct SinkPump: Sendable {
    let ledger: Ledger?
    let sinks: [(label: String, instance: PluginInstance)]
    let logger: Logger
    static let queueLimit = 10_000
    static let metricsInterval = Duration.seconds(5)

    /// Records waiting in one sink's queue.
    final class Depth: Sendable {
        let value = Atomic<Int>(0)
    }

    func run() async {
        guard let ledger, !sinks.isEmpty else { return }
        let source = await ledger.committedRecords()
        var queues: [AsyncStream<[UInt8]>.Continuation] = []
        let depths = sinks.map { _ in Depth() }
        for sink in sinks {
            PluginMetrics.shared.record(.counter, name: "mcpg_sink_dropped_total", value: 0, labels: [("sink", sink.label)])
        }
        let ticker = Task { await sendMetrics(depths) }
        await withTaskGroup(of: Void.self) { group in
            for (i, sink) in sinks.enumerated() {
                let (stream, cont) = AsyncStream<[UInt8]>.makeStream(bufferingPolicy: .bufferingOldest(Self.queueLimit))
                queues.append(cont)
                let depth = depths[i]
                group.addTask {
                    for await record in stream {
                        depth.value.subtract(1, ordering: .relaxed)
                        // The ledger line is already the record's JSON: hand the bytes over as they are.
                        let reply = await sink.instance.call(op: "event", request: record, timeout: .seconds(10))
                        if !reply.ok {
                            logger.warning("sink failed to take a record", metadata: [
                                "mcpg.plugin.id": "\(sink.label)", "mcpg.error": "\(reply.errorMessage ?? "malformed answer")",
                            ])
                        }
                    }
                }
            }
            var dropped = [Int](repeating: 0, count: sinks.count)
            for await line in source {
                for (i, q) in queues.enumerated() {
                    depths[i].value.add(1, ordering: .relaxed)
                    if case .dropped = q.yield(line) {
                        depths[i].value.subtract(1, ordering: .relaxed)
                        dropped[i] += 1
                        _ = PluginMetrics.shared.record(.counter, name: "mcpg_sink_dropped_total", value: 1, labels: [("sink", sinks[i].label)])
                        if dropped[i] == 1 || dropped[i] % 1000 == 0 {
                            logger.warning("sink queue full; dropping records", metadata: [
                                "mcpg.plugin.id": "\(sinks[i].label)", "mcpg.sink.dropped": "\(dropped[i])",
                            ])
                        }
                    }
                }
            }
            for q in queues { q.finish() }
        }
        ticker.cancel()
        await ticker.value  // no metrics call still running when the sinks are finished
    }

    /// Sends op `metrics` to every sink that takes it, every `metricsInterval` (the first after one second),
    /// until cancelled.
    private func sendMetrics(_ depths: [Depth]) async {
        var wanted = [Bool](repeating: true, count: sinks.count)
        var wait = Duration.seconds(1)
        while wanted.contains(true) {
            do { try await Task.sleep(for: wait) } catch { return }
            wait = Self.metricsInterval
            for (i, sink) in sinks.enumerated() {
                PluginMetrics.shared.record(
                    .gauge, name: "mcpg_sink_queue_depth", value: Double(max(0, depths[i].value.load(ordering: .relaxed))),
                    labels: [("sink", sink.label)])
            }
            var counters: [JSON] = []
            var gauges: [JSON] = []
            for (key, sample) in PluginMetrics.shared.snapshot() {
                var labels = JSONObject()
                for l in key.labels { labels[l.name] = .string(l.value) }
                let item: JSON = ["name": .string(key.name), "labels": .object(labels), "value": .double(sample.value)]
                switch sample.kind {
                case .counter: counters.append(item)
                case .gauge: gauges.append(item)
                case .histogram: break
                }
            }
            let body = (["counters": .array(counters), "gauges": .array(gauges)] as JSON).serialized()
            for (i, sink) in sinks.enumerated() where wanted[i] {
                let reply = await sink.instance.call(op: "metrics", request: body, timeout: .seconds(2))
                if reply.errorCode == -32601 { wanted[i] = false }
            }
        }
    }
}

/// Sends logs to stderr at the configured level, as text or JSON lines.
func bootstrapLogging(_ config: LogConfig) {
    let level = Logger.Level(rawValue: config.level.rawValue) ?? .info
    let json = config.format == .json
    LoggingSystem.bootstrap { label in
        var h: any LogHandler = json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
        h.logLevel = level
        return h
    }
}

/// One JSON object per log line on stderr: `ts`, `level`, `label`, `msg`, then the metadata.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var o: JSONObject = [
            "ts": .string(rfc3339Now()), "level": .string(event.level.rawValue), "label": .string(label),
            "msg": .string("\(event.message)"),
        ]
        for (k, v) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { o[k] = .string("\(v)") }
        printError(JSON.object(o).text)
    }
}

func rfc3339Now() -> String {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    var t = ts.tv_sec
    var tmv = tm()
    gmtime_r(&t, &tmv)
    func pad(_ v: Int32, _ w: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, w - s.count)) + s
    }
    return "\(pad(tmv.tm_year + 1900, 4))-\(pad(tmv.tm_mon + 1, 2))-\(pad(tmv.tm_mday, 2))T"
        + "\(pad(tmv.tm_hour, 2)):\(pad(tmv.tm_min, 2)):\(pad(tmv.tm_sec, 2)).\(pad(Int32(ts.tv_nsec / 1_000_000), 3))Z"
}

/// The HTTP front's TLS certificate, key and client CA, loaded; nil without `server.http.tls`.
/// - Throws: `ConfigError` at the line and column of the key naming the file that does not load.
func loadTLS(_ config: GatewayConfig, logger: Logger) throws(ConfigError) -> TLSCredentials? {
    guard let tls = config.server.http?.tls else { return nil }
    do throws(TLSFileError) {
        return try TLSCredentials(config: TLSFrontConfig(tls), logger: logger)
    } catch {
        let at = tls.locations[error.key] ?? SourceLocation(file: config.file, line: 0, column: 0)
        throw ConfigError([ConfigDiagnostic(at, "\(error.key) \"\(error.path)\": \(error.reason)")])
    }
}

extension TLSFrontConfig {
    init(_ c: TLSConfig) {
        self.init(certFile: c.certFile, keyFile: c.keyFile,
                  clientAuth: TLSFrontConfig.ClientAuth(rawValue: c.clientAuth.rawValue) ?? .required,
                  clientCAFile: c.clientCAFile, reloadInterval: .seconds(c.reloadIntervalSeconds))
    }
}
