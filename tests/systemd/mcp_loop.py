"""An MCP client calling a tool every 50 ms over Streamable HTTP, standard library only,
until the file STOP exists (or 120 s pass); runs inside the systemd container:

    python3 - URL TOOL ARGUMENTS-JSON MODE STOP PROGRESS < mcp_loop.py

MODE: `legacy` (initialize once, then calls in that session) or `2026-07-28` (each call
one stateless POST). Prints one JSON list: per call [started, ended, ok, error] (wall
clock), so the caller can count failures, connection refusals and calls in flight.
PROGRESS holds the number of calls that succeeded so far.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

TIMEOUT = 30
V = "2026-07-28"


def post(url, message, headers):
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream", **headers}
    request = urllib.request.Request(url, data=json.dumps(message).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        body = response.read().decode("utf-8")
        return body, response.headers.get("Mcp-Session-Id")


def answer(body, request_id):
    for line in body.splitlines() if not body.lstrip().startswith("{") else [body]:
        text = line[5:].strip() if line.startswith("data:") else line
        if text.startswith("{"):
            data = json.loads(text)
            if data.get("id") == request_id:
                return data
    raise RuntimeError("no answer in the body")


def main():
    url, tool, arguments, mode, stop, progress = sys.argv[1:4] + sys.argv[4:7]
    arguments = json.loads(arguments)
    headers = {}
    if mode == "legacy":
        init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "loop", "version": "1"}}
        _, session = post(url, {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init}, {})
        headers = {"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-06-18"}
        post(url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, headers)
    else:
        headers = {"MCP-Protocol-Version": V, "Mcp-Method": "tools/call", "Mcp-Name": tool}
    calls, n, deadline = [], 0, time.time() + 120
    while not os.path.exists(stop) and time.time() < deadline:
        n += 1
        params = {"name": tool, "arguments": arguments}
        if mode != "legacy":
            params["_meta"] = {
                "io.modelcontextprotocol/protocolVersion": V,
                "io.modelcontextprotocol/clientCapabilities": {},
            }
        started = time.time()
        try:
            body, _ = post(url, {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": params}, headers)
            reply = answer(body, n)
            ok, error = "result" in reply and not reply["result"].get("isError"), str(reply.get("error", ""))
        except urllib.error.HTTPError as exc:
            ok, error = False, f"HTTP {exc.code}: {exc.read()[:200]!r}"
        except Exception as exc:
            ok, error = False, f"{type(exc).__name__}: {exc}"
        calls.append([started, time.time(), ok, error])
        with open(progress + ".new", "w") as out:
            out.write(str(sum(1 for c in calls if c[2])))
        os.replace(progress + ".new", progress)
        time.sleep(max(0.0, 0.05 - (time.time() - started)))
    print(json.dumps(calls))


if __name__ == "__main__":
    main()
