import MCPGJSON

extension MCPClient {
    /// How to reach the upstream MCP server: the `config` block of the `mcp` backend.
    ///
    /// Decoded from config with the snake_case keys of `configSchema`; `MCPClient.init` validates the
    /// combination (which keys go with which transport) and reads the bearer token. Secrets are referenced by
    /// file or environment variable, never inlined.
    public struct Config: Sendable, Decodable, Equatable {
        public enum Transport: String, Sendable, Decodable, Equatable {
            /// A child process speaking newline-delimited JSON-RPC on stdin/stdout (STDIO-1).
            case stdio
            /// Streamable HTTP (2025-03-26 and later): POST per message, optional GET stream.
            case http
            /// The 2024-11-05 HTTP+SSE transport: GET an event stream, POST to the endpoint it names (HTTP-16).
            case sse
        }

        /// Backoff between restarts of a stdio upstream (or reconnects of an HTTP one).
        public struct Restart: Sendable, Decodable, Equatable {
            public var initialMs: Int
            public var maxMs: Int
            public init(initialMs: Int = 500, maxMs: Int = 30_000) {
                self.initialMs = initialMs
                self.maxMs = maxMs
            }
            enum CodingKeys: String, CodingKey {
                case initialMs = "initial_ms"
                case maxMs = "max_ms"
            }
            public init(from decoder: any Decoder) throws {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                initialMs = try c.decodeIfPresent(Int.self, forKey: .initialMs) ?? 500
                maxMs = try c.decodeIfPresent(Int.self, forKey: .maxMs) ?? 30_000
            }
        }

        /// TLS settings for an https `url`.
        public struct TLS: Sendable, Decodable, Equatable {
            /// PEM file of CA certificates to trust instead of the system roots.
            public var caFile: String?
            /// PEM client certificate (chain) for mutual TLS; needs `keyFile`.
            public var certFile: String?
            /// PEM private key of `certFile`.
            public var keyFile: String?
            public init(caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil) {
                self.caFile = caFile
                self.certFile = certFile
                self.keyFile = keyFile
            }
            enum CodingKeys: String, CodingKey {
                case caFile = "ca_file"
                case certFile = "cert_file"
                case keyFile = "key_file"
            }
        }

        /// Defaults to `stdio` when `command` is set, else `http`.
        public var transport: Transport
        /// argv of the upstream process; `command[0]` is looked up in the gateway's PATH. Never run by a shell.
        public var command: [String]
        /// Environment variables set for the process (added after `env_allow`).
        public var env: [String: String]
        /// Names of the gateway's environment variables passed to the process; nothing else is inherited.
        public var envAllow: [String]
        /// Working directory of the process.
        public var cwd: String?
        public var restart: Restart
        /// The upstream's MCP endpoint (http) or SSE endpoint (sse).
        public var url: String?
        /// Static HTTP headers sent with every request.
        public var headers: [String: String]
        /// File whose content (trimmed) is sent as `Authorization: Bearer …`.
        public var bearerTokenFile: String?
        /// Environment variable holding the bearer token.
        public var bearerTokenEnv: String?
        public var tls: TLS?
        /// Deadline of one upstream request.
        public var timeoutMs: Int
        /// Deadline of connecting and initializing.
        public var connectTimeoutMs: Int
        /// Sent as `logging/setLevel` after initialize, if the upstream declares `logging`.
        public var logLevel: String?

        public init(
            transport: Transport? = nil, command: [String] = [], env: [String: String] = [:], envAllow: [String] = [],
            cwd: String? = nil, restart: Restart = Restart(), url: String? = nil, headers: [String: String] = [:],
            bearerTokenFile: String? = nil, bearerTokenEnv: String? = nil, tls: TLS? = nil, timeoutMs: Int = 30_000,
            connectTimeoutMs: Int = 10_000, logLevel: String? = nil
        ) {
            self.transport = transport ?? (command.isEmpty ? .http : .stdio)
            self.command = command
            self.env = env
            self.envAllow = envAllow
            self.cwd = cwd
            self.restart = restart
            self.url = url
            self.headers = headers
            self.bearerTokenFile = bearerTokenFile
            self.bearerTokenEnv = bearerTokenEnv
            self.tls = tls
            self.timeoutMs = timeoutMs
            self.connectTimeoutMs = connectTimeoutMs
            self.logLevel = logLevel
        }

        enum CodingKeys: String, CodingKey {
            case transport, command, env, cwd, restart, url, headers, tls
            case envAllow = "env_allow"
            case bearerTokenFile = "bearer_token_file"
            case bearerTokenEnv = "bearer_token_env"
            case timeoutMs = "timeout_ms"
            case connectTimeoutMs = "connect_timeout_ms"
            case logLevel = "log_level"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(
                transport: try c.decodeIfPresent(Transport.self, forKey: .transport),
                command: try c.decodeIfPresent([String].self, forKey: .command) ?? [],
                env: try c.decodeIfPresent([String: String].self, forKey: .env) ?? [:],
                envAllow: try c.decodeIfPresent([String].self, forKey: .envAllow) ?? [],
                cwd: try c.decodeIfPresent(String.self, forKey: .cwd),
                restart: try c.decodeIfPresent(Restart.self, forKey: .restart) ?? Restart(),
                url: try c.decodeIfPresent(String.self, forKey: .url),
                headers: try c.decodeIfPresent([String: String].self, forKey: .headers) ?? [:],
                bearerTokenFile: try c.decodeIfPresent(String.self, forKey: .bearerTokenFile),
                bearerTokenEnv: try c.decodeIfPresent(String.self, forKey: .bearerTokenEnv),
                tls: try c.decodeIfPresent(TLS.self, forKey: .tls),
                timeoutMs: try c.decodeIfPresent(Int.self, forKey: .timeoutMs) ?? 30_000,
                connectTimeoutMs: try c.decodeIfPresent(Int.self, forKey: .connectTimeoutMs) ?? 10_000,
                logLevel: try c.decodeIfPresent(String.self, forKey: .logLevel))
        }

        /// RFC 5424 levels `logging/setLevel` takes (LOG-1).
        public static let logLevels = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]

        /// Checks what the schema cannot: which keys go with the transport, ranges, header syntax.
        /// - Throws: `MCPConfigError` naming the key.
        public func validate() throws {
            switch transport {
            case .stdio:
                guard let program = command.first, !program.isEmpty else {
                    throw MCPConfigError(
                        "transport stdio needs command: the program and its arguments, e.g. [\"python\", \"server.py\"]"
                    )
                }
                if command.contains(where: { $0.utf8.contains(0) }) {
                    throw MCPConfigError("command: arguments must not contain NUL")
                }
                for (key, set) in [
                    ("url", url != nil), ("headers", !headers.isEmpty), ("bearer_token_file", bearerTokenFile != nil),
                    ("bearer_token_env", bearerTokenEnv != nil), ("tls", tls != nil),
                ] where set {
                    throw MCPConfigError("\(key) is for transport http or sse, not stdio")
                }
                for name in envAllow where !Self.isEnvName(name) {
                    throw MCPConfigError("env_allow: \"\(name)\" is not an environment variable name")
                }
                for name in env.keys where !Self.isEnvName(name) {
                    throw MCPConfigError("env: \"\(name)\" is not an environment variable name")
                }
                if env.values.contains(where: { $0.utf8.contains(0) }) {
                    throw MCPConfigError("env: values must not contain NUL")
                }
            case .http, .sse:
                guard let url else { throw MCPConfigError("transport \(transport.rawValue) needs url") }
                _ = try HTTPEndpoint(url)
                for (key, set) in [
                    ("command", !command.isEmpty), ("env", !env.isEmpty), ("env_allow", !envAllow.isEmpty),
                    ("cwd", cwd != nil),
                ] where set {
                    throw MCPConfigError("\(key) is for transport stdio, not \(transport.rawValue)")
                }
                for (name, value) in headers {
                    guard Self.isToken(name) else { throw MCPConfigError("headers: invalid header name \"\(name)\"") }
                    guard !value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else {
                        throw MCPConfigError("headers: value of \"\(name)\" contains a line break")
                    }
                    let lower = name.lowercased()
                    if ["mcp-session-id", "mcp-protocol-version", "content-type", "accept", "content-length", "host"]
                        .contains(lower)
                    {
                        throw MCPConfigError("headers: \(name) is set by the client itself")
                    }
                }
                if bearerTokenFile != nil, bearerTokenEnv != nil {
                    throw MCPConfigError("set bearer_token_file or bearer_token_env, not both")
                }
                if bearerTokenFile != nil || bearerTokenEnv != nil,
                    headers.keys.contains(where: { $0.lowercased() == "authorization" })
                {
                    throw MCPConfigError("headers: Authorization is set together with a bearer token")
                }
                if let tls {
                    guard url.lowercased().hasPrefix("https://") else {
                        throw MCPConfigError("tls is set but url is not https")
                    }
                    if (tls.certFile == nil) != (tls.keyFile == nil) {
                        throw MCPConfigError("tls: cert_file and key_file go together")
                    }
                }
            }
            guard (1...86_400_000).contains(timeoutMs) else {
                throw MCPConfigError("timeout_ms must be between 1 and 86400000")
            }
            guard (1...3_600_000).contains(connectTimeoutMs) else {
                throw MCPConfigError("connect_timeout_ms must be between 1 and 3600000")
            }
            guard (1...3_600_000).contains(restart.initialMs), (1...86_400_000).contains(restart.maxMs),
                restart.initialMs <= restart.maxMs
            else {
                throw MCPConfigError("restart: need 1 <= initial_ms <= max_ms (initial_ms at most 3600000)")
            }
            if let logLevel, !Self.logLevels.contains(logLevel) {
                throw MCPConfigError("log_level must be one of \(Self.logLevels.joined(separator: ", "))")
            }
        }

        static func isEnvName(_ name: String) -> Bool {
            !name.isEmpty && !name.utf8.contains(where: { $0 == UInt8(ascii: "=") || $0 == 0 })
        }

        /// An HTTP header name: RFC 9110 token characters.
        static func isToken(_ name: String) -> Bool {
            !name.isEmpty
                && name.utf8.allSatisfy { c in
                    switch c {
                    case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                        UInt8(ascii: "0")...UInt8(ascii: "9"):
                        return true
                    default: return "!#$%&'*+-.^_`|~".utf8.contains(c)
                    }
                }
        }
    }

    /// JSON Schema of `Config`, the `mcp` backend's config schema.
    public static var configSchema: JSON {
        let path: JSON = ["type": "string", "minLength": 1, "format": "path"]
        func with(_ base: JSON, _ description: String) -> JSON {
            guard case .object(var o) = base else { return base }
            o["description"] = .string(description)
            return .object(o)
        }
        return [
            "type": "object", "additionalProperties": false,
            "description":
                "One upstream MCP server, reached over stdio, Streamable HTTP or the 2024-11-05 HTTP+SSE transport.",
            "properties": [
                "transport": [
                    "enum": ["stdio", "http", "sse"],
                    "description":
                        "stdio: run `command` and speak JSON-RPC on its stdin/stdout; http: Streamable HTTP at `url`; sse: the 2024-11-05 HTTP+SSE transport, `url` being the SSE endpoint. Default: stdio if `command` is set, else http.",
                ],
                "command": [
                    "type": "array", "minItems": 1, "items": ["type": "string"],
                    "description":
                        "stdio: the program and its arguments, run without a shell; the program is looked up in the gateway's PATH.",
                ],
                "env": [
                    "type": "object", "additionalProperties": ["type": "string"],
                    "description": "stdio: environment variables set for the process.",
                ],
                "env_allow": [
                    "type": "array", "items": ["type": "string", "minLength": 1],
                    "description":
                        "stdio: names of the gateway's environment variables passed to the process (e.g. PATH, HOME); no other variable is inherited.",
                ],
                "cwd": with(path, "stdio: working directory of the process. Default: the gateway's."),
                "restart": [
                    "type": "object", "additionalProperties": false,
                    "description":
                        "Backoff between restarts of an exited stdio process, or reconnects to an HTTP upstream: starts at initial_ms, doubles up to max_ms, resets after a successful initialize.",
                    "properties": [
                        "initial_ms": [
                            "type": "integer", "minimum": 1, "maximum": 3_600_000, "default": 500,
                            "description": "First delay in milliseconds.",
                        ],
                        "max_ms": [
                            "type": "integer", "minimum": 1, "maximum": 86_400_000, "default": 30000,
                            "description": "Longest delay in milliseconds.",
                        ],
                    ],
                ],
                "url": [
                    "type": "string", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://",
                    "description":
                        "http: the upstream's MCP endpoint (e.g. \"http://127.0.0.1:8000/mcp\"); sse: its SSE endpoint (e.g. \"http://127.0.0.1:8000/sse\").",
                ],
                "headers": [
                    "type": "object", "additionalProperties": ["type": "string"],
                    "description": "http, sse: static HTTP headers sent with every request.",
                ],
                "bearer_token_file": with(
                    path,
                    "http, sse: file holding a token sent as \"Authorization: Bearer <token>\"; read at startup, never logged."
                ),
                "bearer_token_env": [
                    "type": "string", "minLength": 1,
                    "description":
                        "http, sse: environment variable holding the bearer token (instead of bearer_token_file).",
                ],
                "tls": [
                    "type": "object", "additionalProperties": false,
                    "description": "TLS settings for an https url.",
                    "properties": [
                        "ca_file": with(path, "PEM file of CA certificates to trust instead of the system roots."),
                        "cert_file": with(path, "PEM client certificate (chain) for mutual TLS; needs key_file."),
                        "key_file": with(path, "PEM private key of cert_file."),
                    ],
                ],
                "timeout_ms": [
                    "type": "integer", "minimum": 1, "maximum": 86_400_000, "default": 30000,
                    "description":
                        "Deadline of one upstream request in milliseconds; on expiry the upstream is sent notifications/cancelled and the call fails with -32004.",
                ],
                "connect_timeout_ms": [
                    "type": "integer", "minimum": 1, "maximum": 3_600_000, "default": 10000,
                    "description":
                        "Deadline of connecting (or starting the process) and initializing, in milliseconds.",
                ],
                "log_level": [
                    "enum": .array(Config.logLevels.map { .string($0) }),
                    "description":
                        "Sent to the upstream as logging/setLevel after initialize, if it declares the logging capability.",
                ],
            ],
        ]
    }
}
