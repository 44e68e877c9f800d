import CMCPGPlugin

// A raw-ABI descriptor that claims plugin ABI 2.0. The loader must refuse it with `abiMismatch` before it reads
// anything past `struct_size`.

private func cString(_ s: StaticString) -> UnsafePointer<CChar> {
    UnsafeRawPointer(s.utf8Start).assumingMemoryBound(to: CChar.self)
}

// Written once at first use (Swift globals initialize lazily and thread-safely) and never changed after.
nonisolated(unsafe) private let descriptor: UnsafeMutablePointer<mcpg_plugin> = {
    let d = UnsafeMutablePointer<mcpg_plugin>.allocate(capacity: 1)
    d.initialize(
        to: mcpg_plugin(
            magic: MCPG_PLUGIN_MAGIC, abi_version: 2 << 16, struct_size: UInt32(MemoryLayout<mcpg_plugin>.size),
            kind: MCPG_KIND_SINK.rawValue, name: cString("fixture_wrongabi"), version: cString("2.0.0"),
            config_schema: cString("{}"),
            create: { _, _, _, _ in Int32(MCPG_STATUS_ERROR.rawValue) },
            destroy: { _ in },
            handle: { _, _, _, _, _ in },
            cancel: nil))
    return d
}()

/// The entry point, returning a descriptor for ABI 2.
@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { UnsafeRawPointer(descriptor) }
