// swift-tools-version:6.0
// mcpg: a Model Context Protocol gateway. Kernel + one C ABI + plugins as separately loaded `.so` files.
import PackageDescription

let root = Context.packageDirectory

/// `make build` sets MCPG_STATIC_PLUGINS=1 and builds with `--static-swift-stdlib`: every plugin then
/// carries its own static Swift runtime. Debug and test builds leave it unset, because the static link of
/// FoundationEssentials needs objects compiled for the static runtime.
let staticPlugins = Context.environment["MCPG_STATIC_PLUGINS"] == "1"

/// Linker flags that make a `.dynamic` product a self-contained, static-stdlib plugin whose only global
/// symbol is `mcpg_plugin_v1` (see SPEC.md, "Runtime arrangement"). Build with `--static-swift-stdlib`.
func pluginLinkerSettings(_ product: String) -> [LinkerSetting] {
    guard staticPlugins else { return [] }
    return [
        .unsafeFlags([
            "-static-stdlib",
            "-Xlinker", "-soname=lib\(product).so",
            "-Xlinker", "--version-script=\(root)/PluginABI/exports.map",
            "-Xlinker", "--gc-sections",
            "-Xlinker", "-z", "-Xlinker", "defs",
        ])
    ]
}

/// The plugins shipped with mcpg: (kind folder, config name, Swift module, extra dependencies, source folder
/// under Plugins/<kind>/<name>: "" for the folder itself).
let plugins: [(kind: String, name: String, module: String, deps: [Target.Dependency], sub: String)] = [
    ("identity", "apikey", "APIKeyPlugin", ["CSodium", "CYAML"], ""),
    ("identity", "anonymous", "AnonymousPlugin", [], ""),
    ("identity", "oidc", "OIDCPlugin", ["JWTVerifier"], "Plugin"),
    ("identity", "mtls", "MTLSPlugin", ["ClientCertificates"], "Plugin"),
    ("identity", "spiffe", "SPIFFEPlugin", ["ClientCertificates", "JWTVerifier"], ""),
    ("policy", "rules", "RulesPlugin", [], ""),
    ("policy", "cedar", "CedarPlugin", ["CedarEngine"], "Plugin"),
    ("policy", "casbin", "CasbinPlugin", ["CasbinEngine"], "Plugin"),
    ("policy", "opa", "OPAPlugin", ["RegoEngine", "OPAClient"], "Plugin"),
    ("transform", "redact", "RedactPlugin", [], ""),
    ("backend", "mock", "MockPlugin", [], ""),
    ("backend", "mcp", "MCPBackendPlugin", ["MCPClient"], "Plugin"),
    ("backend", "command", "CommandPlugin", ["ArgumentSchema"], ""),
    ("backend", "sql", "SQLPlugin", [
        "ArgumentSchema", "CSQLite", .product(name: "PostgresNIO", package: "postgres-nio"),
        .product(name: "Logging", package: "swift-log"),
    ], "Plugin"),
    ("backend", "pipeline", "PipelinePlugin", ["PipelineEngine"], "Plugin"),
    ("backend", "http", "HTTPBackendPlugin", ["HTTPTools"], "Plugin"),
    ("backend", "openapi", "OpenAPIPlugin", ["OpenAPIBackendCore"], "Plugin"),
    ("backend", "graphql", "GraphQLPlugin", ["GraphQLBackendCore"], "Plugin"),
    ("sink", "jsonl", "JSONLPlugin", [], ""),
    ("sink", "prometheus", "PrometheusPlugin", [
        .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
    ], ""),
    ("sink", "otel", "OTelPlugin", [
        .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
    ], ""),
    ("sink", "syslog", "SyslogPlugin", ["SinkBuffer"], ""),
    ("sink", "webhook", "WebhookPlugin", [
        "SinkBuffer", "CSodium", .product(name: "AsyncHTTPClient", package: "async-http-client"),
    ], ""),
    ("sink", "postgres", "PostgresSinkPlugin", [
        "SinkBuffer", .product(name: "PostgresNIO", package: "postgres-nio"),
        .product(name: "Logging", package: "swift-log"),
    ], ""),
]

/// Policy languages implemented in Swift: an engine library (Plugins/policy/<plugin>/Engine) that the plugin
/// links, a unit test target, and a `<name>-eval` tool (Tests/Support) that the differential tests drive
/// side by side with the reference engine.
let engines: [(module: String, plugin: String, eval: String)] = [
    ("CedarEngine", "cedar", "cedar-eval"),
    ("CasbinEngine", "casbin", "casbin-eval"),
    ("RegoEngine", "opa", "rego-eval"),
]

/// Deliberately broken plugins the loader tests must refuse (Tests/Fixtures/Plugins/<name>).
let fixturePlugins: [(name: String, module: String, deps: [Target.Dependency])] = [
    ("fixture_noentry", "FixtureNoEntry", []),
    ("fixture_wrongabi", "FixtureWrongABI", ["CMCPGPlugin"]),
    ("fixture_createfails", "FixtureCreateFails", ["PluginKit"]),
    ("fixture_misbehave", "FixtureMisbehave", ["CMCPGPlugin"]),
]

let swiftSettings: [SwiftSetting] = [.swiftLanguageMode(.v6)]

var products: [Product] = [
    .executable(name: "mcpg", targets: ["mcpg"]),
    .library(name: "PluginKit", targets: ["PluginKit"]),
]
var targets: [Target] = [
    // The one C header every plugin and the kernel share.
    .target(
        name: "CMCPGPlugin",
        path: "PluginABI",
        exclude: ["PluginKit", "exports.map"],
        sources: ["abi.c"],
        publicHeadersPath: "include"
    ),
    .systemLibrary(
        name: "CSodium", path: "Kernel/CSodium", pkgConfig: "libsodium",
        providers: [.apt(["libsodium-dev"])]),
    .systemLibrary(
        name: "CSQLite", path: "Plugins/backend/sql/CSQLite", pkgConfig: "sqlite3",
        providers: [.apt(["libsqlite3-dev"])]),
    .systemLibrary(
        name: "CLibcrypto", path: "Kernel/CLibcrypto", pkgConfig: "libcrypto",
        providers: [.apt(["libssl-dev"])]),
    .systemLibrary(
        name: "CYAML", path: "Kernel/CYAML", pkgConfig: "yaml-0.1",
        providers: [.apt(["libyaml-dev"])]),

    .target(name: "MCPGJSON", path: "Kernel/JSON", swiftSettings: swiftSettings),
    .target(
        name: "PluginKit", dependencies: ["CMCPGPlugin", "MCPGJSON"], path: "PluginABI/PluginKit",
        swiftSettings: swiftSettings),

    .target(name: "MCPGFrames", dependencies: ["MCPGJSON"], path: "Kernel/Frames", swiftSettings: swiftSettings),
    .target(
        name: "MCPGConfig", dependencies: ["MCPGJSON", "CYAML"], path: "Kernel/Config",
        swiftSettings: swiftSettings),
    .target(
        name: "MCPGLoader",
        dependencies: ["CMCPGPlugin", "CSodium", "CLibcrypto", "MCPGJSON", .product(name: "Logging", package: "swift-log")],
        path: "Kernel/Loader", swiftSettings: swiftSettings),
    .target(
        name: "MCPGAudit",
        dependencies: ["CSodium", "MCPGJSON", .product(name: "Logging", package: "swift-log")], path: "Kernel/Audit",
        swiftSettings: swiftSettings),
    .target(
        name: "MCPGRouter",
        dependencies: [
            "MCPGFrames", "MCPGJSON", "CSodium", .product(name: "Logging", package: "swift-log"),
        ],
        path: "Kernel/Router", swiftSettings: swiftSettings),
    .target(
        name: "MCPGTransport",
        dependencies: [
            "MCPGRouter", "MCPGFrames",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ],
        path: "Kernel/Transport", swiftSettings: swiftSettings),
    .executableTarget(
        name: "mcpg",
        dependencies: [
            "MCPGTransport", "MCPGRouter", "MCPGConfig", "MCPGLoader", "MCPGAudit", "MCPGFrames", "MCPGJSON",
            "CMCPGPlugin",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ],
        path: "Tools/mcpg", swiftSettings: swiftSettings),

    // Helpers the test targets that start server processes share.
    .target(name: "TestProcesses", path: "Tests/TestProcesses", swiftSettings: swiftSettings),
    .testTarget(name: "MCPGJSONTests", dependencies: ["MCPGJSON"], swiftSettings: swiftSettings),
    .testTarget(name: "MCPGFramesTests", dependencies: ["MCPGFrames"], swiftSettings: swiftSettings),
    .testTarget(name: "MCPGConfigTests", dependencies: ["MCPGConfig"], swiftSettings: swiftSettings),
    .testTarget(name: "MCPGLoaderTests", dependencies: ["MCPGLoader", "TestProcesses"], swiftSettings: swiftSettings),
    .testTarget(
        name: "MCPGAuditTests",
        dependencies: ["MCPGAudit", "CSodium", .product(name: "Logging", package: "swift-log")],
        swiftSettings: swiftSettings),
    .testTarget(name: "MCPGRouterTests", dependencies: ["MCPGRouter"], swiftSettings: swiftSettings),
    .testTarget(
        name: "MCPGTransportTests", dependencies: ["MCPGTransport", "MCPGRouter", "MCPGJSON"],
        swiftSettings: swiftSettings),
    .testTarget(name: "PluginKitTests", dependencies: ["PluginKit", "MCPGJSON"], swiftSettings: swiftSettings),
    // Loads the built plugin `.so` files through the real loader (signed with a throwaway key per test run).
    .testTarget(
        name: "MCPGPluginTests", dependencies: ["MCPGLoader", "MCPGJSON", "TestProcesses"], swiftSettings: swiftSettings),
]

for p in plugins {
    products.append(.library(name: p.name, type: .dynamic, targets: [p.module]))
    targets.append(
        .target(
            name: p.module, dependencies: ["PluginKit"] + p.deps,
            path: "Plugins/\(p.kind)/\(p.name)" + (p.sub.isEmpty ? "" : "/\(p.sub)"),
            swiftSettings: swiftSettings, linkerSettings: pluginLinkerSettings(p.name)))
}
// The `opa` plugin's remote mode: decisions from an OPA server's Data API over HTTP(S).
targets.append(
    .target(
        name: "OPAClient",
        dependencies: ["MCPGJSON", .product(name: "AsyncHTTPClient", package: "async-http-client")],
        path: "Plugins/policy/opa/Remote", swiftSettings: swiftSettings))
targets.append(.testTarget(name: "OPAClientTests", dependencies: ["OPAClient", "MCPGJSON", "TestProcesses"], swiftSettings: swiftSettings))

// What the batching sinks (syslog, webhook, postgres) share: a bounded record buffer, backoff, secrets.
targets.append(.target(name: "SinkBuffer", path: "Plugins/sink/Buffer", swiftSettings: swiftSettings))

// The `mcp` backend's client side: an MCP client over stdio, Streamable HTTP and the 2024-11-05 HTTP+SSE transport.
targets.append(
    .target(
        name: "MCPClient",
        dependencies: [
            "MCPGJSON",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ],
        path: "Plugins/backend/mcp/Client", swiftSettings: swiftSettings))
targets.append(.testTarget(name: "MCPClientTests", dependencies: ["MCPClient", "MCPGJSON", "TestProcesses"], swiftSettings: swiftSettings))
// Backend plugins' argument checking: a tool's inputSchema compiled at config load (the subset of JSON Schema
// that tool arguments need).
targets.append(
    .target(name: "ArgumentSchema", dependencies: ["MCPGJSON"], path: "Plugins/backend/Shared",
            swiftSettings: swiftSettings))
// The `pipeline` backend's engine: step programs compiled from config and run over a tool caller.
targets.append(
    .target(name: "PipelineEngine", dependencies: ["MCPGJSON"], path: "Plugins/backend/pipeline/Engine",
            swiftSettings: swiftSettings))
targets.append(
    .testTarget(name: "PipelineEngineTests", dependencies: ["PipelineEngine", "MCPGJSON"], swiftSettings: swiftSettings))
// What the `http`, `openapi` and `graphql` backends share: tools that are HTTP requests (URL templates,
// argument mapping, outbound auth, retries, size limits) on async-http-client.
targets.append(
    .target(
        name: "HTTPTools",
        dependencies: [
            "MCPGJSON",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ],
        path: "Plugins/backend/http/Core", swiftSettings: swiftSettings))
// The `openapi` backend: an OpenAPI 3.0/3.1 document (checked and normalized by OpenAPIKit) turned into HTTPTools
// tools. A library apart from its plugin module so that tests link it beside other plugins.
targets.append(
    .target(
        name: "OpenAPIBackendCore",
        dependencies: [
            "HTTPTools", "PluginKit", "MCPGJSON", "MCPGConfig",
            .product(name: "OpenAPIKit", package: "OpenAPIKit"),
            .product(name: "OpenAPIKit30", package: "OpenAPIKit"),
            .product(name: "OpenAPIKitCompat", package: "OpenAPIKit"),
        ],
        path: "Plugins/backend/openapi/Core", swiftSettings: swiftSettings))
// The `graphql` backend: configured or introspected GraphQL operations as HTTPTools requests.
targets.append(
    .target(
        name: "GraphQLBackendCore", dependencies: ["HTTPTools", "PluginKit", "MCPGJSON"],
        path: "Plugins/backend/graphql/Core", swiftSettings: swiftSettings))
targets.append(
    .testTarget(
        name: "HTTPToolsTests",
        dependencies: ["HTTPTools", "OpenAPIBackendCore", "GraphQLBackendCore", "PluginKit", "MCPGJSON", "TestProcesses"],
        swiftSettings: swiftSettings))
// The `oidc` identity plugin's verifier: JWTs against JWKS (OIDC discovery), signatures by swift-crypto.
targets.append(
    .target(
        name: "JWTVerifier",
        dependencies: [
            "MCPGJSON",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "_CryptoExtras", package: "swift-crypto"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
        ],
        path: "Plugins/identity/oidc/JWT", swiftSettings: swiftSettings))
targets.append(
    .testTarget(
        name: "JWTVerifierTests", dependencies: ["JWTVerifier", "OIDCPlugin", "PluginKit", "MCPGJSON", "TestProcesses"],
        swiftSettings: swiftSettings))

// X.509 client certificates for the `mtls` and `spiffe` identity plugins: PEM bundles, chain verification
// (swift-certificates), CRLs and revoked serials.
targets.append(
    .target(
        name: "ClientCertificates",
        dependencies: [
            "MCPGJSON",
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "SwiftASN1", package: "swift-asn1"),
            .product(name: "Crypto", package: "swift-crypto"),
        ],
        path: "Plugins/identity/mtls/Certificates", swiftSettings: swiftSettings))
targets.append(
    .testTarget(
        name: "ClientCertificatesTests",
        dependencies: ["ClientCertificates", "MCPGJSON", "TestProcesses"],
        swiftSettings: swiftSettings))

for e in engines {
    targets.append(
        .target(name: e.module, dependencies: ["MCPGJSON"], path: "Plugins/policy/\(e.plugin)/Engine",
                swiftSettings: swiftSettings))
    targets.append(
        .executableTarget(name: e.eval, dependencies: [.target(name: e.module), "MCPGJSON"],
                          path: "Tests/Support/\(e.eval)", swiftSettings: swiftSettings))
    targets.append(
        .testTarget(name: "\(e.module)Tests", dependencies: [.target(name: e.module), "MCPGJSON"],
                    swiftSettings: swiftSettings))
}
// bench/ledger's tool: records per second the ledger sustains alone (built in release by bench/ledger).
targets.append(
    .executableTarget(
        name: "ledger-bench",
        dependencies: ["MCPGAudit", "MCPGJSON", "CSodium", .product(name: "Logging", package: "swift-log")],
        path: "bench/ledger-bench", swiftSettings: swiftSettings))
for f in fixturePlugins {
    products.append(.library(name: f.name, type: .dynamic, targets: [f.module]))
    targets.append(
        .target(
            name: f.module, dependencies: f.deps, path: "Tests/Fixtures/Plugins/\(f.name)",
            swiftSettings: swiftSettings,
            linkerSettings: f.name == "fixture_noentry" ? [] : pluginLinkerSettings(f.name)))
}

let package = Package(
    name: "mcpg",
    platforms: [.macOS(.v15)],
    products: products,
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/mattpolzin/OpenAPIKit", from: "6.4.0"),
    ],
    targets: targets
)
