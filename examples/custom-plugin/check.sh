#!/usr/bin/env bash
# Proves that a plugin built outside the mcpg package loads into a release mcpg:
# builds `hello` in this folder, signs it with a throwaway key, serves it behind `dist/bin/mcpg serve` on a
# free loopback port and calls its tool over Streamable HTTP with curl
# (initialize -> Mcp-Session-Id -> notifications/initialized -> tools/list -> tools/call).
# Prints `custom plugin: ok` and exits 0, or names what failed and exits 1.
#
# Needs: `make build` done (dist/bin/mcpg, dist/lib/mcpg/plugins, dist/keys/dev-plugin.pub), swift, curl,
# python3, strip. Environment: MCPG (default <repo>/dist/bin/mcpg), DIST (default <repo>/dist),
# KEEP_TMP=1 keeps the temporary folder for inspection.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
dist="${DIST:-$repo/dist}"
mcpg="${MCPG:-$dist/bin/mcpg}"
shipped="$dist/lib/mcpg/plugins"

fail() {
    echo "custom plugin: FAILED: $*" >&2
    exit 1
}

for tool in swift curl python3 strip; do
    command -v "$tool" >/dev/null || fail "$tool not found on PATH"
done
[ -x "$mcpg" ] || fail "$mcpg not found: run \`make build\` first"
for p in anonymous rules; do
    [ -f "$shipped/$p.so" ] && [ -f "$shipped/$p.so.minisig" ] || fail "$shipped/$p.so(.minisig) missing: run \`make build\`"
done
[ -f "$dist/keys/dev-plugin.pub" ] || fail "$dist/keys/dev-plugin.pub missing: run \`make build\`"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/mcpg-custom-plugin.XXXXXX")"
gateway_pid=""
cleanup() {
    if [ -n "$gateway_pid" ] && kill -0 "$gateway_pid" 2>/dev/null; then
        kill -TERM "$gateway_pid" 2>/dev/null || true
        wait "$gateway_pid" 2>/dev/null || true
    fi
    if [ "${KEEP_TMP:-0}" = 1 ]; then echo "custom plugin: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

# 1. Build, exactly as the README says.
echo "custom plugin: building (swift build -c release --static-swift-stdlib --product hello)"
(cd "$here" && swift build -c release --static-swift-stdlib --product hello >"$tmp/build.log" 2>&1) \
    || { tail -n 40 "$tmp/build.log" >&2; fail "swift build failed (log above)"; }
built="$here/.build/release/libhello.so"
[ -f "$built" ] || fail "build succeeded but $built is missing"

# 2. Plugin dir: the shipped plugins this config uses (signed with the dev key) and ours, stripped and signed
#    with a throwaway key. The gateway trusts both keys.
mkdir -p "$tmp/plugins" "$tmp/keys" "$tmp/data"
for p in anonymous rules; do cp "$shipped/$p.so" "$shipped/$p.so.minisig" "$tmp/plugins/"; done
strip --strip-unneeded -o "$tmp/plugins/hello.so" "$built"
"$mcpg" plugin keygen --out "$tmp/keys/custom" >"$tmp/keygen.log" 2>&1 \
    || { cat "$tmp/keygen.log" >&2; fail "mcpg plugin keygen failed"; }
"$mcpg" plugin keygen --out "$tmp/keys/audit" >>"$tmp/keygen.log" 2>&1 \
    || { cat "$tmp/keygen.log" >&2; fail "mcpg plugin keygen (audit key) failed"; }
"$mcpg" plugin sign "$tmp/plugins/hello.so" --key "$tmp/keys/custom.key" >"$tmp/sign.log" 2>&1 \
    || { cat "$tmp/sign.log" >&2; fail "mcpg plugin sign failed"; }
[ -f "$tmp/plugins/hello.so.minisig" ] || fail "mcpg plugin sign wrote no hello.so.minisig"
"$mcpg" plugin verify "$tmp/plugins/hello.so" --trusted-key "$tmp/keys/custom.pub" >"$tmp/verify.log" 2>&1 \
    || { cat "$tmp/verify.log" >&2; fail "mcpg plugin verify refused the freshly signed plugin"; }
size_unstripped=$(stat -c %s "$built")
size_stripped=$(stat -c %s "$tmp/plugins/hello.so")

# 3. Config: free loopback port, anonymous identity, allow-all rules, the custom plugin as the only backend.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
cat >"$tmp/mcpg.yaml" <<EOF
mcpg: 1
server:
  http: { listen: "127.0.0.1:$port", path: /mcp }
log: { level: debug, format: json }
plugins:
  dir: $tmp/plugins
  trusted_keys: [$dist/keys/dev-plugin.pub, $tmp/keys/custom.pub]
identity:
  - plugin: anonymous
policy:
  - plugin: rules
    config:
      rules:
        - { id: allow-all, effect: allow }
backends:
  hello: { plugin: hello }
audit:
  ledger: $tmp/data/audit.ledger
  signing_key: $tmp/keys/audit.key
EOF
"$mcpg" config validate "$tmp/mcpg.yaml" >"$tmp/validate.log" 2>&1 \
    || { cat "$tmp/validate.log" >&2; fail "mcpg config validate rejected the generated config"; }

# 4. Serve, and wait until the port answers.
"$mcpg" serve --config "$tmp/mcpg.yaml" >"$tmp/mcpg.out" 2>"$tmp/mcpg.log" &
gateway_pid=$!
url="http://127.0.0.1:$port/mcp"
for _ in $(seq 1 100); do
    if ! kill -0 "$gateway_pid" 2>/dev/null; then
        cat "$tmp/mcpg.log" >&2
        gateway_pid=""
        fail "mcpg serve exited during startup (log above)"
    fi
    curl -s -o /dev/null --max-time 1 "$url" && break
    sleep 0.1
done
curl -s -o /dev/null --max-time 1 "$url" || { cat "$tmp/mcpg.log" >&2; fail "mcpg did not listen on $url within 10 s"; }

# 5. The MCP conversation. Answers may come as JSON or as one SSE event: `rpc_result` handles both.
post() { # post OUT_PREFIX BODY [SESSION]
    local extra=()
    [ -n "${3:-}" ] && extra=(-H "Mcp-Session-Id: $3" -H "MCP-Protocol-Version: 2025-06-18")
    curl -sS --max-time 10 -o "$tmp/$1.body" -D "$tmp/$1.head" -w '%{http_code}' \
        -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
        "${extra[@]}" --data-binary "$2" "$url"
}
rpc_result() { # rpc_result FILE PYTHON_EXPR_ON_result  -> prints the expression, fails on a JSON-RPC error
    python3 - "$1" "$2" <<'PY'
import json, sys
raw = open(sys.argv[1], encoding="utf-8").read()
if raw.lstrip().startswith(("event:", "data:", "id:", ":")):
    datas = [l[5:].strip() for l in raw.splitlines() if l.startswith("data:")]
    frames = [json.loads(d) for d in datas if d]
    raw_frame = next((f for f in frames if "result" in f or "error" in f), None)
else:
    raw_frame = json.loads(raw)
if raw_frame is None or "result" not in raw_frame:
    sys.exit("no result in answer: " + raw[:300])
result = raw_frame["result"]
print(eval(sys.argv[2]))
PY
}

code=$(post init '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"custom-plugin-check","version":"1.0"}}}') \
    || fail "initialize: curl failed"
[ "$code" = 200 ] || fail "initialize: HTTP $code: $(head -c 300 "$tmp/init.body")"
session=$(tr -d '\r' <"$tmp/init.head" | awk -F': ' 'tolower($1)=="mcp-session-id" {print $2}')
[ -n "$session" ] || fail "initialize: no Mcp-Session-Id header in the answer"
rpc_result "$tmp/init.body" 'result["protocolVersion"]' >/dev/null || fail "initialize: bad answer"

code=$(post initialized '{"jsonrpc":"2.0","method":"notifications/initialized"}' "$session") \
    || fail "notifications/initialized: curl failed"
[ "$code" = 202 ] || fail "notifications/initialized: expected HTTP 202, got $code"

code=$(post list '{"jsonrpc":"2.0","id":2,"method":"tools/list"}' "$session") || fail "tools/list: curl failed"
[ "$code" = 200 ] || fail "tools/list: HTTP $code: $(head -c 300 "$tmp/list.body")"
tools=$(rpc_result "$tmp/list.body" '",".join(t["name"] for t in result["tools"])') \
    || fail "tools/list: bad answer: $(head -c 300 "$tmp/list.body")"
[[ ",$tools," == *",hello,"* ]] || fail "tools/list: no tool \"hello\" (got: $tools)"

code=$(post call '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"hello","arguments":{"name":"mcpg"}}}' \
    "$session") || fail "tools/call: curl failed"
[ "$code" = 200 ] || fail "tools/call: HTTP $code: $(head -c 300 "$tmp/call.body")"
text=$(rpc_result "$tmp/call.body" 'result["content"][0]["text"]') \
    || fail "tools/call: bad answer: $(head -c 300 "$tmp/call.body")"
expected="Hello, mcpg from a custom plugin"
[ "$text" = "$expected" ] || fail "tools/call: expected \"$expected\", got \"$text\""

# 6. Stop the gateway cleanly.
kill -TERM "$gateway_pid"
status=0
for _ in $(seq 1 100); do kill -0 "$gateway_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$gateway_pid" 2>/dev/null; then
    kill -KILL "$gateway_pid" 2>/dev/null || true
    fail "mcpg did not exit within 10 s of SIGTERM"
fi
wait "$gateway_pid" || status=$?
gateway_pid=""
[ "$status" = 0 ] || { tail -n 20 "$tmp/mcpg.log" >&2; fail "mcpg exited with status $status after SIGTERM"; }
[ -s "$tmp/data/audit.ledger" ] || fail "the audit ledger $tmp/data/audit.ledger is empty"

# 7. Facts worth recording: size, and how long loading it took according to mcpg's log (JSON lines with ms
#    timestamps; plugins load one after another, so the gap from the previous line is verify + map + dlopen).
echo "custom plugin: hello.so $((size_stripped / 1024)) KiB stripped ($((size_unstripped / 1024)) KiB unstripped)"
python3 - "$tmp/mcpg.log" <<'PY' || true
import datetime, json, sys
lines = []
for raw in open(sys.argv[1], encoding="utf-8", errors="replace"):
    try:
        lines.append(json.loads(raw))
    except ValueError:
        pass
def ts(o):
    return datetime.datetime.strptime(o["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
for i, o in enumerate(lines):
    if o.get("msg") == "plugin loaded" and o.get("mcpg.plugin.name") == "hello":
        extra = {k: v for k, v in o.items() if k.endswith("_ms") or k.endswith(".ms")}
        gap = (ts(o) - ts(lines[i - 1])).total_seconds() * 1000 if i > 0 else None
        print("custom plugin: mcpg log: plugin loaded: hello %s (sha256 %s…)%s%s" % (
            o.get("mcpg.plugin.version", "?"), o.get("mcpg.plugin.sha256", "")[:12],
            "; %.0f ms after the previous log line (verify + load)" % gap if gap is not None else "",
            "; " + json.dumps(extra) if extra else ""))
        break
else:
    print("custom plugin: (no \"plugin loaded\" line for hello in mcpg's log)")
PY
echo "custom plugin: ok"
