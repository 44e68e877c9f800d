import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import Logging
import MCPGAudit
import MCPGConfig
import MCPGJSON
import MCPGLoader
import MCPGRouter
import Synchronization

/// Turns a validated config into running parts: verified and loaded plugins, instances, the catalog, the ledger.
/// Every problem is reported as `FILE:LINE:COL: error: …` at the config entry it concerns, all of them at once.
enum Boot {
    /// A plugin entry that loaded and whose config passed the plugin's schema.
    struct Prepared {
        var section: ConfigSection
        var ref: PluginRef
        var plugin: LoadedPlugin
        /// The config block with `format: path` strings resolved against the config file's directory.
        var config: JSON
    }

    /// Verifies and loads every plugin the config names and validates each config block against the schema
    /// the plugin publishes. Nothing is created yet (`config validate` stops here).
    /// - Parameter sections: only the plugins of these sections (nil: all).
    static func prepare(_ config: GatewayConfig, sections: Set<ConfigSection>? = nil,
                        logger: Logger) throws(ConfigError) -> [Prepared] {
        var diagnostics: [ConfigDiagnostic] = []
        var keys: [MinisignPublicKey] = []
        for k in config.plugins.trustedKeys {
            do throws(LoaderError) { keys.append(try MinisignPublicKey(base64: k)) } catch {
                diagnostics.append(ConfigDiagnostic(SourceLocation(file: config.file, line: 0, column: 0), error.message))
            }
        }
        pinMmapThreshold()
        let loader = PluginLoader(directory: config.plugins.dir, trustedKeys: keys, logger: logger)
        let directory = parentDirectory(of: config.file)
        // Reading and verifying a plugin file is hashing tens of megabytes: do it on every core at once (mapping
        // stays serialized inside the loader); the loop below then takes each outcome in config order, so errors
        // are reported in that order, and a plugin that failed is not read again.
        let refs = config.allPluginRefs.filter { sections?.contains($0.0) ?? true }
        var unique: [String] = []
        for (_, ref) in refs where !unique.contains(ref.plugin) { unique.append(ref.plugin) }
        let names = unique
        let outcomes = Mutex<[String: Result<LoadedPlugin, LoaderError>]>([:])
        DispatchQueue.concurrentPerform(iterations: names.count) { i in
            let outcome = Result(catching: { () throws(LoaderError) in try loader.load(name: names[i]) })
            outcomes.withLock { $0[names[i]] = outcome }
        }
        var prepared: [Prepared] = []
        for (section, ref) in refs {
            let plugin: LoadedPlugin
            switch outcomes.withLock({ $0[ref.plugin] }) ?? Result(catching: { () throws(LoaderError) in try loader.load(name: ref.plugin) }) {
            case .success(let p): plugin = p
            case .failure(let error):
                diagnostics.append(ref.diagnostic(error.code == .notFound
                    ? "unknown plugin \"\(ref.plugin)\": \(error.message)" : error.message))
                continue
            }
            guard plugin.kindName == section.pluginKind else {
                diagnostics.append(ref.diagnostic(
                    "plugin \"\(ref.plugin)\" is a \(plugin.kindName) plugin; \(section.rawValue) takes \(section.pluginKind) plugins"))
                continue
            }
            let problems = PluginConfigValidator.validate(ref, schema: plugin.configSchema, pluginName: ref.plugin)
            if !problems.isEmpty {
                diagnostics += problems
                continue
            }
            prepared.append(Prepared(section: section, ref: ref, plugin: plugin,
                                     config: resolvePaths(ref.config, schema: plugin.configSchema, base: directory)))
        }
        if !diagnostics.isEmpty { throw ConfigError(diagnostics) }
        return prepared
    }

    /// The running parts of a gateway.
    struct Parts {
        var gateway: Gateway
        /// nil when `audit.enabled` is false.
        var ledger: Ledger?
        var sinks: [(label: String, instance: PluginInstance)]
    }

    /// Creates every plugin instance, builds the catalog from the backends and opens the ledger.
    static func start(_ config: GatewayConfig, logger: Logger, version: String) async throws(ConfigError) -> Parts {
        let prepared = try prepare(config, logger: logger)
        var diagnostics: [ConfigDiagnostic] = []
        // The ledger's directory exists before any plugin starts: sinks commonly write beside it.
        do throws(FileProblem) { try makeDirectories(parentDirectory(of: config.audit.ledger)) } catch {
            throw ConfigError([ConfigDiagnostic(SourceLocation(file: config.file, line: 0, column: 0), "audit: \(error)")])
        }
        var stages: [ConfigSection: [(Prepared, PluginInstance)]] = [:]
        for p in prepared {
            do throws(LoaderError) {
                let instance = try PluginInstance.create(p.plugin, config: p.config, label: p.ref.path, logger: logger)
                stages[p.section, default: []].append((p, instance))
            } catch {
                diagnostics.append(createDiagnostic(p.ref, error.message))
            }
        }
        if !diagnostics.isEmpty { throw ConfigError(diagnostics) }

        let timeout = Duration.milliseconds(config.server.callTimeoutMs)
        func stage(_ e: (Prepared, PluginInstance)) -> Stage {
            Stage(plugin: e.0.ref.plugin, label: e.0.ref.path, caller: InstanceCaller(instance: e.1))
        }
        var backendStages: [String: Stage] = [:]
        for (b, e) in zip(config.backends, stages[.backends] ?? []) { backendStages[b.name] = stage(e) }
        let store = CatalogStore(settings: config.backends.map { b in
            BackendSettings(name: b.name, prefix: b.prefix, grace: .seconds(b.graceSeconds),
                            refresh: b.refreshSeconds > 0 ? .seconds(b.refreshSeconds) : nil, callsTools: b.callsTools)
        })
        var ledger: Ledger?
        if !config.audit.enabled {
            logger.warning("audit ledger is off (audit.enabled: false): calls are not recorded and sinks get nothing")
        } else { do throws(any Error) {
            let key = try MinisignSecretKey(contentsOfFile: config.audit.signingKey)
            let signer = try LedgerSigner(keyID: key.keyID, secretKey: key.secretKeyBytes)
            let a = config.audit
            var previous: LedgerSigner?
            if let file = a.previousSigningKey {
                let old = try MinisignSecretKey(contentsOfFile: file)
                previous = try LedgerSigner(keyID: old.keyID, secretKey: old.secretKeyBytes)
            }
            let options = LedgerOptions(
                checkpointEvery: a.checkpointEvery, checkpointInterval: .milliseconds(a.checkpointIntervalMs),
                commitDelay: a.commitDelayMs > 0 ? .milliseconds(a.commitDelayMs) : nil,
                rotateBytes: a.rotateBytes, rotateInterval: a.rotateAgeSeconds.map { .seconds($0) },
                retainSegments: a.retainSegments, previousSigner: previous)
            ledger = try Ledger(path: a.ledger, signer: signer, options: options, logger: logger)
        } catch {
            throw ConfigError([ConfigDiagnostic(SourceLocation(file: config.file, line: 0, column: 0), "audit: \(error)")])
        } }
        var sealer = SessionSealer.ephemeral()
        if let keyFile = config.server.http?.sessionKeyFile {
            do throws(any Error) {
                sealer = try SessionSealer(secret: try readFile(keyFile))
            } catch {
                throw ConfigError([ConfigDiagnostic(SourceLocation(file: config.file, line: 0, column: 0),
                                                    "server.http.session_key_file: \(error)")])
            }
        }
        let sessions = SessionTable(idleTimeout: .seconds(config.server.http?.sessionIdleTimeoutSeconds ?? 1800),
                                    limit: config.server.http?.maxSessions ?? 10_000, sealer: sealer,
                                    maxAgeSeconds: Int64(config.server.http?.sessionMaxAgeSeconds ?? 86_400))
        let gateway = Gateway(
            identity: (stages[.identity] ?? []).map(stage), policy: (stages[.policy] ?? []).map(stage),
            transforms: (stages[.transforms] ?? []).map(stage), backends: backendStages, store: store,
            audit: ledger.map { LedgerTrail(ledger: $0) as any AuditTrail } ?? NoAudit(),
            settings: GatewaySettings(
                pageSize: config.server.pageSize, callTimeout: timeout, serverVersion: version,
                policyMode: PolicyMode(rawValue: config.policyMode.rawValue) ?? .all,
                identityMode: IdentityMode(rawValue: config.identityMode.rawValue) ?? .first,
                recordModes: { [record = config.audit.record] name in
                    let m = record.modes(for: name)
                    return (AuditRecordMode(rawValue: m.arguments.rawValue) ?? .hash,
                            AuditRecordMode(rawValue: m.result.rawValue) ?? .hash)
                },
                refusalLimits: RefusalLimits(
                    perSource: config.audit.refusalsPerSource, window: .seconds(config.audit.refusalWindowSeconds))),
            sessions: sessions, logger: logger)
        // Every backend is listed at once. One that cannot be is left out (and retried while the gateway runs)
        // unless its entry says `unavailable: refuse`; a name or URI two backends serve is a config error.
        let listed = await withTaskGroup(of: (String, Result<BackendListing, StageFailure>).self) { group in
            for b in config.backends { group.addTask { (b.name, await gateway.listBackend(b.name)) } }
            var out: [String: Result<BackendListing, StageFailure>] = [:]
            for await (name, r) in group { out[name] = r }
            return out
        }
        for b in config.backends {
            switch listed[b.name] {
            case .success(let listing)?:
                store.update(b.name, listing: listing)
            case .failure(let f)?:
                if b.refuseWhenUnavailable {
                    diagnostics.append(b.ref.diagnostic("backend \(b.name) is unavailable: \(f.summary)"))
                } else {
                    store.markDown(b.name, reason: f.summary)
                    logger.warning("backend unavailable at boot; starting without it and retrying",
                                   metadata: ["mcpg.backend": "\(b.name)", "mcpg.error": "\(f.summary)"])
                }
            case nil:
                break
            }
        }
        let catalog = store.current
        for p in catalog.problems {
            let at = config.backends.first { $0.name == p.backend }?.location ?? SourceLocation(file: config.file, line: 0, column: 0)
            diagnostics.append(ConfigDiagnostic(at, p.message))
        }
        if !diagnostics.isEmpty { throw ConfigError(diagnostics) }
        logger.info("gateway ready", metadata: [
            "mcpg.plugins": "\(prepared.count)", "mcpg.tools": "\(catalog.tools.count)",
        ])
        return Parts(gateway: gateway, ledger: ledger,
                     sinks: (stages[.sinks] ?? []).map { ($0.0.ref.path, $0.1) })
    }

    /// Starts only the backends, lists them all and builds the merged catalog as boot does. Returns warnings
    /// (`FILE:LINE:COL: warning: …` for backends that cannot be listed); throws the errors (collisions, and
    /// unavailable backends marked `unavailable: refuse`).
    static func checkCatalog(_ config: GatewayConfig, logger: Logger) async throws(ConfigError) -> [String] {
        let prepared = try prepare(config, sections: [.backends], logger: logger)
        var diagnostics: [ConfigDiagnostic] = []
        var stages: [String: Stage] = [:]
        for (b, p) in zip(config.backends, prepared) {
            do throws(LoaderError) {
                let instance = try PluginInstance.create(p.plugin, config: p.config, label: p.ref.path, logger: logger)
                stages[b.name] = Stage(plugin: p.ref.plugin, label: p.ref.path, caller: InstanceCaller(instance: instance))
            } catch {
                diagnostics.append(createDiagnostic(p.ref, error.message))
            }
        }
        if !diagnostics.isEmpty { throw ConfigError(diagnostics) }
        let store = CatalogStore(settings: config.backends.map { BackendSettings(name: $0.name, prefix: $0.prefix) })
        let gateway = Gateway(
            identity: [], policy: [], transforms: [], backends: stages, store: store, audit: NoAudit(),
            settings: GatewaySettings(callTimeout: .milliseconds(config.server.callTimeoutMs), serverVersion: ""),
            sessions: SessionTable(idleTimeout: .seconds(60)), logger: logger)
        var warnings: [String] = []
        for b in config.backends {
            switch await gateway.listBackend(b.name) {
            case .success(let listing): store.update(b.name, listing: listing)
            case .failure(let f):
                let d = b.ref.diagnostic("backend \(b.name) cannot be listed: \(f.summary)")
                if b.refuseWhenUnavailable { diagnostics.append(d) } else { warnings.append("\(d.location): warning: \(d.message)") }
            }
        }
        for p in store.current.problems {
            diagnostics.append(ConfigDiagnostic(
                config.backends.first { $0.name == p.backend }?.location ?? SourceLocation(file: config.file, line: 0, column: 0),
                p.message))
        }
        if !diagnostics.isEmpty { throw ConfigError(diagnostics) }
        return warnings
    }

    /// Rewrites strings whose schema says `"format": "path"` into absolute paths (except `-`, meaning stdout).
    static func resolvePaths(_ value: JSON, schema: JSON, base: String) -> JSON {
        switch value {
        case .string(let s) where schema["format"]?.stringValue == "path":
            return .string(s == "-" || s.hasPrefix("/") ? s : base + "/" + s)
        case .object(var o):
            let props = schema["properties"]?.objectValue ?? [:]
            for m in props {
                if let v = o[m.key] { o[m.key] = resolvePaths(v, schema: m.value, base: base) }
            }
            // Free keys (e.g. spiffe's trust domains) follow `additionalProperties` when it is a schema.
            if let extra = schema["additionalProperties"], extra.objectValue != nil {
                for m in o where props[m.key] == nil { o[m.key] = resolvePaths(m.value, schema: extra, base: base) }
            }
            return .object(o)
        case .array(let items):
            guard let itemSchema = schema["items"] else { return value }
            return .array(items.map { resolvePaths($0, schema: itemSchema, base: base) })
        default:
            return value
        }
    }
}

/// Calls a loaded plugin instance with JSON in and out.
struct InstanceCaller: PluginCaller {
    let instance: PluginInstance

    func call(op: String, request: JSON, timeout: Duration, emit: (@Sendable (JSON) -> Bool)?) async
        -> Result<JSON, StageFailure>
    {
        let bytesEmit: (@Sendable ([UInt8]) -> Bool)? = emit.map { emit in
            { @Sendable bytes in
                guard let message = try? JSON.parse(bytes) else { return false }
                return emit(message)
            }
        }
        let reply = await instance.call(op: op, request: request.serialized(), timeout: timeout, emit: bytesEmit)
        guard let body = reply.json else { return .failure(StageFailure(.malformed("answer is not JSON"))) }
        if reply.ok { return .success(body) }
        switch reply.errorCode {
        case PluginReply.timeoutCode?: return .failure(StageFailure(.timeout))
        case PluginReply.cancelledCode?: return .failure(StageFailure(.cancelled))
        default:
            return .failure(StageFailure(.plugin(code: reply.errorCode ?? -32603, message: reply.errorMessage ?? "")))
        }
    }
}

/// Where a plugin's `create` failure is reported: at the config value its message points to (a message starting
/// with a JSON pointer and `: `), else at its config block.
func createDiagnostic(_ ref: PluginRef, _ message: String) -> ConfigDiagnostic {
    let bytes = Array(message.utf8)
    let marker = Array("failed to start: ".utf8)
    guard bytes.count >= marker.count,
        let start = (0...(bytes.count - marker.count)).first(where: { bytes[$0..<($0 + marker.count)].elementsEqual(marker) })
    else { return ref.configDiagnostic(message) }
    let end = start + marker.count
    return ref.configDiagnostic(
        pluginMessage: String(decoding: bytes[end...], as: UTF8.self), prefix: String(decoding: bytes[..<end], as: UTF8.self))
}

/// The router's audit trail, backed by the ledger.
struct LedgerTrail: AuditTrail {
    let ledger: Ledger
    func record(_ event: JSON) async throws { _ = try await ledger.append(event) }
}

/// An audit trail that keeps nothing (catalog checks record no events).
struct NoAudit: AuditTrail {
    func record(_ event: JSON) async throws {}
}

/// Pins glibc's mmap threshold at 1 MiB (`mallopt(M_MMAP_THRESHOLD, 1 MiB)`, found at run time: Swift's Glibc
/// module does not declare it). Left dynamic, glibc raises the threshold to the size of each large buffer freed, so
/// the plugin files read at boot (tens of MB each) are later allocated inside malloc arenas, which keep up to twice
/// that resident after it is freed: with plugins loaded on two threads, about 50 MB of idle RSS for nothing.
/// Pinned, every buffer of 1 MiB or more is its own mapping, returned to the system when freed. A no-op without
/// glibc.
func pinMmapThreshold() {
    guard let me = dlopen(nil, RTLD_NOW), let sym = dlsym(me, "mallopt") else { return }
    typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    let mMmapThreshold: Int32 = -3
    _ = unsafeBitCast(sym, to: Mallopt.self)(mMmapThreshold, 1 << 20)
}
