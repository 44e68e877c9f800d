import MCPGJSON
import PluginKit

/// A PluginKit plugin whose `init` always throws: the kernel must surface the message as `createFailed`.
struct CreateFails: SinkPlugin {
    static let name = "fixture_createfails"
    static let version = "0.1.0"

    init(config: NoConfig, host: Host) throws {
        throw PluginError("refusing to start: this fixture always fails")
    }

    func write(_ event: JSON) async throws {}
}

@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { PluginExport.descriptor(for: CreateFails.self) }
