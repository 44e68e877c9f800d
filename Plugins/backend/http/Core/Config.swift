import MCPGJSON

/// Outbound authentication of the HTTP tools: the `auth` block of a plugin or of one tool.
///
/// Secrets are referenced by file or environment variable (read once when the tools are built) and never
/// appear in logs or results.
public struct AuthConfig: Decodable, Sendable, Equatable {
    /// `none`, `header`, `bearer`, `basic` or `oauth2`.
    public var type: String
    /// `header`: the header's name (default `Authorization`) and its value, inline or from a file or variable.
    public var name: String?
    public var value: String?
    public var valueFile: String?
    public var valueEnv: String?
    /// `bearer`: the token's file or variable.
    public var tokenFile: String?
    public var tokenEnv: String?
    /// `basic`: the user name and the password's file or variable.
    public var username: String?
    public var passwordFile: String?
    public var passwordEnv: String?
    /// `oauth2` (client credentials grant, RFC 6749 §4.4).
    public var tokenURL: String?
    public var clientID: String?
    public var clientSecretFile: String?
    public var clientSecretEnv: String?
    public var scopes: [String]?
    public var audience: String?
    /// `basic` (default: client id and secret in an Authorization header) or `body` (form fields).
    public var clientAuth: String?

    public init(type: String) { self.type = type }

    enum CodingKeys: String, CodingKey {
        case type, name, value, username, scopes, audience
        case valueFile = "value_file", valueEnv = "value_env", tokenFile = "token_file", tokenEnv = "token_env"
        case passwordFile = "password_file", passwordEnv = "password_env", tokenURL = "token_url"
        case clientID = "client_id", clientSecretFile = "client_secret_file", clientSecretEnv = "client_secret_env"
        case clientAuth = "client_auth"
    }

    public static var schema: JSON {
        [
            "type": "object", "additionalProperties": false, "required": ["type"],
            "description": "Outbound authentication. Secrets come from files or environment variables.",
            "properties": [
                "type": [
                    "enum": ["none", "header", "bearer", "basic", "oauth2"],
                    "description": "none, a static header, a bearer token, HTTP basic, or OAuth2 client credentials.",
                ],
                "name": ["type": "string", "description": "header: the header name (default Authorization)."],
                "value": ["type": "string", "description": "header: the value inline (not for secrets)."],
                "value_file": ["type": "string", "description": "header: file holding the value (trimmed)."],
                "value_env": ["type": "string", "description": "header: environment variable holding the value."],
                "token_file": ["type": "string", "description": "bearer: file holding the token (trimmed)."],
                "token_env": ["type": "string", "description": "bearer: environment variable holding the token."],
                "username": ["type": "string", "description": "basic: the user name."],
                "password_file": ["type": "string", "description": "basic: file holding the password (trimmed)."],
                "password_env": ["type": "string", "description": "basic: environment variable holding the password."],
                "token_url": ["type": "string", "description": "oauth2: the token endpoint (http or https URL)."],
                "client_id": ["type": "string", "description": "oauth2: the client id."],
                "client_secret_file": ["type": "string", "description": "oauth2: file holding the client secret."],
                "client_secret_env": [
                    "type": "string", "description": "oauth2: environment variable holding the client secret.",
                ],
                "scopes": ["type": "array", "items": ["type": "string"], "description": "oauth2: scopes requested."],
                "audience": ["type": "string", "description": "oauth2: `audience` form field, for servers that need one."],
                "client_auth": [
                    "enum": ["basic", "body"],
                    "description": "oauth2: client credentials in an Authorization header (basic, default) or the form.",
                ],
            ],
        ]
    }
}

/// How the HTTP tools reach their upstream: timeouts, retries, size limit, TLS, static headers and auth.
public struct ConnectionConfig: Decodable, Sendable, Equatable {
    public struct TLS: Decodable, Sendable, Equatable {
        /// PEM file of CA certificates trusted instead of the system roots.
        public var caFile: String?
        /// No certificate verification at all: for tests only, warned about loudly.
        public var insecureSkipVerify: Bool?
        public init(caFile: String? = nil, insecureSkipVerify: Bool? = nil) {
            self.caFile = caFile
            self.insecureSkipVerify = insecureSkipVerify
        }
        enum CodingKeys: String, CodingKey {
            case caFile = "ca_file", insecureSkipVerify = "insecure_skip_verify"
        }
    }
    /// Deadline of one HTTP attempt (default 10 s).
    public var timeoutMs: Int?
    /// Extra attempts for idempotent methods after a connect error, 429 or 502–504 (default 2).
    public var retries: Int?
    /// First backoff delay, doubled per attempt, with jitter (default 200 ms).
    public var retryBackoffMs: Int?
    /// Largest response body read (default 1 MiB); a larger one is a tool error.
    public var maxResponseBytes: Int?
    public var tls: TLS?
    /// Static headers on every request (not for secrets: use `auth`).
    public var headers: [String: String]?
    public var auth: AuthConfig?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case retries, tls, headers, auth
        case timeoutMs = "timeout_ms", retryBackoffMs = "retry_backoff_ms", maxResponseBytes = "max_response_bytes"
    }

    /// The schema members of these keys, to merge into a plugin's config schema.
    public static var schemaProperties: JSONObject {
        [
            "timeout_ms": [
                "type": "integer", "minimum": 1, "maximum": 3_600_000,
                "description": "Deadline of one HTTP attempt in milliseconds (default 10000).",
            ],
            "retries": [
                "type": "integer", "minimum": 0, "maximum": 10,
                "description":
                    "Extra attempts of idempotent requests (GET, HEAD, PUT, DELETE, OPTIONS) after a connect error, 429 or 502-504 (default 2).",
            ],
            "retry_backoff_ms": [
                "type": "integer", "minimum": 1, "maximum": 60000,
                "description": "First retry delay, doubled per attempt, with random jitter (default 200).",
            ],
            "max_response_bytes": [
                "type": "integer", "minimum": 1, "maximum": 1_073_741_824,
                "description": "Largest response body accepted; a larger one is a tool error (default 1048576).",
            ],
            "tls": [
                "type": "object", "additionalProperties": false, "description": "TLS settings for https URLs.",
                "properties": [
                    "ca_file": ["type": "string", "description": "PEM file of CA certificates to trust."],
                    "insecure_skip_verify": [
                        "type": "boolean", "description": "Skip certificate verification (tests only; default false).",
                    ],
                ],
            ],
            "headers": [
                "type": "object", "additionalProperties": ["type": "string"],
                "description": "Static headers sent with every request (use auth for secrets).",
            ],
            "auth": AuthConfig.schema,
        ]
    }
}
