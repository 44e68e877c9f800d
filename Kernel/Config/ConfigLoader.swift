import MCPGJSON

/// Reads, validates and builds the config file.
///
/// Every problem is collected before anything is thrown, so one run reports them all. Relative paths in the
/// file resolve against the file's directory. Referenced files are checked (signing key, trusted key files,
/// plugin directory); the ledger need not exist. Plugin `config` blocks are only checked to be mappings here:
/// `PluginConfigValidator` checks them once the plugins are loaded.
public enum ConfigLoader {
    /// Largest config file accepted.
    public static let maxFileBytes = 4 << 20

    /// Loads the config file at `path` (absolute, or relative to the working directory).
    ///
    /// - Throws: `ConfigError` with every problem; diagnostics name the file as `path` was given.
    public static func load(path: String) throws(ConfigError) -> GatewayConfig {
        let absolute = FileSystem.absolute(path, base: FileSystem.currentDirectory())
        let whole = SourceLocation(file: path, line: 0, column: 0)
        switch FileSystem.kind(of: absolute) {
        case .missing: throw ConfigError([ConfigDiagnostic(whole, "config file not found")])
        case .directory: throw ConfigError([ConfigDiagnostic(whole, "is a directory, not a config file")])
        case .file, .other: break
        }
        switch FileSystem.contents(of: absolute, limit: maxFileBytes) {
        case .failure(let error):
            throw ConfigError([ConfigDiagnostic(whole, "cannot read config file: \(error.reason)")])
        case .success(let bytes):
            return try build(bytes, file: path, absolute: absolute, directory: FileSystem.directory(of: absolute))
        }
    }

    /// Parses config text.
    ///
    /// - Parameters:
    ///   - text: the YAML.
    ///   - file: the path shown in diagnostics; made absolute against the working directory for
    ///     `GatewayConfig.file`.
    ///   - directory: where relative paths in the config resolve; default: `file`'s directory.
    /// - Throws: `ConfigError` with every problem.
    public static func parse(_ text: String, file: String, directory: String? = nil) throws(ConfigError)
        -> GatewayConfig
    {
        let cwd = FileSystem.currentDirectory()
        let absolute = FileSystem.absolute(file, base: cwd)
        let base = directory.map { FileSystem.absolute($0, base: cwd) } ?? FileSystem.directory(of: absolute)
        return try build(Array(text.utf8), file: file, absolute: absolute, directory: base)
    }

    private static func build(_ bytes: [UInt8], file: String, absolute: String, directory: String) throws(ConfigError)
        -> GatewayConfig
    {
        var diagnostics: [ConfigDiagnostic] = []
        guard let root = YAMLParser.parse(bytes: bytes, file: file, diagnostics: &diagnostics) else {
            throw ConfigError(diagnostics)
        }
        var validator = SchemaValidator(file: file, directory: directory)
        let json = validator.check(root, ConfigSchema.root, path: "", name: "mcpg", owner: root.location)
        diagnostics += validator.diagnostics
        guard diagnostics.isEmpty, let json else {
            throw ConfigError(diagnostics.isEmpty ? [internalError(root.location)] : diagnostics)
        }
        var builder = Builder(root: root, json: json, absoluteFile: absolute, directory: directory)
        let config = builder.build()
        guard builder.diagnostics.isEmpty, let config else {
            throw ConfigError(builder.diagnostics.isEmpty ? [internalError(root.location)] : builder.diagnostics)
        }
        return config
    }

    static func internalError(_ at: SourceLocation) -> ConfigDiagnostic {
        ConfigDiagnostic(at, "internal error: the validated config could not be built (please report this)")
    }
}

/// Turns the validated JSON (defaults filled in) and the YAML tree (for locations) into a `GatewayConfig`.
private struct Builder {
    let root: YAMLNode
    let json: JSON
    let absoluteFile: String
    let directory: String
    var diagnostics: [ConfigDiagnostic] = []

    init(root: YAMLNode, json: JSON, absoluteFile: String, directory: String) {
        self.root = root
        self.json = json
        self.absoluteFile = absoluteFile
        self.directory = directory
    }

    mutating func build() -> GatewayConfig? {
        guard let server = json["server"], let log = json["log"], let plugins = json["plugins"],
            let audit = json["audit"], let pageSize = server["page_size"]?.intValue,
            let callTimeout = server["call_timeout_ms"]?.intValue,
            let level = log["level"]?.stringValue.flatMap(LogLevel.init(rawValue:)),
            let format = log["format"]?.stringValue.flatMap(LogFormat.init(rawValue:)),
            let dir = plugins["dir"]?.stringValue, let ledger = audit["ledger"]?.stringValue,
            let signingKey = audit["signing_key"]?.stringValue,
            let checkpointEvery = audit["checkpoint_every"]?.intValue,
            let checkpointInterval = audit["checkpoint_interval_ms"]?.intValue,
            let policyMode = json["chains"]?["policy"]?.stringValue.flatMap(PolicyChainMode.init(rawValue:)),
            let identityMode = json["chains"]?["identity"]?.stringValue.flatMap(IdentityChainMode.init(rawValue:))
        else { return nil }

        var http: HTTPConfig?
        if let h = server["http"] {
            guard let listen = h["listen"]?.stringValue, case .success(let address) = StringFormat.parseListen(listen),
                let path = h["path"]?.stringValue, let origins = h["allowed_origins"]?.arrayValue,
                let maxBody = h["max_body_bytes"]?.intValue, let idle = h["session_idle_timeout_s"]?.intValue,
                let maxSessions = h["max_sessions"]?.intValue, let maxAge = h["session_max_age_s"]?.intValue
            else { return nil }
            var tls: TLSConfig?
            if let t = h["tls"] {
                guard let cert = t["cert_file"]?.stringValue, let key = t["key_file"]?.stringValue,
                    let auth = t["client_auth"]?.stringValue.flatMap(TLSConfig.ClientAuth.init(rawValue:)),
                    let interval = t["reload_interval_s"]?.intValue
                else { return nil }
                tls = TLSConfig(
                    certFile: FileSystem.absolute(cert, base: directory), keyFile: FileSystem.absolute(key, base: directory),
                    clientAuth: auth, clientCAFile: t["client_ca_file"]?.stringValue.map { FileSystem.absolute($0, base: directory) },
                    reloadIntervalSeconds: Int(interval),
                    locations: Dictionary((root["server"]?["http"]?["tls"]?.pairs ?? []).compactMap { p in
                        p.key.scalar.map { ($0.text, p.value.location) }
                    }, uniquingKeysWith: { first, _ in first }))
            }
            http = HTTPConfig(
                host: address.host, port: address.port, path: path, allowedOrigins: origins.compactMap(\.stringValue),
                maxBodyBytes: Int(maxBody), sessionIdleTimeoutSeconds: Int(idle), maxSessions: Int(maxSessions),
                sessionKeyFile: h["session_key_file"]?.stringValue.map { FileSystem.absolute($0, base: directory) },
                sessionMaxAgeSeconds: Int(maxAge),
                tls: tls, publicURL: h["public_url"]?.stringValue)
        }

        var keys: [String] = []
        let keyNodes = root["plugins"]?["trusted_keys"]?.items ?? []
        for (entry, node) in zip(plugins["trusted_keys"]?.arrayValue ?? [], keyNodes) {
            switch TrustedKey.resolve(entry.stringValue ?? "", directory: directory) {
            case .success(let key): keys.append(key)
            case .failure(let reason): diagnostics.append(ConfigDiagnostic(node.location, reason.text))
            }
        }

        // Validation succeeded, so the JSON object has one member per YAML pair, in the same order.
        var backends: [BackendRef] = []
        let backendPairs = root["backends"]?.pairs ?? []
        let backendMembers = json["backends"]?.objectValue?.members ?? []
        guard backendPairs.count == backendMembers.count else { return nil }
        for (pair, member) in zip(backendPairs, backendMembers) {
            let path = "backends.\(member.key)"
            guard pair.key.scalar?.text == member.key,
                let ref = pluginRef(pair.value, json: member.value, path: path, at: pair.key.location)
            else { return nil }
            let v = member.value
            guard let unavailable = v["unavailable"]?.stringValue, let grace = v["grace_s"]?.intValue,
                let refresh = v["refresh_s"]?.intValue
            else { return nil }
            var backend = BackendRef(
                name: member.key, location: pair.key.location, ref: ref, prefix: v["prefix"]?.stringValue,
                refuseWhenUnavailable: unavailable == "refuse", graceSeconds: Int(grace), refreshSeconds: Int(refresh))
            backend.callsTools = v["calls_tools"]?.boolValue ?? false
            backends.append(backend)
        }

        guard let identity = chain("identity"), let policy = chain("policy"), let transforms = chain("transforms"),
            let sinks = chain("sinks")
        else { return nil }

        var auditConfig = AuditConfig(
            ledger: FileSystem.absolute(ledger, base: directory),
            signingKey: FileSystem.absolute(signingKey, base: directory),
            checkpointEvery: Int(checkpointEvery), checkpointIntervalMs: Int(checkpointInterval))
        let a = json["audit"]
        auditConfig.enabled = a?["enabled"]?.boolValue ?? true
        auditConfig.commitDelayMs = a?["durability"]?.stringValue.flatMap(StringFormat.commitDelayMs) ?? 0
        auditConfig.previousSigningKey = a?["previous_signing_key"]?.stringValue.map {
            FileSystem.absolute($0, base: directory)
        }
        auditConfig.rotateBytes = a?["rotate"]?["max_bytes"]?.intValue
        auditConfig.rotateAgeSeconds = a?["rotate"]?["max_age_s"]?.intValue.map { Int($0) }
        auditConfig.retainSegments = a?["rotate"]?["retain"]?.intValue.map { Int($0) }
        if let r = a?["refusals"] {
            auditConfig.refusalsPerSource = r["per_source"]?.intValue.map { Int($0) } ?? 10
            auditConfig.refusalWindowSeconds = r["window_s"]?.intValue.map { Int($0) } ?? 60
        }
        if let r = a?["record"] {
            func mode(_ v: JSON?) -> RecordPolicy.Mode? { v?.stringValue.flatMap(RecordPolicy.Mode.init(rawValue:)) }
            auditConfig.record = RecordPolicy(
                arguments: mode(r["arguments"]) ?? .hash, result: mode(r["result"]) ?? .hash,
                tools: (r["tools"]?.objectValue?.members ?? []).map { ($0.key, mode($0.value["arguments"]), mode($0.value["result"])) })
        }

        return GatewayConfig(
            file: absoluteFile,
            server: ServerConfig(http: http, pageSize: Int(pageSize), callTimeoutMs: Int(callTimeout)),
            log: LogConfig(level: level, format: format),
            plugins: PluginsConfig(dir: FileSystem.absolute(dir, base: directory), trustedKeys: keys),
            identity: identity, policy: policy, transforms: transforms, backends: backends,
            audit: auditConfig,
            sinks: sinks, policyMode: policyMode, identityMode: identityMode)
    }

    func chain(_ key: String) -> [PluginRef]? {
        let nodes = root[key]?.items ?? []
        let values = json[key]?.arrayValue ?? []
        guard nodes.count == values.count else { return nil }
        var refs: [PluginRef] = []
        for (i, (node, value)) in zip(nodes, values).enumerated() {
            guard let ref = pluginRef(node, json: value, path: "\(key)[\(i)]", at: node.location) else { return nil }
            refs.append(ref)
        }
        return refs
    }

    func pluginRef(_ node: YAMLNode, json: JSON?, path: String, at location: SourceLocation) -> PluginRef? {
        guard let name = json?["plugin"]?.stringValue, let config = json?["config"],
            let nameNode = node["plugin"]
        else { return nil }
        let configNode = node["config"].flatMap { $0.isNull ? nil : $0 }
        return PluginRef(
            plugin: name, config: config, location: location, pluginLocation: nameNode.location,
            configNode: configNode, path: path)
    }
}
