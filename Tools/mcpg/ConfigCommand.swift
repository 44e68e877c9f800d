import ArgumentParser
import Logging
import MCPGConfig
import MCPGTransport

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Check a configuration file, or print the configuration schema.",
        subcommands: [Validate.self, Schema.self, Reference.self])

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a config file without starting the gateway.",
            discussion: """
                Reads the YAML, checks every key against the schema, verifies the signature of every plugin it \
                names, checks each plugin's config block against the schema that plugin publishes, and loads the \
                TLS certificate, key and client CA of server.http.tls. Prints \
                every problem as FILE:LINE:COL: error: MESSAGE and exits 1, or prints "FILE: ok" and exits 0. \
                Nothing is started and no plugin instance is created, unless --catalog is given: then the \
                backends are started, listed and stopped, and the merged catalog is checked as boot would (a \
                tool, prompt, resource or template two backends serve is an error at the later backend's entry; a \
                backend that cannot be listed is a warning, or an error with `unavailable: refuse`).
                """)

        @Argument(help: "The config file (YAML).")
        var file: String

        @Flag(name: .long, help: "Also start the backends and check the merged catalog (name collisions).")
        var catalog = false

        func run() async throws {
            let quiet = Logger(label: "mcpg", factory: { _ in SwiftLogNoOpLogHandler() })
            do throws(ConfigError) {
                let config = try ConfigLoader.load(path: file)
                _ = try Boot.prepare(config, logger: quiet)
                _ = try loadTLS(config, logger: quiet)
                if catalog {
                    for w in try await Boot.checkCatalog(config, logger: quiet) { printError(w) }
                }
                print("\(file): ok")
            } catch {
                for d in error.diagnostics { printError(d.description) }
                throw ExitCode(1)
            }
        }
    }

    struct Schema: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the config file's JSON Schema (2020-12), for editors and CI checks.")
        func run() { print(ConfigSchema.jsonSchema.text) }
    }

    struct Reference: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the config reference as Markdown (the source of docs/config.md).")
        func run() { print(ConfigSchema.markdownReference(), terminator: "") }
    }
}
