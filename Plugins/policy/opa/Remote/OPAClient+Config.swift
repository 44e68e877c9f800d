import MCPGJSON

extension OPAClient {
    /// The `remote` block of the `opa` plugin's config: where the OPA server is and how to ask it.
    ///
    /// Decoded from config with the snake_case keys listed in `configSchema`; every key but `url` and `path`
    /// has a default. Secrets (the bearer token) are referenced by file or environment variable, never inlined,
    /// and read once by `OPAClient.init`.
    public struct Config: Sendable, Decodable, Equatable {
        /// TLS settings for an `https` URL.
        public struct TLS: Sendable, Decodable, Equatable {
            /// PEM file of CA certificates to trust instead of the system roots.
            public var caFile: String?
            /// Skip certificate verification entirely (tests only).
            public var insecureSkipVerify: Bool

            public init(caFile: String? = nil, insecureSkipVerify: Bool = false) {
                self.caFile = caFile
                self.insecureSkipVerify = insecureSkipVerify
            }

            enum CodingKeys: String, CodingKey {
                case caFile = "ca_file"
                case insecureSkipVerify = "insecure_skip_verify"
            }

            public init(from decoder: any Decoder) throws {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                caFile = try c.decodeIfPresent(String.self, forKey: .caFile)
                insecureSkipVerify = try c.decodeIfPresent(Bool.self, forKey: .insecureSkipVerify) ?? false
            }
        }

        /// Base URL of the OPA server, e.g. `http://127.0.0.1:8181` (a path prefix is kept).
        public var url: String
        /// The decision document: `mcpg/authz/allow`, or dotted `data.mcpg.authz.allow`.
        public var path: String
        /// Deadline for one `decide` call, all of its HTTP requests included.
        public var timeoutMs: Int
        /// How long an answer is reused for the same input; 0 turns the cache off.
        public var cacheTTLMs: Int
        /// Most answers kept; the oldest is evicted when full.
        public var cacheSize: Int
        /// Static request headers (e.g. a tenant header).
        public var headers: [String: String]
        /// File whose content (trimmed) is sent as `Authorization: Bearer …`.
        public var bearerTokenFile: String?
        /// Environment variable holding the bearer token.
        public var bearerTokenEnv: String?
        /// TLS settings; only with an https `url`.
        public var tls: TLS?
        /// One request per `decide` call with `input.queries` instead of one request per query.
        public var batch: Bool
        /// Requests in flight at once for one `decide` call in per-query mode.
        public var maxConcurrency: Int

        public init(
            url: String, path: String, timeoutMs: Int = 500, cacheTTLMs: Int = 1000, cacheSize: Int = 10_000,
            headers: [String: String] = [:], bearerTokenFile: String? = nil, bearerTokenEnv: String? = nil,
            tls: TLS? = nil, batch: Bool = false, maxConcurrency: Int = 16
        ) {
            self.url = url
            self.path = path
            self.timeoutMs = timeoutMs
            self.cacheTTLMs = cacheTTLMs
            self.cacheSize = cacheSize
            self.headers = headers
            self.bearerTokenFile = bearerTokenFile
            self.bearerTokenEnv = bearerTokenEnv
            self.tls = tls
            self.batch = batch
            self.maxConcurrency = maxConcurrency
        }

        enum CodingKeys: String, CodingKey {
            case url, path, headers, tls, batch
            case timeoutMs = "timeout_ms"
            case cacheTTLMs = "cache_ttl_ms"
            case cacheSize = "cache_size"
            case bearerTokenFile = "bearer_token_file"
            case bearerTokenEnv = "bearer_token_env"
            case maxConcurrency = "max_concurrency"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            url = try c.decode(String.self, forKey: .url)
            path = try c.decode(String.self, forKey: .path)
            timeoutMs = try c.decodeIfPresent(Int.self, forKey: .timeoutMs) ?? 500
            cacheTTLMs = try c.decodeIfPresent(Int.self, forKey: .cacheTTLMs) ?? 1000
            cacheSize = try c.decodeIfPresent(Int.self, forKey: .cacheSize) ?? 10_000
            headers = try c.decodeIfPresent([String: String].self, forKey: .headers) ?? [:]
            bearerTokenFile = try c.decodeIfPresent(String.self, forKey: .bearerTokenFile)
            bearerTokenEnv = try c.decodeIfPresent(String.self, forKey: .bearerTokenEnv)
            tls = try c.decodeIfPresent(TLS.self, forKey: .tls)
            batch = try c.decodeIfPresent(Bool.self, forKey: .batch) ?? false
            maxConcurrency = try c.decodeIfPresent(Int.self, forKey: .maxConcurrency) ?? 16
        }
    }

    /// JSON Schema of `Config`, for the plugin to embed under its `remote` key.
    public static var configSchema: JSON {
        [
            "type": "object", "additionalProperties": false, "required": ["url", "path"],
            "description": "Ask an OPA server's Data API for each decision instead of evaluating Rego in-process.",
            "properties": [
                "url": [
                    "type": "string", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://",
                    "description": "Base URL of the OPA server (http or https), e.g. \"http://127.0.0.1:8181\".",
                ],
                "path": [
                    "type": "string", "minLength": 1,
                    "description":
                        "Decision document to query, \"/\" separated (\"mcpg/authz/allow\") or dotted (\"data.mcpg.authz.allow\"); POSTed to <url>/v1/data/<path>.",
                ],
                "timeout_ms": [
                    "type": "integer", "minimum": 1, "default": 500,
                    "description":
                        "Deadline in milliseconds for one authorization call, all its HTTP requests included; what is not answered by then fails (and the plugin denies).",
                ],
                "cache_ttl_ms": [
                    "type": "integer", "minimum": 0, "default": 1000,
                    "description": "How long an answer is reused for an identical input, in milliseconds; 0 disables the cache. Failures are never cached.",
                ],
                "cache_size": [
                    "type": "integer", "minimum": 1, "default": 10000,
                    "description": "Most cached answers; the oldest is evicted when full.",
                ],
                "headers": [
                    "type": "object", "additionalProperties": ["type": "string"],
                    "description": "Static HTTP headers sent with every request, e.g. {\"X-Tenant\": \"acme\"}.",
                ],
                "bearer_token_file": [
                    "type": "string", "minLength": 1, "format": "path",
                    "description": "File holding a token sent as \"Authorization: Bearer <token>\"; read at startup, never logged.",
                ],
                "bearer_token_env": [
                    "type": "string", "minLength": 1,
                    "description": "Environment variable holding the bearer token (instead of bearer_token_file).",
                ],
                "tls": [
                    "type": "object", "additionalProperties": false,
                    "description": "TLS settings for an https url.",
                    "properties": [
                        "ca_file": [
                            "type": "string", "minLength": 1, "format": "path",
                            "description": "PEM file of CA certificates to trust instead of the system roots.",
                        ],
                        "insecure_skip_verify": [
                            "type": "boolean", "default": false,
                            "description": "Do not verify the server certificate (for tests only).",
                        ],
                    ],
                ],
                "batch": [
                    "type": "boolean", "default": false,
                    "description":
                        "Send one request per authorization call with input {\"queries\": [...], <shared fields>} and expect result to be an array of decisions in order; otherwise one request per query.",
                ],
                "max_concurrency": [
                    "type": "integer", "minimum": 1, "default": 16,
                    "description": "Requests in flight at once for one authorization call in per-query mode.",
                ],
            ],
        ]
    }
}

/// A configuration problem found by `OPAClient.init` (bad URL, unreadable token or CA file, …).
public struct OPAClientError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
