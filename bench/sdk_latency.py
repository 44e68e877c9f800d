#!/usr/bin/env python3
"""bench/sdk_latency.py: sequential tools/call latency as one agent sees it, with the official Python MCP SDK.

    sdk_latency.py [--warmup 50] [--calls 300] [--timeout 120] NAME=URL[|BEARER] ...

Opens one Streamable HTTP `ClientSession` per target (httpx2 client, one kept-alive connection), then takes
rounds: each round makes one `tools/call echo {"message": "hello"}` on every target, one after the other (the
order rotates from round to round), so drift on a shared machine hits every target alike. Every answer is checked
(no error, text "hello"); a wrong answer stops the run with exit 1. Prints one JSON line on stdout:

    {"warmup": W, "calls": N, "targets": {NAME: {"p50_us": .., "p90_us": .., "p99_us": .., "mean_us": ..,
     "min_us": .., "max_us": ..}}}

Run by bench/run with the project venv (.venv: the `mcp` SDK and httpx2).
"""

import argparse
import json
import statistics
import sys
import time

import anyio
import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from contextlib import AsyncExitStack


def die(message):
    print(f"sdk_latency: error: {message}", file=sys.stderr)
    sys.exit(1)


def percentile(sorted_values, q):
    """Nearest-rank percentile of an ascending list."""
    k = max(0, min(len(sorted_values) - 1, int(round(q / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


async def measure(targets, warmup, calls):
    times = {name: [] for name, _, _ in targets}
    async with AsyncExitStack() as stack:
        sessions = []
        for name, url, bearer in targets:
            headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
            http = await stack.enter_async_context(httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(20.0)))
            read, write = await stack.enter_async_context(streamable_http_client(url, http_client=http))
            session = await stack.enter_async_context(ClientSession(read, write))
            await session.initialize()
            sessions.append((name, session))
        for i in range(warmup + calls):
            k = i % len(sessions)
            for name, session in sessions[k:] + sessions[:k]:
                t = time.perf_counter()
                result = await session.call_tool("echo", {"message": "hello"})
                dt = time.perf_counter() - t
                text = "".join(getattr(c, "text", "") for c in result.content)
                if result.is_error or text != "hello":
                    die(f"{name}: call {i}: unexpected answer: error={result.is_error} text={text[:200]!r}")
                if i >= warmup:
                    times[name].append(dt)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--timeout", type=float, default=120, help="seconds for the whole run")
    ap.add_argument("targets", nargs="+", metavar="NAME=URL[|BEARER]")
    args = ap.parse_args()
    targets = []
    for t in args.targets:
        name, sep, rest = t.partition("=")
        if not sep or not name:
            die(f"bad target {t!r}: want NAME=URL[|BEARER]")
        url, _, bearer = rest.partition("|")
        targets.append((name, url, bearer or None))

    async def bounded():
        with anyio.fail_after(args.timeout):
            return await measure(targets, args.warmup, args.calls)

    try:
        times = anyio.run(bounded)
    except TimeoutError:
        die(f"not done within {args.timeout} s")
    out = {"warmup": args.warmup, "calls": args.calls, "targets": {}}
    for name, values in times.items():
        v = sorted(values)
        out["targets"][name] = {
            "p50_us": round(statistics.median(v) * 1e6, 1), "p90_us": round(percentile(v, 90) * 1e6, 1),
            "p99_us": round(percentile(v, 99) * 1e6, 1), "mean_us": round(statistics.fmean(v) * 1e6, 1),
            "min_us": round(v[0] * 1e6, 1), "max_us": round(v[-1] * 1e6, 1)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
