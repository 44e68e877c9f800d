/// A shared library that is not an mcpg plugin: it exports a C symbol, but no `mcpg_plugin_v1`.
/// The loader must refuse it with `noEntrySymbol`.
@_cdecl("mcpg_fixture_not_an_entry")
public func notAnEntry() -> Int32 { 42 }
