"""A few operations of the OpenAPI fixtures (Tests/Fixtures/openapi) served on 127.0.0.1 for the `openapi` backend's
tests (stdlib only). Prints its port (`--port N`, default any free one). Petstore under /v1 (its document's server path), Airflow 2 pools under
/api/v1, and /spec.yaml: the Petstore document itself (for spec_url).
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, unquote

FIXTURES = Path(__file__).resolve().parents[1] / "Fixtures" / "openapi"
LOCK = threading.Lock()
PETS = [{"id": 1, "name": "Rex", "tag": "dog"}, {"id": 2, "name": "Tom", "tag": "cat"}, {"id": 3, "name": "Nemo"}]
STATE = {"created": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body=None, content_type="application/json"):
        data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        url = urlsplit(self.path)
        args = parse_qs(url.query)
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        path = url.path
        if path == "/spec.yaml":
            return self.send(200, (FIXTURES / "petstore.yaml").read_bytes(), "application/yaml")
        if path == "/v1/pets" and self.command == "GET":
            limit = int(args.get("limit", ["100"])[0])
            return self.send(200, PETS[:limit])
        if path == "/v1/pets" and self.command == "POST":
            with LOCK:
                STATE["created"] += 1
            return self.send(201)
        if path.startswith("/v1/pets/") and self.command == "GET":
            pid = unquote(path[len("/v1/pets/"):])
            found = [p for p in PETS if str(p["id"]) == pid]
            if not found:
                return self.send(404, {"code": 404, "message": "no pet " + pid})
            return self.send(200, found)
        if path.startswith("/api/v1/pools/"):
            name = unquote(path[len("/api/v1/pools/"):])
            if self.command == "GET":
                return self.send(200, {"name": name, "slots": 4, "occupied_slots": 1, "running_slots": 1,
                                       "queued_slots": 0, "open_slots": 3, "scheduled_slots": 0,
                                       "deferred_slots": 0, "description": None, "include_deferred": False})
            if self.command == "PATCH":
                body = json.loads(raw or b"{}")
                return self.send(200, {"name": name, "slots": body.get("slots", 0), "occupied_slots": 0,
                                       "description": body.get("description"), "include_deferred": False,
                                       "echo_query": url.query})
        if path == "/stats":
            return self.send(200, dict(STATE))
        return self.send(404, {"code": 404, "message": "no route " + path})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


def main():
    port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
