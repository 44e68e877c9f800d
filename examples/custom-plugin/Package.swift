// swift-tools-version:6.0
// A user's own mcpg plugin, built outside the mcpg package: one backend plugin, `hello`.
//
// Build it the way mcpg's own plugins are built (see README.md):
//     swift build -c release --static-swift-stdlib --product hello
// The result, `.build/release/libhello.so`, carries its own static Swift runtime and exports only
// `mcpg_plugin_v1`, so it loads into a release `mcpg` built with any Swift 6 toolchain.
import PackageDescription

/// The mcpg checkout this example lives in. A plugin kept elsewhere points at its own mcpg checkout.
let mcpg = Context.packageDirectory + "/../.."
/// SwiftPM names a path dependency after its folder (`mcpg` in a plain clone, but any name works here).
let mcpgPackage = Context.packageDirectory.split(separator: "/").dropLast(2).last.map(String.init) ?? "mcpg"

/// The linker flags mcpg's `pluginLinkerSettings` gives its shipped plugins, applied unconditionally: a static
/// Swift runtime inside the `.so`, a soname, a version script whose only global symbol is the entry point,
/// dead-code removal, and `-z defs` so a missing symbol fails the link rather than the `dlopen`.
let pluginLinkerFlags: [String] = [
    "-static-stdlib",
    "-Xlinker", "-soname=libhello.so",
    "-Xlinker", "--version-script=\(mcpg)/PluginABI/exports.map",
    "-Xlinker", "--gc-sections",
    "-Xlinker", "-z", "-Xlinker", "defs",
]

let package = Package(
    name: "custom-plugin",
    products: [
        .library(name: "hello", type: .dynamic, targets: ["HelloPlugin"])
    ],
    dependencies: [
        .package(path: "../..")
    ],
    targets: [
        .target(
            name: "HelloPlugin",
            dependencies: [.product(name: "PluginKit", package: mcpgPackage)],
            path: "Sources/HelloPlugin",
            swiftSettings: [.swiftLanguageMode(.v6)],
            linkerSettings: [.unsafeFlags(pluginLinkerFlags)]
        )
    ]
)
