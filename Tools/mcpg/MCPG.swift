import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

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
            Serve.self, Init.self, ConfigCommand.self, PluginCommand.self, PolicyCommand.self, AuditCommand.self,
            Version.self,
        ]
    )

    /// Runs the command; usage errors exit 2 as DESIGN.md §4 says (ArgumentParser's own default is 64).
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                printError(fullMessage(for: error))
                Glibc.exit(2)
            }
            Self.exit(withError: error)
        }
    }
}
