// swift-tools-version: 6.0
// A tiny MCP client on the official Swift SDK, used by the black-box tests (Tests/Blackbox/test_swift_client.py)
// to check that the mcpg gateway interoperates with it over Streamable HTTP. Separate from the root package so
// the gateway build never depends on the SDK.
import PackageDescription

let package = Package(
    name: "mcpg-swift-client",
    platforms: [.macOS("13.0")],
    dependencies: [
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk.git", from: "0.12.1")
    ],
    targets: [
        .executableTarget(
            name: "mcpg-swift-client",
            dependencies: [.product(name: "MCP", package: "swift-sdk")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        )
    ]
)
