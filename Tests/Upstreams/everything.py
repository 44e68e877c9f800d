"""An upstream MCP server that serves a bit of everything a gateway relays, on the official Python SDK.

    python everything.py stdio [--name X] [--scheme S]
    python everything.py http  [--port N] [--name X] [--session-idle-timeout S] [--no-get-stream]
                                                         # Streamable HTTP at /mcp
    python everything.py sse   [--port N] [--name X]     # the 2024-11-05 HTTP+SSE transport: GET /sse, POST /messages/

With --port 0 (the default) the server picks a free port. The HTTP modes print `PORT <n>` on stdout once they listen,
so a test can start them and read where they are. `--name X` goes into `echo` results and serverInfo, so two
instances can be told apart. `--page-size N` (default 5) sets how many items each list page holds, so a full
list needs several pages.

What it serves (wire shapes, handlers return plain JSON):

tools
    echo {message}                  text: the message (prefixed "X: " with --name X)
    add {a, b}                      outputSchema + structuredContent {"sum": a+b} (TOOL-7, TOOL-8)
    decorated                       annotations and icons on the Tool object (TOOL-9, BASE-10)
    slow {steps, delay_ms}          one notifications/progress per step when the call asks for progress (PROG-1/2)
    wait_for_cancel                 reports progress 0, then sleeps until cancelled; the cancellation is recorded (CANC-1)
    cancellations                   the ids of calls cancelled so far, as structuredContent {"cancelled": [...]}
    sample {prompt}                 sends sampling/createMessage to the client and returns its text (SAMP)
    elicit {message}                sends elicitation/create (form) and returns the client's answer (ELIC)
    roots                           sends roots/list and returns the roots (ROOTS)
    log {level, message}            sends notifications/message on the call's stream; result names the level
                                    set by logging/setLevel (LOG-1)
    env                             the environment variables the process sees, as structuredContent
    add_tool {name}                 adds a tool at runtime and sends notifications/tools/list_changed (TOOL-1)
    touch {uri}                     changes a resource; subscribers get notifications/resources/updated (RES-6)
    crash                           exits the process at once (status 3)
    headers                         the HTTP request headers of the call, as structuredContent (empty on stdio)
    meta                            the call's params._meta as received, as structuredContent {"meta": {...}}
    filler_00 … filler_11           plain tools, so tools/list needs several pages (PAGE-1)
prompts
    greet {name (required), style}  a user message; `style` has completions (COMP-1)
    plain                           no arguments
resources
    mem://hello (text), mem://counter (text; `touch` increments it), mem://blob (base64)
    template mem://items/{id}       read any id; `id` has completions
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import sys
import warnings
from typing import Any

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.lowlevel.server import NotificationOptions
from mcp.shared.message import ServerMessageMetadata

# The SDK flags logging, sampling and roots as deprecated for the 2026 protocol; this server speaks the 2025 one.
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError  # noqa: E402

warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

NAME = "everything"
# `--scheme X` serves the resources as X://…, so two instances behind one gateway have distinct URIs.
SCHEME = "mem"
PAGE_SIZE = 5

# State shared by every session of this process.
CANCELLED: list[Any] = []
EXTRA_TOOLS: list[dict[str, Any]] = []
COUNTER = {"value": 0}
SUBSCRIBED: set[str] = set()
LOG_LEVEL = {"value": None}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool(name: str, description: str, properties: dict[str, Any] | None = None,
         required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties or {}}
    if required:
        schema["required"] = required
    return {"name": name, "description": description, "inputSchema": schema, **extra}


TOOLS: list[dict[str, Any]] = [
    tool("echo", "Returns the message.", {"message": {"type": "string"}}, ["message"]),
    tool("add", "Adds two numbers.", {"a": {"type": "number"}, "b": {"type": "number"}}, ["a", "b"],
         outputSchema={"type": "object", "properties": {"sum": {"type": "number"}}, "required": ["sum"]}),
    tool("decorated", "A tool with annotations and icons.",
         title="Decorated tool",
         annotations={"title": "Decorated", "readOnlyHint": True, "destructiveHint": False,
                      "idempotentHint": True, "openWorldHint": False},
         icons=[{"src": "data:image/png;base64,iVBORw0KGgo=", "mimeType": "image/png", "sizes": ["48x48"]}]),
    tool("slow", "Sends progress notifications, then answers.",
         {"steps": {"type": "integer"}, "delay_ms": {"type": "integer"}}),
    tool("wait_for_cancel", "Sleeps until the call is cancelled."),
    tool("cancellations", "Request ids of the calls cancelled so far."),
    tool("sample", "Asks the client to sample a message.", {"prompt": {"type": "string"}}),
    tool("elicit", "Asks the client for input (form mode).", {"message": {"type": "string"}}),
    tool("roots", "Asks the client for its roots."),
    tool("log", "Sends a log message on the call's stream.",
         {"level": {"type": "string"}, "message": {"type": "string"}}),
    tool("env", "The environment variables this process sees."),
    tool("add_tool", "Adds a tool and announces it with notifications/tools/list_changed.",
         {"name": {"type": "string"}}, ["name"]),
    tool("touch", "Changes a resource; subscribers are told.", {"uri": {"type": "string"}}),
    tool("crash", "Exits the server process at once."),
    tool("headers", "The HTTP request headers of this call (empty on stdio)."),
    tool("meta", "The call's params._meta as received."),
] + [tool(f"filler_{i:02d}", f"Filler tool {i}.") for i in range(12)]

PROMPTS: list[dict[str, Any]] = [
    {"name": "greet", "title": "Greeting", "description": "Greets someone.",
     "arguments": [{"name": "name", "description": "Who to greet.", "required": True},
                   {"name": "style", "description": "formal, friendly or funny."}]},
    {"name": "plain", "description": "A prompt without arguments."},
]
STYLES = ["formal", "friendly", "funny"]

RESOURCES: list[dict[str, Any]] = [
    {"uri": "mem://hello", "name": "hello", "mimeType": "text/plain", "description": "A greeting."},
    {"uri": "mem://counter", "name": "counter", "mimeType": "text/plain", "description": "Incremented by touch."},
    {"uri": "mem://blob", "name": "blob", "mimeType": "application/octet-stream"},
]
TEMPLATES: list[dict[str, Any]] = [
    {"uriTemplate": "mem://items/{id}", "name": "item", "mimeType": "text/plain", "description": "An item by id."},
]


def page(items: list[dict[str, Any]], key: str, params: Any) -> dict[str, Any]:
    """One page of `items`; the cursor is the next index as a string (opaque to clients)."""
    cursor = getattr(params, "cursor", None) if params is not None else None
    start = int(cursor) if cursor else 0
    result: dict[str, Any] = {key: items[start:start + PAGE_SIZE]}
    if start + PAGE_SIZE < len(items):
        result["nextCursor"] = str(start + PAGE_SIZE)
    return result


def related(ctx: Any) -> ServerMessageMetadata:
    """Sends a server→client request on the stream of the call that caused it (HTTP-6)."""
    return ServerMessageMetadata(related_request_id=ctx.request_id)


async def list_tools(ctx: Any, params: Any) -> dict[str, Any]:
    return page(TOOLS + EXTRA_TOOLS, "tools", params)


async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> dict[str, Any]:
    args = params.arguments or {}
    name = params.name
    session = ctx.session
    if name == "echo":
        message = str(args.get("message", ""))
        return {"content": [text(f"{NAME}: {message}" if NAME != "everything" else message)]}
    if name == "add":
        total = args["a"] + args["b"]
        return {"content": [text(json.dumps({"sum": total}))], "structuredContent": {"sum": total}}
    if name == "decorated":
        return {"content": [text("decorated")]}
    if name == "slow":
        steps = int(args.get("steps", 3))
        for i in range(steps):
            await anyio.sleep(int(args.get("delay_ms", 10)) / 1000)
            await session.report_progress(i + 1, steps, f"step {i + 1}")
        return {"content": [text(f"done after {steps} steps")]}
    if name == "wait_for_cancel":
        # Progress 0 says the wait has begun (for callers that asked for progress).
        await session.report_progress(0, None, "waiting")
        try:
            await anyio.sleep(3600)
        except anyio.get_cancelled_exc_class():
            CANCELLED.append(ctx.request_id)
            raise
        return {"content": [text("not cancelled")]}
    if name == "cancellations":
        return {"content": [text(json.dumps(CANCELLED))], "structuredContent": {"cancelled": CANCELLED}}
    if name == "sample":
        result = await session.create_message(
            [types.SamplingMessage(role="user", content=types.TextContent(text=str(args.get("prompt", "hi"))))],
            max_tokens=50, related_request_id=ctx.request_id)
        content = result.content
        answer = getattr(content, "text", None) or json.dumps(result.model_dump(mode="json", by_alias=True))
        return {"content": [text(f"sampled: {answer}")]}
    if name == "elicit":
        result = await session.elicit_form(
            str(args.get("message", "Your name?")),
            {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
            related_request_id=ctx.request_id)
        answer = {"action": result.action, "content": result.content}
        return {"content": [text(json.dumps(answer))], "structuredContent": answer}
    if name == "roots":
        result = await session.send_request(types.ListRootsRequest(), types.ListRootsResult, metadata=related(ctx))
        roots = [r.model_dump(mode="json", by_alias=True, exclude_none=True) for r in result.roots]
        return {"content": [text(json.dumps(roots))], "structuredContent": {"roots": roots}}
    if name == "log":
        level = str(args.get("level", "info"))
        await session.send_log_message(level, str(args.get("message", "hello")), logger="everything",
                                       related_request_id=ctx.request_id)
        return {"content": [text(f"logged; level set by client: {LOG_LEVEL['value']}")],
                "structuredContent": {"setLevel": LOG_LEVEL["value"]}}
    if name == "env":
        env = dict(os.environ)
        return {"content": [text(json.dumps(env))], "structuredContent": {"env": env}}
    if name == "add_tool":
        EXTRA_TOOLS.append(tool(str(args["name"]), "Added at runtime."))
        await session.send_tool_list_changed()
        return {"content": [text(f"added {args['name']}")]}
    if name == "touch":
        uri = str(args.get("uri", f"{SCHEME}://counter"))
        COUNTER["value"] += 1
        if uri in SUBSCRIBED:
            await session.send_resource_updated(uri)
        return {"content": [text(f"touched {uri}")]}
    if name == "headers":
        request = getattr(ctx, "request", None)
        headers = {k.lower(): v for k, v in request.headers.items()} if request is not None else {}
        return {"content": [text(json.dumps(headers))], "structuredContent": {"headers": headers}}
    if name == "meta":
        meta = params.meta
        meta = dict(meta) if isinstance(meta, dict) else (meta.model_dump(mode="json", by_alias=True) if meta else {})
        return {"content": [text(json.dumps(meta))], "structuredContent": {"meta": meta}}
    if name == "crash":
        sys.stderr.write("crashing on request\n")
        sys.stderr.flush()
        os._exit(3)
    if name.startswith("filler_") or any(t["name"] == name for t in EXTRA_TOOLS):
        return {"content": [text(name)]}
    raise_invalid(f"Unknown tool: {name}")


def raise_invalid(message: str) -> Any:
    raise MCPError(code=types.INVALID_PARAMS, message=message)


async def list_prompts(ctx: Any, params: Any) -> dict[str, Any]:
    return page(PROMPTS, "prompts", params)


async def get_prompt(ctx: Any, params: types.GetPromptRequestParams) -> dict[str, Any]:
    args = params.arguments or {}
    if params.name == "greet":
        if "name" not in args:
            raise_invalid("Missing required argument: name")
        style = args.get("style", "friendly")
        return {"description": "A greeting.",
                "messages": [{"role": "user", "content": text(f"Greet {args['name']} in a {style} way.")}]}
    if params.name == "plain":
        return {"messages": [{"role": "user", "content": text("plain prompt")}]}
    raise_invalid(f"Unknown prompt: {params.name}")


async def list_resources(ctx: Any, params: Any) -> dict[str, Any]:
    return page(RESOURCES, "resources", params)


async def list_templates(ctx: Any, params: Any) -> dict[str, Any]:
    return page(TEMPLATES, "resourceTemplates", params)


def canonical(uri: str) -> str:
    """The URI with this instance's scheme read as `mem` (the handlers match mem:// URIs)."""
    return "mem://" + uri[len(SCHEME) + 3:] if uri.startswith(f"{SCHEME}://") else uri


async def read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> dict[str, Any]:
    uri = str(params.uri)
    mem = canonical(uri)
    if mem == "mem://hello":
        return {"contents": [{"uri": uri, "mimeType": "text/plain", "text": "Hello, world"}]}
    if mem == "mem://counter":
        return {"contents": [{"uri": uri, "mimeType": "text/plain", "text": str(COUNTER["value"])}]}
    if mem == "mem://blob":
        blob = base64.b64encode(bytes(range(8))).decode()
        return {"contents": [{"uri": uri, "mimeType": "application/octet-stream", "blob": blob}]}
    if mem.startswith("mem://items/"):
        return {"contents": [{"uri": uri, "mimeType": "text/plain", "text": f"item {uri.rsplit('/', 1)[1]}"}]}
    raise MCPError(code=-32002, message=f"Resource not found: {uri}")


async def complete(ctx: Any, params: types.CompleteRequestParams) -> dict[str, Any]:
    ref, arg = params.ref, params.argument
    if ref.type == "ref/prompt" and ref.name == "greet" and arg.name == "style":
        values = [s for s in STYLES if s.startswith(arg.value)]
    elif ref.type == "ref/resource" and canonical(ref.uri) == "mem://items/{id}" and arg.name == "id":
        values = [str(i) for i in range(1, 4) if str(i).startswith(arg.value)]
    else:
        values = []
    return {"completion": {"values": values, "total": len(values), "hasMore": False}}


async def subscribe(ctx: Any, params: types.SubscribeRequestParams) -> dict[str, Any]:
    SUBSCRIBED.add(str(params.uri))
    return {}


async def unsubscribe(ctx: Any, params: types.UnsubscribeRequestParams) -> dict[str, Any]:
    SUBSCRIBED.discard(str(params.uri))
    return {}


async def set_level(ctx: Any, params: types.SetLevelRequestParams) -> dict[str, Any]:
    LOG_LEVEL["value"] = params.level
    return {}


def build_server() -> Server:
    return Server(
        NAME, version="1.0.0",
        on_list_tools=list_tools, on_call_tool=call_tool,
        on_list_prompts=list_prompts, on_get_prompt=get_prompt,
        on_list_resources=list_resources, on_list_resource_templates=list_templates,
        on_read_resource=read_resource, on_completion=complete,
        on_subscribe_resource=subscribe, on_unsubscribe_resource=unsubscribe,
        on_set_logging_level=set_level,
    )


OPTIONS = NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True)


def listen(port: int) -> socket.socket:
    """Binds 127.0.0.1:port (0: any free port) and announces the port on stdout."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    return sock


def serve_asgi(app: Any, port: int) -> None:
    import uvicorn
    sock = listen(port)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


def run_stdio(server: Server) -> None:
    from mcp.server.stdio import stdio_server

    async def main() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options(OPTIONS))

    anyio.run(main)


def run_http(server: Server, port: int, idle_timeout: float | None, get_stream: bool) -> None:
    inner = server.streamable_http_app(streamable_http_path="/mcp", host="127.0.0.1",
                                       session_idle_timeout=idle_timeout)
    # Capabilities come from create_initialization_options(); the HTTP manager calls it without arguments.
    original = server.create_initialization_options
    server.create_initialization_options = lambda *a, **k: original(OPTIONS)  # type: ignore[method-assign]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        # --no-get-stream: answer GET with 405, as servers without a standalone stream do (HTTP-9).
        if not get_stream and scope["type"] == "http" and scope["method"] == "GET":
            from starlette.responses import Response
            await Response(status_code=405, headers={"Allow": "POST, DELETE"})(scope, receive, send)
            return
        await inner(scope, receive, send)

    serve_asgi(app, port)


def run_sse(server: Server, port: int) -> None:
    from mcp.server.sse import SseServerTransport
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Mount, Route

    transport = SseServerTransport("/messages/")

    async def handle_sse(request: Any) -> Response:
        async with transport.connect_sse(request.scope, request.receive, request._send) as (read, write):
            await server.run(read, write, server.create_initialization_options(OPTIONS))
        return Response()

    app = Starlette(routes=[Route("/sse", endpoint=handle_sse, methods=["GET"]),
                            Mount("/messages/", app=transport.handle_post_message)])
    serve_asgi(app, port)


def main() -> None:
    global NAME, PAGE_SIZE, SCHEME
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("transport", choices=["stdio", "http", "sse"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--name", default="everything")
    parser.add_argument("--page-size", type=int, default=5)
    parser.add_argument("--scheme", default="mem", help="URI scheme of the resources (default mem)")
    parser.add_argument("--session-idle-timeout", type=float, default=None,
                        help="http: forget a session after this many idle seconds (then its id answers 404)")
    parser.add_argument("--no-get-stream", action="store_true", help="http: answer GET with 405")
    args = parser.parse_args()
    NAME, PAGE_SIZE, SCHEME = args.name, max(1, args.page_size), args.scheme
    for r in RESOURCES:
        r["uri"] = f"{SCHEME}://" + r["uri"][len("mem://"):]
    for t in TEMPLATES:
        t["uriTemplate"] = f"{SCHEME}://" + t["uriTemplate"][len("mem://"):]
    server = build_server()
    if args.transport == "stdio":
        run_stdio(server)
    elif args.transport == "http":
        run_http(server, args.port, args.session_idle_timeout, not args.no_get_stream)
    else:
        run_sse(server, args.port)


if __name__ == "__main__":
    main()
