import PluginKit

// Placeholder until the `mcp` backend lands.
struct MCPBackend {}
