// The MCP client the `mcp` backend is built on (placeholder until it lands).
