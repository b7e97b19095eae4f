"""A minimal MCP client over Streamable HTTP, standard library only.

Runs inside the systemd container (the bridge listens in its network namespace):

    python3 - URL TOOL ARGUMENTS-JSON < mcp_client.py

initialize, notifications/initialized, tools/call, DELETE of the session. Prints one
JSON line {"server": serverInfo, "result": the tools/call result}; exits 1 with the
reason on stderr when any step fails.
"""

import json
import sys
import urllib.error
import urllib.request

TIMEOUT = 20


def post(url, message, session=None, version=None):
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if session:
        headers["Mcp-Session-Id"] = session
    if version:
        headers["MCP-Protocol-Version"] = version
    request = urllib.request.Request(url, data=json.dumps(message).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        body = response.read().decode("utf-8")
        session = response.headers.get("Mcp-Session-Id") or session
        kind = response.headers.get("Content-Type", "")
    if "id" not in message:
        return None, session
    if kind.startswith("text/event-stream"):
        for line in body.splitlines():
            if line.startswith("data:"):
                data = json.loads(line[5:].strip())
                if data.get("id") == message["id"]:
                    return data, session
        raise RuntimeError(f"no response to request {message['id']} in the event stream")
    return json.loads(body), session


def main():
    url, tool, arguments = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    init, session = post(
        url,
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "systemd-test", "version": "1"},
            },
        },
    )
    if "result" not in init:
        raise RuntimeError(f"initialize failed: {init}")
    version = init["result"].get("protocolVersion")
    post(url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session, version)
    call, session = post(
        url,
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool, "arguments": arguments}},
        session,
        version,
    )
    if "result" not in call:
        raise RuntimeError(f"tools/call failed: {call}")
    if session:
        request = urllib.request.Request(url, method="DELETE", headers={"Mcp-Session-Id": session})
        try:
            urllib.request.urlopen(request, timeout=TIMEOUT).close()
        except urllib.error.HTTPError:
            pass
    print(json.dumps({"server": init["result"].get("serverInfo"), "result": call["result"]}))


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # the caller polls: a short reason is enough
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
