import MCPGJSON

/// The one schema of the mcpg config file. Validation, `mcpg config schema` (`jsonSchema`) and
/// `mcpg config reference` (`markdownReference()`) are all derived from `root`.
public enum ConfigSchema {
    /// The config format version this build reads (`mcpg: 1`).
    public static let formatVersion: Int64 = 1

    /// A `{plugin, config}` entry.
    static let pluginRef = SchemaNode(
        .object([
            SchemaField(
                "plugin",
                SchemaNode(
                    .string(.name),
                    "Name of the plugin, as the plugin declares it (`apikey` for `apikey.so`). Lowercase letters, "
                        + "digits, `_` and `-`. The plugin's kind must match the section it is used in."),
                required: true),
            SchemaField(
                "config",
                SchemaNode(
                    .pluginConfig,
                    "The plugin's own settings. Checked against the JSON Schema the plugin publishes when it is "
                        + "loaded, so mistakes are reported with their line and column like any other key."),
                default: [:]),
        ]),
        "A plugin reference: which plugin to use and its settings.",
        definitionName: "pluginRef")

    /// A `backends` entry: a plugin reference plus how its catalog is federated.
    static let backendRef = SchemaNode(
        .object((pluginRef.fields ?? []) + [
            SchemaField(
                "prefix",
                SchemaNode(
                    .string(.name),
                    "Exposed names of this backend's tools and prompts become `<prefix>__<name>`, so several "
                        + "backends can serve the same name. Lowercase letters, digits, `_` and `-`. Resource URIs "
                        + "are never rewritten.")),
            SchemaField(
                "unavailable",
                SchemaNode(
                    .enumeration(["start", "refuse"]),
                    "What boot does when the backend cannot be listed. `start`: the gateway starts without its "
                        + "entries and keeps retrying (the rest of the catalog works). `refuse`: boot fails."),
                default: "start"),
            SchemaField(
                "grace_s",
                SchemaNode(
                    .integer(minimum: 0, maximum: 86_400),
                    "Seconds a backend that went down keeps its entries in the catalog (calls fail with -32004 "
                        + "meanwhile) before they are removed; they come back when it does."),
                default: 30),
            SchemaField(
                "refresh_s",
                SchemaNode(
                    .integer(minimum: 0, maximum: 86_400),
                    "Seconds between re-reads of the backend's lists, besides those its change notifications "
                        + "trigger. 0: only on notifications."),
                default: 300),
            SchemaField(
                "calls_tools",
                SchemaNode(
                    .boolean,
                    "Whether the backend may call the gateway's tools while it serves a call (a `pipeline` does). "
                        + "Each such call runs as the calling principal, through policy, transforms and the ledger, "
                        + "and its record names the outer call as `parent`. Off by default, so that no backend (an "
                        + "upstream MCP server, say) can make the gateway act for a caller on its own."),
                default: false),
        ]),
        "A backend: the plugin that serves it, its settings, and how its catalog joins the gateway's.",
        definitionName: "backendRef")

    static func chain(_ description: String, minItems: Int) -> SchemaNode {
        SchemaNode(.array(pluginRef, minItems: minItems), description)
    }

    static let tls = SchemaNode(
        .object([
            SchemaField(
                "cert_file",
                SchemaNode(
                    .string(.path(.existingFile)),
                    "The server certificate (PEM), leaf first, then the intermediates clients need. Re-read when "
                        + "the file changes: new connections get the new certificate."),
                required: true),
            SchemaField(
                "key_file",
                SchemaNode(
                    .string(.path(.privateFile)),
                    "The certificate's private key (PEM, PKCS#8, RSA or EC). Re-read with the certificate. Keep it "
                        + "readable by the gateway's user only."),
                required: true),
            SchemaField(
                "client_auth",
                SchemaNode(
                    .enumeration(["none", "optional", "required"]),
                    "Client certificates. `none`: not asked for. `optional`: asked for; a client without one is "
                        + "still served (identity plugins decide). `required`: the handshake fails without one. "
                        + "The chain a client sends goes to identity plugins (`tls` in `authenticate`)."),
                default: "none"),
            SchemaField(
                "client_ca_file",
                SchemaNode(
                    .string(.path(.existingFile)),
                    "CA certificates (PEM) that client certificates must chain to; the handshake fails for any "
                        + "other. Absent with `client_auth` `optional` or `required`: any client certificate is "
                        + "accepted at the TLS layer (`verified: false`) and identity plugins verify it against "
                        + "their own roots (`mtls` `ca_file`, `spiffe` bundles).")),
            SchemaField(
                "reload_interval_s",
                SchemaNode(
                    .integer(minimum: 0, maximum: 86_400),
                    "Seconds between looks at `cert_file`, `key_file` and `client_ca_file` for changes (0: never "
                        + "reload). A file that fails to load keeps the previous certificate and is logged once."),
                default: 5),
        ]),
        "TLS on the HTTP front (HTTPS). Absent: plain HTTP.")

    static let http = SchemaNode(
        .object([
            SchemaField(
                "listen",
                SchemaNode(
                    .string(.listenAddress),
                    "Address to listen on: `HOST:PORT`, an IPv6 host in brackets (`\"[::1]:8080\"`). Port 0 picks a "
                        + "free port. Use `0.0.0.0` or `[::]` for all interfaces only behind TLS termination."),
                default: "127.0.0.1:8080"),
            SchemaField(
                "path",
                SchemaNode(.string(.urlPath), "URL path of the MCP endpoint (Streamable HTTP). Must start with `/`."),
                default: "/mcp"),
            SchemaField(
                "allowed_origins",
                SchemaNode(
                    .array(SchemaNode(.string(.origin)), minItems: 0),
                    "Browser origins (`scheme://host[:port]`) allowed to call the endpoint; a request with any other "
                        + "`Origin` header is refused with 403, against DNS rebinding. Loopback origins "
                        + "(`localhost`, `127.0.0.1`, `[::1]`, any port) are allowed when the gateway listens on a "
                        + "loopback address. Requests without `Origin` (non-browser clients) are not affected."),
                default: []),
            SchemaField(
                "max_body_bytes",
                SchemaNode(
                    .integer(minimum: 1024, maximum: 1 << 30),
                    "Largest request body accepted, in bytes; larger requests get 413."),
                default: 4_194_304),
            SchemaField(
                "session_idle_timeout_s",
                SchemaNode(
                    .integer(minimum: 1, maximum: 604_800),
                    "Seconds after which an MCP session with no requests is closed; its client then gets 404 and "
                        + "starts a new session."),
                default: 1800),
            SchemaField(
                "max_sessions",
                SchemaNode(
                    .integer(minimum: 1, maximum: 10_000_000),
                    "Most MCP sessions open at once; past it `initialize` is answered -32005 until a session ends "
                        + "or expires."),
                default: 10_000),
            SchemaField(
                "session_key_file",
                SchemaNode(
                    .string(.path(.privateFile)),
                    "A secret file (at least 32 bytes, e.g. `head -c 32 /dev/urandom`) whose key seals session "
                        + "state into session ids. Gateways sharing it serve each other's sessions, across restarts "
                        + "and replicas, without a sticky load balancer. Absent: a random key per process (sessions "
                        + "end with the process).")),
            SchemaField(
                "session_max_age_s",
                SchemaNode(
                    .integer(minimum: 60, maximum: 2_592_000),
                    "Longest a session id is honoured after its `initialize`, idle or not; then the client gets "
                        + "404 and starts a new session."),
                default: 86_400),
            SchemaField("tls", tls),
            SchemaField(
                "public_url",
                SchemaNode(
                    .string(.httpURL),
                    "The MCP endpoint's URL as clients reach it (behind a proxy: the proxy's), e.g. "
                        + "`https://mcp.example.com/mcp`. It is the `resource` of the OAuth protected resource "
                        + "metadata (RFC 9728) and the base of the `resource_metadata` URL in 401 challenges. "
                        + "Default: built from the scheme, `listen` and `path`.")),
        ]),
        "The Streamable HTTP front. Absent: no HTTP listener (use `mcpg serve --stdio`).")

    static let server = SchemaNode(
        .object([
            SchemaField("http", http),
            SchemaField(
                "page_size",
                SchemaNode(
                    .integer(minimum: 1, maximum: 10_000),
                    "Items per page of `tools/list`, `prompts/list`, `resources/list` and `resources/templates/list`."
                ),
                default: 100),
            SchemaField(
                "call_timeout_ms",
                SchemaNode(
                    .integer(minimum: 1, maximum: 3_600_000),
                    "Deadline for one plugin call, in milliseconds. A backend call that takes longer is cancelled "
                        + "and answered with an error."),
                default: 30_000),
        ]),
        "How clients reach the gateway.")

    static let log = SchemaNode(
        .object([
            SchemaField(
                "level",
                SchemaNode(
                    .enumeration(["trace", "debug", "info", "notice", "warning", "error", "critical"]),
                    "Lowest level written to stderr. `trace` and `debug` log every frame (never bodies or secrets)."),
                default: "info"),
            SchemaField(
                "format",
                SchemaNode(
                    .enumeration(["text", "json"]), "`text` for people, `json` (one object per line) for collectors."),
                default: "text"),
        ]),
        "Operator logs (stderr). The audit ledger is separate and not affected.")

    static let plugins = SchemaNode(
        .object([
            SchemaField(
                "dir",
                SchemaNode(
                    .string(.path(.existingDirectory)),
                    "Directory holding the plugin files (`NAME.so` with its signature `NAME.so.minisig`)."),
                default: "./plugins"),
            SchemaField(
                "trusted_keys",
                SchemaNode(
                    .array(SchemaNode(.string(.trustedKey)), minItems: 1),
                    "Minisign public keys a plugin signature must verify against. Each entry is either the key "
                        + "itself (the `RW…` second line of a `.pub` file) or, for anything not starting with `RW`, "
                        + "the path of a `.pub` file, which must exist. Keys never come from the plugin directory."),
                required: true),
        ]),
        "Where plugins come from and who may sign them.")

    static let chains = SchemaNode(
        .object([
            SchemaField(
                "policy",
                SchemaNode(
                    .enumeration(["all", "first"]),
                    "How the policy chain's answers combine. `all`: every plugin is asked, any deny wins and at "
                        + "least one plugin must allow (a plugin that abstains has no say). `first`: the first plugin "
                        + "that does not abstain decides. Either way a request nobody allows is denied, and a failing "
                        + "plugin denies."),
                default: "all"),
            SchemaField(
                "identity",
                SchemaNode(
                    .enumeration(["first", "all"]),
                    "How the identity chain's answers combine. `first`: plugins are asked in order, the first that "
                        + "authenticates sets the principal, a reject stops the chain. `all`: every plugin must "
                        + "authenticate the caller (e.g. a client certificate and an API key); the principal's id "
                        + "comes from the first, groups are merged, tenants must agree, attributes are merged with "
                        + "earlier plugins winning. Either way a failing plugin refuses the caller."),
                default: "first"),
        ]),
        "How the answers of the plugins in a chain combine.")

    static let audit = SchemaNode(
        .object([
            SchemaField(
                "enabled",
                SchemaNode(
                    .boolean,
                    "`false` turns the ledger off: calls are then not recorded, sinks get nothing, and the gateway "
                        + "says so in its log at every start. For development and for measuring the ledger's cost; "
                        + "a production gateway keeps it on."),
                default: true),
            SchemaField(
                "ledger",
                SchemaNode(
                    .string(.path(.any)),
                    "The append-only audit ledger (JSON lines). Created if missing, with its directory."),
                required: true),
            SchemaField(
                "signing_key",
                SchemaNode(
                    .string(.path(.privateFile)),
                    "Ed25519 secret key, in minisign format (as `mcpg init` or `mcpg plugin keygen` write it), "
                        + "that signs the checkpoints; `mcpg audit verify` checks them with its public key. Must "
                        + "exist; keep it readable by the gateway's user only."),
                required: true),
            SchemaField(
                "checkpoint_every",
                SchemaNode(
                    .integer(minimum: 1, maximum: 1_000_000),
                    "Write a signed checkpoint after this many records (1: after every record)."),
                default: 1000),
            SchemaField(
                "checkpoint_interval_ms",
                SchemaNode(
                    .integer(minimum: 1, maximum: 3_600_000),
                    "Write a signed checkpoint at least this often while records arrive, in milliseconds."),
                default: 1000),
            SchemaField(
                "durability",
                SchemaNode(
                    .string(.durability),
                    "When a record is made durable. Either way a call is answered only once its record is on disk "
                        + "(fsync). `sync`: write as soon as a record arrives; records arriving during a write share "
                        + "the next one. `batch(5ms)`: while calls come concurrently, wait up to that long before each "
                        + "write, until as many records wait as the last write held, so more records share one fsync "
                        + "(fewer fsyncs under load, up to that much more latency); a lone record, such as one agent's "
                        + "sequential calls, is written at once."),
                default: "sync"),
            SchemaField(
                "previous_signing_key",
                SchemaNode(
                    .string(.path(.privateFile)),
                    "When `signing_key` was changed: the key the ledger was signed with before, so the `key` record "
                        + "that starts the new key is endorsed by the old one and `mcpg audit verify` needs only the "
                        + "old public key. Without it the change is recorded unendorsed, and verifying needs both "
                        + "public keys."),
                required: false),
            SchemaField(
                "rotate",
                SchemaNode(
                    .object([
                        SchemaField(
                            "max_bytes",
                            SchemaNode(
                                .integer(minimum: 4096, maximum: 1 << 40),
                                "Close the segment at the first checkpoint after it reaches this size."),
                            required: false),
                        SchemaField(
                            "max_age_s",
                            SchemaNode(
                                .integer(minimum: 1, maximum: 366 * 86400),
                                "Close the segment at the first checkpoint after it has been open this long."),
                            required: false),
                        SchemaField(
                            "retain",
                            SchemaNode(
                                .integer(minimum: 1, maximum: 1_000_000),
                                "Keep at most this many closed segments; older ones are deleted after a rotation "
                                    + "(the ledger still verifies from the oldest one kept). Absent: keep all."),
                            required: false),
                    ]),
                    "Segment files: the ledger file is renamed to `LEDGER.<first seq, 12 digits>` right after a "
                        + "checkpoint and a new one continues the chain and the Merkle tree. Absent: one file.")),
            SchemaField(
                "record",
                SchemaNode(
                    .object([
                        SchemaField("arguments", recordMode("a tools/call's arguments"), default: "hash"),
                        SchemaField("result", recordMode("a tools/call's result"), default: "hash"),
                        SchemaField(
                            "tools",
                            SchemaNode(
                                .map(
                                    keyFormat: .text,
                                    value: SchemaNode(
                                        .object([
                                            SchemaField("arguments", recordMode("this tool's arguments")),
                                            SchemaField("result", recordMode("this tool's result")),
                                        ])),
                                    noun: "tool"),
                                "Per tool (its exposed name, or a prefix ending in `*`): overrides of `arguments` and "
                                    + "`result`. The longest matching pattern wins."),
                            default: [:]),
                    ]),
                    "What a tools/call record holds besides who, what, the decision and the outcome."),
                default: [:]),
            SchemaField(
                "refusals",
                SchemaNode(
                    .object([
                        SchemaField(
                            "per_source",
                            SchemaNode(
                                .integer(minimum: 1, maximum: 1_000_000),
                                "Refusals from one source recorded one by one per window."),
                            default: 10),
                        SchemaField(
                            "window_s",
                            SchemaNode(.integer(minimum: 1, maximum: 86400), "The window's length, in seconds."),
                            default: 60),
                    ]),
                    "Authentication refusals (401/403 before any request is handled) from one source: an IPv4 "
                        + "address or an IPv6 /64. The first `per_source` in a window are recorded as usual; the "
                        + "rest are counted, and once the window has ended one record says how many there were, "
                        + "from when to when, and why. So a flood of bad credentials neither grows the ledger nor "
                        + "costs an fsync per request, and still shows in it."),
                default: [:]),
        ]),
        "The tamper-evident record of every decision and outcome.")

    static func recordMode(_ what: String) -> SchemaNode {
        SchemaNode(
            .enumeration(["full", "hash", "omit"]),
            "How \(what) goes into the ledger. `full`: as is. `hash`: its SHA-256 (hex, over the compact JSON), which "
                + "proves what was sent without keeping it; low-entropy values can be guessed from a hash, so use "
                + "`omit` for those. `omit`: not at all.")
    }

    /// The whole config file.
    public static let root = SchemaNode(
        .object([
            SchemaField(
                "mcpg", SchemaNode(.version(formatVersion), "Config format version. Must be `1`."), required: true),
            SchemaField("server", server, default: [:]),
            SchemaField("log", log, default: [:]),
            SchemaField("plugins", plugins, required: true),
            SchemaField(
                "identity",
                chain(
                    "The identity chain, tried in order (see `chains.identity`): by default the first plugin that "
                        + "recognises the caller sets the principal. A caller no plugin recognises is refused.",
                    minItems: 1),
                required: true),
            SchemaField(
                "policy",
                chain(
                    "The policy chain, asked in order. The default is deny: a request no plugin allows is "
                        + "refused.", minItems: 1),
                required: true),
            SchemaField("chains", chains, default: [:]),
            SchemaField(
                "transforms",
                chain(
                    "Transforms applied, in order, to requests before the backend and to its responses.", minItems: 0),
                default: []),
            SchemaField(
                "backends",
                SchemaNode(
                    .map(keyFormat: .name, value: backendRef, noun: "backend"),
                    "The MCP servers behind the gateway, by name (lowercase letters, digits, `_` and `-`). The name "
                        + "appears in audit records and policies."),
                default: [:]),
            SchemaField("audit", audit, required: true),
            SchemaField(
                "sinks",
                chain("Where audit events are also sent (after they are in the ledger).", minItems: 0),
                default: []),
        ]),
        "The mcpg config file (YAML).")

    /// A complete config, shown in the reference. It refers to `./plugins`, `./keys/plugins.pub` and
    /// `./keys/audit.key`; the tests check that it is valid.
    public static let example = """
        mcpg: 1
        server:
          http:
            listen: "127.0.0.1:8080"
            path: /mcp
            allowed_origins: ["http://localhost:6274"]
          page_size: 100
          call_timeout_ms: 30000
        log:
          level: info
        plugins:
          dir: ./plugins
          trusted_keys: [./keys/plugins.pub]
        identity:
          - plugin: apikey
            config:
              keys:
                - id: alice
                  sha256: 2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b
                  groups: [eng]
          - plugin: anonymous        # loopback callers only
        policy:
          - plugin: rules
            config:
              rules:
                - { id: eng-tools, effect: allow, groups: [eng] }
        chains:
          policy: all
        transforms:
          - plugin: redact
            config:
              rules:
                - patterns: [{ name: email, builtin: email }]
        backends:
          demo:
            plugin: mock
            config:
              tools: [{ name: echo, description: Echoes its input }]
        audit:
          ledger: ./data/audit.ledger
          signing_key: ./keys/audit.key
          checkpoint_every: 1000
          checkpoint_interval_ms: 1000
        sinks:
          - plugin: jsonl
            config: { path: ./data/events.jsonl }

        """
}
