-- bench/mcp.lua: wrk script that POSTs one MCP tools/call frame per request (each with its own JSON-RPC id)
-- and validates every answer.
--
-- Environment (set by bench/run):
--   MCP_SESSION  Mcp-Session-Id from an initialize done beforehand (optional: the ceiling needs none)
--   MCP_AUTH     value of the Authorization header, e.g. "Bearer <key>" (optional)
--   MCP_TOOL     tool to call (default "echo"); MCP_ARGS: its arguments as JSON (default {"message":"hello"})
--   MCP_PROTOCOL MCP-Protocol-Version header (default 2025-06-18)
--
-- A response counts as valid only if its status is 200 and its body contains "result" and not "error".
-- Anything else is an error: counted separately and never as throughput. done() prints one line,
--   BENCH {"requests":N,"valid":N,"invalid":N,"socket_errors":N,"duration_s":S,"rps":R,"p50_us":U,"p99_us":U,...}
-- where rps counts valid answers only.

local threads = {}

function setup(thread)
    table.insert(threads, thread)
    thread:set("thread_index", #threads)
end

function init(args)
    local tool = os.getenv("MCP_TOOL") or "echo"
    local arguments = os.getenv("MCP_ARGS") or '{"message":"hello"}'
    -- JSON-RPC ids must be unique among a session's requests in flight (the gateway refuses a reused one), so
    -- each request gets its own: thread index * 10^9 + a per-thread counter.
    next_id = thread_index * 1000000000
    body_head = '{"jsonrpc":"2.0","id":'
    body_tail = ',"method":"tools/call","params":{"name":"' .. tool .. '","arguments":' .. arguments .. '}}'
    local headers = {
        ["Content-Type"] = "application/json",
        ["Accept"] = "application/json, text/event-stream",
        ["MCP-Protocol-Version"] = os.getenv("MCP_PROTOCOL") or "2025-06-18",
    }
    -- wrk.init set Host in the table replaced here; HTTP/1.1 servers that enforce it (uvicorn: "400 Invalid HTTP
    -- request received") need it kept.
    headers["Host"] = wrk.headers["Host"]
    local session = os.getenv("MCP_SESSION")
    if session and session ~= "" then headers["Mcp-Session-Id"] = session end
    local auth = os.getenv("MCP_AUTH")
    if auth and auth ~= "" then headers["Authorization"] = auth end
    wrk.method = "POST"
    wrk.headers = headers
    valid = 0
    invalid = 0
    sample = ""
end

function request()
    next_id = next_id + 1
    return wrk.format(nil, nil, nil, body_head .. next_id .. body_tail)
end

function response(status, headers, body)
    if status == 200 and body and string.find(body, '"result"', 1, true)
        and not string.find(body, '"error"', 1, true) then
        valid = valid + 1
    else
        invalid = invalid + 1
        if sample == "" then sample = tostring(status) .. " " .. string.sub(body or "", 1, 200) end
    end
end

local function json_string(s)
    return '"' .. string.gsub(s, '[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end) .. '"'
end

function done(summary, latency, requests)
    local v, bad, first = 0, 0, ""
    for _, t in ipairs(threads) do
        v = v + (t:get("valid") or 0)
        bad = bad + (t:get("invalid") or 0)
        local s = t:get("sample")
        if first == "" and s and s ~= "" then first = s end
    end
    local e = summary.errors
    local socket_errors = e.connect + e.read + e.write + e.timeout
    local seconds = summary.duration / 1e6
    io.write(string.format(
        'BENCH {"requests":%d,"valid":%d,"invalid":%d,"socket_errors":%d,"timeouts":%d,"duration_s":%.3f,'
            .. '"rps":%.1f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,"first_invalid":%s}\n',
        summary.requests, v, bad, socket_errors, e.timeout, seconds, v / seconds,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
        json_string(first)))
end
