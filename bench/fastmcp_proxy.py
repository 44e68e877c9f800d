"""bench/fastmcp_proxy.py: the FastMCP proxy peer of bench/run.

Usage: python fastmcp_proxy.py UPSTREAM_URL PORT

Serves Streamable HTTP on 127.0.0.1:PORT/mcp, proxying every request to the MCP server at UPSTREAM_URL with
FastMCP's own proxy (`fastmcp.server.create_proxy`, the documented way; FastMCP.as_proxy in older releases) in its
default configuration. Run by bench/run with the `fastmcp` venv of bench/.venv-peers.
"""

import sys

from fastmcp.server import create_proxy


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: fastmcp_proxy.py UPSTREAM_URL PORT")
    upstream, port = sys.argv[1], int(sys.argv[2])
    proxy = create_proxy(upstream, name="bench-fastmcp-proxy")
    proxy.run(transport="http", host="127.0.0.1", port=port, path="/mcp", show_banner=False, log_level="warning")


if __name__ == "__main__":
    main()
