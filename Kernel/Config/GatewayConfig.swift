import MCPGJSON

/// A loaded, validated config file: an immutable snapshot. Paths are absolute, defaults are filled in.
public struct GatewayConfig: Sendable, Equatable {
    /// Absolute path of the config file.
    public var file: String
    /// How clients reach the gateway.
    public var server: ServerConfig
    /// Operator logging.
    public var log: LogConfig
    /// Plugin directory and trusted signing keys.
    public var plugins: PluginsConfig
    /// The identity chain, in order (at least one entry).
    public var identity: [PluginRef]
    /// The policy chain, in order (at least one entry).
    public var policy: [PluginRef]
    /// `chains.policy`: how the policy chain's answers combine.
    public var policyMode: PolicyChainMode
    /// `chains.identity`: how the identity chain's answers combine.
    public var identityMode: IdentityChainMode
    /// Transforms, in order.
    public var transforms: [PluginRef]
    /// Backends in file order; names are unique.
    public var backends: [BackendRef]
    /// The audit ledger.
    public var audit: AuditConfig
    /// Audit sinks, in order.
    public var sinks: [PluginRef]

    /// Creates a config snapshot (the loader does this; tests may build one directly).
    public init(
        file: String, server: ServerConfig, log: LogConfig = LogConfig(), plugins: PluginsConfig,
        identity: [PluginRef], policy: [PluginRef], transforms: [PluginRef] = [], backends: [BackendRef] = [],
        audit: AuditConfig, sinks: [PluginRef] = [], policyMode: PolicyChainMode = .all,
        identityMode: IdentityChainMode = .first
    ) {
        self.policyMode = policyMode
        self.identityMode = identityMode
        self.file = file
        self.server = server
        self.log = log
        self.plugins = plugins
        self.identity = identity
        self.policy = policy
        self.transforms = transforms
        self.backends = backends
        self.audit = audit
        self.sinks = sinks
    }

    /// Every plugin reference with the section it is used in, in file order of sections
    /// (identity, policy, transforms, backends, sinks).
    public var allPluginRefs: [(section: ConfigSection, ref: PluginRef)] {
        identity.map { (.identity, $0) } + policy.map { (.policy, $0) } + transforms.map { (.transforms, $0) }
            + backends.map { (.backends, $0.ref) } + sinks.map { (.sinks, $0) }
    }
}

/// The config sections that hold plugin references; each takes plugins of one kind.
public enum ConfigSection: String, Sendable, CaseIterable {
    case identity, policy, transforms, backends, sinks

    /// The plugin kind (as PluginKit names it) the section takes: `identity`, `policy`, `transform`,
    /// `backend`, `sink`.
    public var pluginKind: String {
        switch self {
        case .identity: return "identity"
        case .policy: return "policy"
        case .transforms: return "transform"
        case .backends: return "backend"
        case .sinks: return "sink"
        }
    }
}

/// `server`.
public struct ServerConfig: Sendable, Equatable {
    /// The Streamable HTTP front, or nil when the config has no `server.http` (stdio only).
    public var http: HTTPConfig?
    /// `server.page_size`: items per page of the list methods.
    public var pageSize: Int
    /// `server.call_timeout_ms`: deadline of one plugin call.
    public var callTimeoutMs: Int

    /// Creates server settings; defaults are the schema's.
    public init(http: HTTPConfig? = nil, pageSize: Int = 100, callTimeoutMs: Int = 30_000) {
        self.http = http
        self.pageSize = pageSize
        self.callTimeoutMs = callTimeoutMs
    }
}

/// `chains.policy`.
public enum PolicyChainMode: String, Sendable, Equatable {
    case all, first
}

/// `chains.identity`.
public enum IdentityChainMode: String, Sendable, Equatable {
    case first, all
}

/// `server.http.tls`.
public struct TLSConfig: Sendable, Equatable {
    /// Absolute paths of the server certificate chain and its key (PEM).
    public var certFile: String
    public var keyFile: String
    /// `none`, `optional` or `required`.
    public var clientAuth: ClientAuth
    /// Absolute path of the CA bundle client certificates must chain to, if any.
    public var clientCAFile: String?
    /// Seconds between looks at the files (0: never reload).
    public var reloadIntervalSeconds: Int
    /// Where each key (`cert_file`, `key_file`, `client_ca_file`) is in the config file, to report a file that
    /// does not load at its line and column.
    public var locations: [String: SourceLocation]

    /// `server.http.tls.client_auth`.
    public enum ClientAuth: String, Sendable, Equatable {
        case none, optional, required
    }

    public init(certFile: String, keyFile: String, clientAuth: ClientAuth = .none, clientCAFile: String? = nil,
                reloadIntervalSeconds: Int = 5, locations: [String: SourceLocation] = [:]) {
        self.locations = locations
        self.certFile = certFile
        self.keyFile = keyFile
        self.clientAuth = clientAuth
        self.clientCAFile = clientCAFile
        self.reloadIntervalSeconds = reloadIntervalSeconds
    }
}

/// `server.http`.
public struct HTTPConfig: Sendable, Equatable {
    /// Host to bind, without brackets for IPv6 (`127.0.0.1`, `::1`, `localhost`).
    public var host: String
    /// Port to bind; 0 picks a free one.
    public var port: Int
    /// The path of the MCP endpoint; starts with `/`.
    public var path: String
    /// Allowed `Origin` values, as written (`scheme://host[:port]`); compare scheme and host case-insensitively.
    public var allowedOrigins: [String]
    /// Largest request body accepted.
    public var maxBodyBytes: Int
    /// Idle time after which a session is closed.
    public var sessionIdleTimeoutSeconds: Int
    /// Most sessions open at once.
    public var maxSessions: Int
    /// The secret that seals session ids (absolute path), if configured.
    public var sessionKeyFile: String?
    /// Longest a session id is honoured after its `initialize`.
    public var sessionMaxAgeSeconds: Int
    /// TLS settings, or nil for plain HTTP.
    public var tls: TLSConfig?
    /// `public_url`: the endpoint's URL as clients reach it, if set.
    public var publicURL: String?

    /// Creates HTTP settings; defaults are the schema's.
    public init(
        host: String = "127.0.0.1", port: Int = 8080, path: String = "/mcp", allowedOrigins: [String] = [],
        maxBodyBytes: Int = 4_194_304, sessionIdleTimeoutSeconds: Int = 1800, maxSessions: Int = 10_000,
        sessionKeyFile: String? = nil, sessionMaxAgeSeconds: Int = 86_400, tls: TLSConfig? = nil,
        publicURL: String? = nil
    ) {
        self.sessionKeyFile = sessionKeyFile
        self.sessionMaxAgeSeconds = sessionMaxAgeSeconds
        self.tls = tls
        self.publicURL = publicURL
        self.host = host
        self.port = port
        self.path = path
        self.allowedOrigins = allowedOrigins
        self.maxBodyBytes = maxBodyBytes
        self.sessionIdleTimeoutSeconds = sessionIdleTimeoutSeconds
        self.maxSessions = maxSessions
    }

    /// `host:port` as written in the config (`[::1]:8080` for IPv6).
    public var listen: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// `log`.
public struct LogConfig: Sendable, Equatable {
    /// Lowest level logged; the names are swift-log's `Logger.Level` raw values.
    public var level: LogLevel
    /// Output format.
    public var format: LogFormat

    /// Creates log settings; defaults are the schema's.
    public init(level: LogLevel = .info, format: LogFormat = .text) {
        self.level = level
        self.format = format
    }
}

/// `log.level`, named as swift-log's `Logger.Level`.
public enum LogLevel: String, Sendable, CaseIterable {
    case trace, debug, info, notice, warning, error, critical
}

/// `log.format`.
public enum LogFormat: String, Sendable, CaseIterable {
    /// Human-readable lines.
    case text
    /// One JSON object per line.
    case json
}

/// `plugins`.
public struct PluginsConfig: Sendable, Equatable {
    /// Absolute path of the plugin directory (exists at load time).
    public var dir: String
    /// The trusted minisign public keys as key text (`RW…`); entries naming a `.pub` file are already read.
    public var trustedKeys: [String]

    /// Creates plugin settings.
    public init(dir: String, trustedKeys: [String]) {
        self.dir = dir
        self.trustedKeys = trustedKeys
    }
}

/// `audit`.
public struct AuditConfig: Sendable, Equatable {
    /// Absolute path of the ledger file; it and its directory may not exist yet.
    public var ledger: String
    /// Absolute path of the checkpoint signing key (exists at load time).
    public var signingKey: String
    /// Records between signed checkpoints (1 = every record).
    public var checkpointEvery: Int
    /// Longest time between signed checkpoints while records arrive.
    public var checkpointIntervalMs: Int
    /// `audit.enabled`: false turns the ledger off.
    public var enabled = true
    /// 0: `sync`; otherwise the `batch(<ms>ms)` commit delay.
    public var commitDelayMs: Int = 0
    /// Absolute path of the key the ledger was signed with before `signingKey`, if given.
    public var previousSigningKey: String?
    /// Segment rotation: bytes, seconds, closed segments kept.
    public var rotateBytes: Int64?
    public var rotateAgeSeconds: Int?
    public var retainSegments: Int?
    /// What tools/call records keep of arguments and results.
    public var record: RecordPolicy = RecordPolicy()
    /// `audit.refusals`: authentication refusals recorded one by one per source and window.
    public var refusalsPerSource = 10
    public var refusalWindowSeconds = 60

    /// Creates audit settings; defaults are the schema's.
    public init(ledger: String, signingKey: String, checkpointEvery: Int = 1000, checkpointIntervalMs: Int = 1000) {
        self.ledger = ledger
        self.signingKey = signingKey
        self.checkpointEvery = checkpointEvery
        self.checkpointIntervalMs = checkpointIntervalMs
    }
}

/// What a tools/call audit record keeps of the call's arguments and result: `audit.record`.
public struct RecordPolicy: Sendable, Equatable {
    public enum Mode: String, Sendable, Equatable {
        case full, hash, omit
    }
    public var arguments: Mode
    public var result: Mode
    /// Tool pattern (exact name, or a prefix ending in `*`) → overrides.
    public var tools: [(pattern: String, arguments: Mode?, result: Mode?)]

    public init(arguments: Mode = .hash, result: Mode = .hash,
                tools: [(pattern: String, arguments: Mode?, result: Mode?)] = []) {
        self.arguments = arguments
        self.result = result
        self.tools = tools
    }

    /// The modes for tool `name`: the longest matching pattern's overrides, else the defaults.
    public func modes(for name: String) -> (arguments: Mode, result: Mode) {
        var best: (length: Int, arguments: Mode?, result: Mode?)?
        for t in tools {
            let matches = t.pattern.hasSuffix("*") ? name.hasPrefix(t.pattern.dropLast()) : name == t.pattern
            guard matches, t.pattern.count > best?.length ?? -1 else { continue }
            best = (t.pattern.count, t.arguments, t.result)
        }
        return (best?.arguments ?? arguments, best?.result ?? result)
    }

    public static func == (a: RecordPolicy, b: RecordPolicy) -> Bool {
        a.arguments == b.arguments && a.result == b.result && a.tools.count == b.tools.count
            && zip(a.tools, b.tools).allSatisfy { $0.pattern == $1.pattern && $0.arguments == $1.arguments && $0.result == $1.result }
    }
}

/// One `{plugin, config}` entry of a chain, a backend or a sink.
public struct PluginRef: Sendable, Equatable {
    /// The plugin's name (`[a-z0-9_-]+`).
    public var plugin: String
    /// The entry's `config` block as JSON; `{}` when absent or null.
    public var config: JSON
    /// Where the entry starts (the sequence item, or for a backend its name).
    public var location: SourceLocation
    /// Where the `plugin:` value is: the place to report "unknown plugin" or "wrong kind".
    public var pluginLocation: SourceLocation
    /// The YAML of `config`, to put errors found inside it at their line and column; nil when absent.
    public var configNode: YAMLNode?
    /// Where in the config the entry is, for messages and logs: `identity[0]`, `backends.demo`.
    public var path: String

    /// Creates a reference (the loader does this; tests and tools may too).
    public init(
        plugin: String, config: JSON = [:], location: SourceLocation, pluginLocation: SourceLocation? = nil,
        configNode: YAMLNode? = nil, path: String = ""
    ) {
        self.plugin = plugin
        self.config = config
        self.location = location
        self.pluginLocation = pluginLocation ?? location
        self.configNode = configNode
        self.path = path
    }

    /// A diagnostic about this entry's plugin, at its `plugin:` value: e.g. `unknown plugin "apikye"` or
    /// `plugin "rules" is a policy plugin; identity takes identity plugins`.
    public func diagnostic(_ message: String) -> ConfigDiagnostic {
        ConfigDiagnostic(pluginLocation, message)
    }

    /// A diagnostic about this entry's `config` block, at the block (or at the entry when it has none).
    public func configDiagnostic(_ message: String) -> ConfigDiagnostic {
        ConfigDiagnostic(configNode?.location ?? location, message)
    }

    /// A diagnostic for a plugin's own message about its config. A message that starts with a JSON pointer into
    /// the config block and `: ` (`/tools/0/steps/2/call: no tool "x"`) is placed at that value's line and column;
    /// anything else at the config block.
    public func configDiagnostic(pluginMessage: String, prefix: String) -> ConfigDiagnostic {
        let scalars = Array(pluginMessage.utf8)
        if scalars.first == UInt8(ascii: "/"), let node = configNode,
            let colon = scalars.indices.first(where: { $0 + 1 < scalars.count && scalars[$0] == 0x3A && scalars[$0 + 1] == 0x20 })
        {
            let pointer = String(decoding: scalars[..<colon], as: UTF8.self)
            if !pointer.contains(" "), let target = node.node(atPointer: pointer) {
                return ConfigDiagnostic(target.location, prefix + pluginMessage)
            }
        }
        return configDiagnostic(prefix + pluginMessage)
    }
}

/// One entry of `backends`.
public struct BackendRef: Sendable, Equatable {
    /// The backend's name (the map key).
    public var name: String
    /// Where the name is.
    public var location: SourceLocation
    /// The plugin that serves it.
    public var ref: PluginRef
    /// Exposed tool and prompt names are `<prefix>__<name>` when set.
    public var prefix: String?
    /// Boot fails when the backend cannot be listed (`unavailable: refuse`); otherwise it starts without it.
    public var refuseWhenUnavailable: Bool
    /// How long a backend that went down keeps its entries.
    public var graceSeconds: Int
    /// Seconds between periodic re-reads of its lists (0: none).
    public var refreshSeconds: Int
    /// `calls_tools`: the backend may call the gateway's tools as the calling principal.
    public var callsTools = false

    /// Creates a backend entry; defaults are the schema's.
    public init(name: String, location: SourceLocation, ref: PluginRef, prefix: String? = nil,
                refuseWhenUnavailable: Bool = false, graceSeconds: Int = 30, refreshSeconds: Int = 300) {
        self.name = name
        self.location = location
        self.ref = ref
        self.prefix = prefix
        self.refuseWhenUnavailable = refuseWhenUnavailable
        self.graceSeconds = graceSeconds
        self.refreshSeconds = refreshSeconds
    }
}
