import ArgumentParser

/// mcpg's version, shown by `mcpg version` and in `serverInfo`.
let mcpgVersion = "0.1.0"

/// The `mcpg` command line (DESIGN.md §4). Errors go to stderr; exit codes: 0 ok, 1 check failed or bad input,
/// 2 usage.
@main
struct MCPG: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcpg",
        abstract: "A Model Context Protocol gateway: one MCP endpoint in front of many backends, with identity, "
            + "policy and a tamper-evident audit ledger on every call.",
        discussion: """
            Start with `mcpg init ./gw` to write a working configuration, then `mcpg serve --config ./gw/mcpg.yaml`.
            Point an MCP client at http://127.0.0.1:8080/mcp.
            """,
        subcommands: [
            Serve.self, Init.self, ConfigCommand.self, PluginCommand.self, AuditCommand.self, Version.self,
        ]
    )
}
