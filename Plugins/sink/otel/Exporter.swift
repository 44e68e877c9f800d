import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import PluginKit
import Synchronization

/// Batches spans and POSTs them to an OTLP/HTTP receiver (`<endpoint>/v1/traces`, protobuf) from one background
/// task: a batch goes out when `batchSize` spans wait or every `interval`, whichever is first. The buffer holds at
/// most `maxBuffer` spans; spans that do not fit, and batches that still fail after `maxRetries` retries (on 429,
/// 5xx and connection errors, with exponential backoff), are dropped, counted (`otel_dropped_total`) and logged
/// at most once per interval. `add` never waits.
final class Exporter: Sendable {
    struct Settings: Sendable {
        var url: String
        var headers: [(String, String)]
        var serviceName: String
        var batchSize: Int
        var intervalMs: Int64
        var maxBuffer: Int
        var maxRetries: Int
        var timeoutMs: Int64
    }

    struct State: Sendable {
        var spans: [Span] = []
        var dropped = 0
        var sent = 0
    }

    /// What the background task and `add` share.
    final class Core: Sendable {
        let settings: Settings
        let host: Host
        let http: HTTPClient
        let state = Mutex(State())

        init(settings: Settings, host: Host, http: HTTPClient) {
            self.settings = settings
            self.host = host
            self.http = http
        }
    }

    let core: Core
    let wake: AsyncStream<Void>.Continuation
    let worker: Task<Void, Never>
    let ticker: Task<Void, Never>

    init(_ settings: Settings, host: Host) {
        var pool = HTTPClient.Configuration.ConnectionPool()
        pool.retryConnectionEstablishment = false
        let limit = TimeAmount.milliseconds(settings.timeoutMs)
        let http = HTTPClient(
            eventLoopGroup: HTTPClient.defaultEventLoopGroup,
            configuration: HTTPClient.Configuration(
                redirectConfiguration: .disallow, timeout: .init(connect: limit, read: limit), connectionPool: pool,
                decompression: .disabled))
        let core = Core(settings: settings, host: host, http: http)
        self.core = core
        let (stream, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        self.wake = wake
        worker = Task {
            for await _ in stream { await Exporter.flush(core) }
            // The stream ends on shutdown: one last try for what is left, without retries.
            await Exporter.flush(core, retry: false)
        }
        ticker = Task {
            while !Task.isCancelled {
                do { try await Task.sleep(for: .milliseconds(settings.intervalMs)) } catch { return }
                wake.yield()
            }
        }
    }

    deinit {
        ticker.cancel()
        wake.finish()
        let http = core.http
        let worker = self.worker
        Task {
            await worker.value
            try? await http.shutdown()
        }
    }

    /// Queues one span; wakes the sender when a batch is full. Never waits.
    func add(_ span: Span) {
        let limit = core.settings.maxBuffer
        let batch = core.settings.batchSize
        let full = core.state.withLock { s -> Bool in
            guard s.spans.count < limit else {
                s.dropped += 1
                return false
            }
            s.spans.append(span)
            return s.spans.count >= batch
        }
        if full { wake.yield() }
    }

    /// Sends everything buffered, one batch at a time; reports drops since the last report.
    static func flush(_ core: Core, retry: Bool = true) async {
        let settings = core.settings
        while true {
            let batch = core.state.withLock { s -> [Span] in
                let n = min(settings.batchSize, s.spans.count)
                let b = Array(s.spans.prefix(n))
                s.spans.removeFirst(n)
                return b
            }
            if batch.isEmpty { break }
            let body = exportRequest(batch, serviceName: settings.serviceName, scopeVersion: OTel.version)
            let ok = await post(body, core, retries: retry ? settings.maxRetries : 0)
            core.state.withLock { s in
                if ok { s.sent += batch.count } else { s.dropped += batch.count }
            }
            if !ok { break }
        }
        let dropped = core.state.withLock { s -> Int in
            defer { s.dropped = 0 }
            return s.dropped
        }
        if dropped > 0 {
            core.host.metric(.counter, "dropped_total", Double(dropped))
            core.host.log(
                .warning, "otel: dropped spans (buffer full or receiver unavailable)", ["mcpg.sink.dropped": "\(dropped)"])
        }
    }

    /// POSTs one request body; retries on 429, 5xx and transport errors with backoff (0.5 s doubling, at most
    /// 8 s, or the receiver's Retry-After when it is a small number of seconds). True when the receiver took it.
    static func post(_ body: [UInt8], _ core: Core, retries: Int) async -> Bool {
        let settings = core.settings
        let host = core.host
        var backoff = Duration.milliseconds(500)
        var attempt = 0
        while true {
            var request = HTTPClientRequest(url: settings.url)
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/x-protobuf")
            for (k, v) in settings.headers { request.headers.add(name: k, value: v) }
            request.body = .bytes(body)
            var wait = backoff
            var reason: String
            do {
                let response = try await core.http.execute(request, timeout: .milliseconds(settings.timeoutMs))
                _ = try? await response.body.collect(upTo: 1 << 20)
                let code = response.status.code
                if (200..<300).contains(code) { return true }
                reason = "HTTP \(code)"
                guard code == 429 || code >= 500 else {
                    host.log(.error, "otel: receiver refused spans", ["mcpg.sink.status": "\(code)"])
                    return false
                }
                if let after = response.headers.first(name: "retry-after").flatMap(Int.init), (0...30).contains(after) {
                    wait = .seconds(after)
                }
            } catch {
                reason = "\(error)"
            }
            if attempt >= retries || Task.isCancelled {
                host.log(.warning, "otel: export failed", ["mcpg.sink.reason": reason, "mcpg.sink.attempts": "\(attempt + 1)"])
                return false
            }
            attempt += 1
            try? await Task.sleep(for: wait)
            backoff = min(backoff * 2, .seconds(8))
        }
    }
}
