import GraphQLBackendCore

@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { GraphQLPluginExport.descriptor() }
