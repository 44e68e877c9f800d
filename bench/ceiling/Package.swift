// swift-tools-version:6.0
// The throughput ceiling for bench/run: a bare SwiftNIO HTTP/1.1 server that answers every POST with the same
// canned tools/call response the mock backend's echo tool gives through mcpg. No parsing, no routing, no
// plugins, no audit: what the machine and NIO can do, measured with the same wrk script as mcpg.
import PackageDescription

let package = Package(
    name: "ceiling",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2")
    ],
    targets: [
        .executableTarget(
            name: "ceiling",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Sources/ceiling",
            swiftSettings: [.swiftLanguageMode(.v6)]
        )
    ]
)
