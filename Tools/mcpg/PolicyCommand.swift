import ArgumentParser
import Logging
import MCPGConfig
import MCPGJSON
import MCPGLoader
import MCPGRouter

struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Ask the configured policy chain about a request, without a server.",
        subcommands: [Explain.self])

    struct Explain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the policy chain's decision on one request, and why.",
            discussion: """
                Verifies and starts only the policy plugins of the config (no server, no backend, no ledger), asks \
                them exactly as the gateway would, and prints the decision, each plugin's answer and its reasons. \
                Exits 0 when the request would be allowed, 1 when it would be denied or the config is invalid.
                """)

        @Option(help: "The config file (YAML).")
        var config: String
        @Option(help: "Principal id.")
        var principal: String
        @Option(name: .customLong("group"), help: "A group of the principal (repeatable).")
        var groups: [String] = []
        @Option(help: "The principal's tenant.")
        var tenant: String?
        @Option(name: .customLong("attribute"), help: "A principal attribute as KEY=VALUE (repeatable; VALUE is a string).")
        var attributes: [String] = []
        @Option(help: "The MCP method, e.g. tools/call, tools/list, prompts/get, resources/read.")
        var action: String = "tools/call"
        @Option(help: "The tool or prompt name, or the resource URI.")
        var resource: String
        @Option(help: "The resource kind: tool, prompt, resource or resource_template.")
        var type: String = "tool"
        @Option(help: "The backend (as named in config) that serves the resource.")
        var backend: String = ""
        @Option(help: "The tool call's arguments, as a JSON object (they appear as context.arguments).")
        var arguments: String?
        @Option(help: "More request context, as a JSON object merged over transport, peer and time.")
        var context: String?
        @Option(help: "The client address policies see as context.peer.")
        var peer: String = "127.0.0.1"
        @Flag(help: "Print the decision as JSON (the audit record's `decision` object).")
        var json = false

        func validate() throws {
            guard ["tool", "prompt", "resource", "resource_template"].contains(type) else {
                throw ValidationError("--type must be tool, prompt, resource or resource_template")
            }
            for a in attributes where !a.contains("=") {
                throw ValidationError("--attribute takes KEY=VALUE, got \"\(a)\"")
            }
            for (flag, text) in [("--arguments", arguments), ("--context", context)] {
                guard let text else { continue }
                guard let value = try? JSON.parse(Array(text.utf8)), value.objectValue != nil else {
                    throw ValidationError("\(flag) must be a JSON object")
                }
            }
        }

        func run() async throws {
            let logger = Logger(label: "mcpg", factory: { _ in SwiftLogNoOpLogHandler() })
            let loaded: GatewayConfig
            let prepared: [Boot.Prepared]
            do throws(ConfigError) {
                loaded = try ConfigLoader.load(path: config)
                prepared = try Boot.prepare(loaded, sections: [.policy], logger: logger)
            } catch {
                for d in error.diagnostics { printError(d.description) }
                throw ExitCode(1)
            }
            var stages: [Stage] = []
            for p in prepared {
                do throws(LoaderError) {
                    let instance = try PluginInstance.create(p.plugin, config: p.config, label: p.ref.path, logger: logger)
                    stages.append(Stage(plugin: p.ref.plugin, label: p.ref.path, caller: InstanceCaller(instance: instance)))
                } catch {
                    printError(p.ref.configDiagnostic(error.message).description)
                    throw ExitCode(1)
                }
            }
            let mode = PolicyMode(rawValue: loaded.policyMode.rawValue) ?? .all
            let chain = PolicyChain(stages: stages, mode: mode, timeout: .milliseconds(loaded.server.callTimeoutMs),
                                    logger: logger)

            var attrs = JSONObject()
            for a in attributes {
                let kv = a.split(separator: "=", maxSplits: 1)
                attrs[String(kv[0])] = .string(kv.count > 1 ? String(kv[1]) : "")
            }
            let who = Principal(id: principal, groups: groups, tenant: tenant, attributes: attrs)
            var ctx: JSONObject = ["transport": "cli", "peer": .string(peer), "time": .string(UTCTimestamp.now())]
            if let context, let extra = (try? JSON.parse(Array(context.utf8)))?.objectValue {
                for m in extra.members { ctx[m.key] = m.value }
            }
            if let arguments, let args = try? JSON.parse(Array(arguments.utf8)) { ctx["arguments"] = args }

            let target = PolicyTarget(action: action, type: type, name: resource, backend: backend)
            let verdict = await chain.decide(who, [target], context: ctx)[0]
            if json {
                print(verdict.auditJSON(mode: mode).text)
            } else {
                print("decision: \(verdict.allow ? "allow" : "deny") (chains.policy: \(mode.rawValue))")
                print("request:  \(principal) \(action) \(type) \"\(resource)\"" + (backend.isEmpty ? "" : " on \(backend)"))
                for a in verdict.answers {
                    print("  \(a.plugin): \(a.effect)" + (a.reasons.isEmpty ? "" : ": " + a.reasons.joined(separator: "; ")))
                }
                let asked = Set(verdict.answers.map(\.plugin))
                for s in stages where !asked.contains(s.label) {
                    print("  \(s.label): not asked (already decided)")
                }
                if verdict.answers.allSatisfy({ $0.effect == "abstain" }) {
                    print("  no plugin allowed or denied: default deny")
                }
            }
            if !verdict.allow { throw ExitCode(1) }
        }
    }
}
