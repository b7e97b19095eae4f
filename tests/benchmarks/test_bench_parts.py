"""The benchmark harness's own parts: statistics, tables, selection, and the lean HTTP
client against a real HTTP server (aiohttp on loopback)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import time

import pytest
from aiohttp import web

from benchmarks.http_client import HttpConnection, HttpError
from benchmarks.mcp_client import McpError, StatelessClient, message_from, modern_headers
from benchmarks.report import Table
from benchmarks.run import select
from benchmarks.stats import Spread, percentile, ratio


def test_percentiles_interpolate_between_ranks():
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 5.0
    assert percentile(values, 25) == 2.0
    assert percentile([1.0, 2.0], 99) == pytest.approx(1.99)
    assert math.isnan(percentile([], 50))


def test_spread_formats_median_and_range_and_ignores_unknowns():
    assert Spread.of([3.0, 1.0, 2.0, None]).fmt(1) == "2.0 (1.0–3.0)"
    assert Spread.of([2.5]).fmt(2, " ms") == "2.50 ms"
    assert Spread.of([None, float("nan")]).fmt() == "—"
    assert Spread.of([]).to_dict() == {"median": None, "low": None, "high": None, "runs": 0}
    assert ratio(6.0, 3.0) == 2.0 and ratio(1.0, 0.0) is None and ratio(None, 1.0) is None


def test_tables_render_as_text_and_markdown():
    table = Table("T", ["name", "value"], notes=["a note"])
    table.add("a|b", 1.5)
    text = table.text().splitlines()
    assert text[0] == "T" and text[1].split() == ["name", "value"] and "a note" in text[-1]
    md = table.markdown()
    assert "| a\\|b | 1.5 |" in md and "|---|---:|" in md and "- a note" in md


def test_benchmarks_are_selected_by_name_or_number():
    assert select("") == ["bridge", "sessions", "healing", "alb", "scale"]
    assert select("2, alb,2") == ["sessions", "alb"]
    with pytest.raises(ValueError, match="unknown benchmark 'nope'"):
        select("nope")


def test_mcp_answers_are_found_in_json_and_sse_bodies():
    from benchmarks.http_client import Response

    sse = Response(
        200,
        {"content-type": "text/event-stream"},
        b'event: message\ndata: {"jsonrpc":"2.0","method":"x"}\n\n'
        b'data: {"jsonrpc":"2.0","id":7,"result":{"ok":true}}\n\n',
    )
    assert message_from(sse, 7)["result"] == {"ok": True}
    plain = Response(200, {"content-type": "application/json"}, b'{"jsonrpc":"2.0","id":3,"result":{}}')
    assert message_from(plain, 3)["id"] == 3
    with pytest.raises(McpError):
        message_from(plain, 4)


async def _serve(handler) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]


def test_http_client_reads_lengths_chunks_and_reconnects():
    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if request.path == "/chunked":
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for part in (b"data: one\n\n", b"data: two\n\n"):
                await response.write(part)
            await response.write_eof()
            return response
        if request.path == "/close":
            return web.Response(body=b"bye", headers={"Connection": "close"})
        if request.path == "/empty":
            return web.Response(status=204)
        return web.json_response({"method": request.method, "echo": body.decode(), "host": request.headers.get("Host")})

    async def main() -> None:
        runner, port = await _serve(handler)
        conn = HttpConnection("127.0.0.1", port, timeout=5)
        try:
            first = await conn.request("POST", "/x", {"Content-Type": "application/json"}, b'{"a":1}')
            assert first.status == 200
            assert json.loads(first.body) == {"method": "POST", "echo": '{"a":1}', "host": f"127.0.0.1:{port}"}
            chunked = await conn.request("GET", "/chunked", {})
            assert chunked.body == b"data: one\n\ndata: two\n\n"
            assert (await conn.request("DELETE", "/empty", {})).status == 204
            assert (await conn.request("GET", "/close", {})).body == b"bye"
            again = await conn.request("GET", "/after-close", {})  # a new connection
            assert again.status == 200
        finally:
            conn.close()
            await runner.cleanup()

    asyncio.run(main())


def test_http_client_times_out_with_a_clear_error():
    async def handler(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.Response(text="late")

    async def main() -> None:
        runner, port = await _serve(handler)
        conn = HttpConnection("127.0.0.1", port, timeout=0.2)
        try:
            with pytest.raises(HttpError, match="no response .* within 0.2 s"):
                await conn.request("GET", "/", {})
        finally:
            conn.close()
            await runner.cleanup()

    asyncio.run(main())


def test_a_stateless_client_sends_each_call_as_a_2026_07_28_post():
    seen: list[tuple[dict, dict]] = []

    async def handler(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        seen.append((dict(request.headers), body))
        result = {"content": [], "isError": False}
        data = json.dumps({"jsonrpc": "2.0", "id": body["id"], "result": result})
        return web.Response(text=f"event: message\ndata: {data}\n\n", content_type="text/event-stream")

    async def main() -> None:
        runner, port = await _serve(handler)
        client = StatelessClient("127.0.0.1", port, "/mcp/x/mcp", timeout=5)
        try:
            await client.call_tool("get_current_time", {"timezone": "UTC"})
            await client.call_tool("get_current_time", {"timezone": "UTC"})
            assert await client.delete() == 0  # no session to end
        finally:
            client.close()
            await runner.cleanup()

    asyncio.run(main())
    assert [body["id"] for _, body in seen] == [1, 2]
    headers, body = seen[0]
    assert body["method"] == "tools/call" and body["params"]["name"] == "get_current_time"
    assert body["params"]["_meta"] == {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    assert headers["MCP-Protocol-Version"] == "2026-07-28"
    assert headers["Mcp-Method"] == "tools/call" and headers["Mcp-Name"] == "get_current_time"
    assert headers["Accept"] == "application/json, text/event-stream"
    assert headers["Content-Type"] == "application/json"
    assert "Mcp-Session-Id" not in headers


def test_modern_headers_name_only_what_the_method_names():
    assert modern_headers("resources/read", {"uri": "file:///a"})["Mcp-Name"] == "file:///a"
    assert "Mcp-Name" not in modern_headers("tools/list", None)


def test_the_meter_holds_the_parts_against_the_whole_machine():
    import hashlib

    from benchmarks.meter import Meter

    meter = Meter([os.getpid()], [])
    meter.start()
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:  # work of our own, counted as the bridge's here
        hashlib.sha256(b"x" * 4096).digest()
    use = meter.stop()
    assert use.bridge >= 0.15 and use.client >= 0.15
    # The machine was busy at least as long as this process, and its cores add up.
    assert use.machine >= use.bridge * 0.9 and use.idle >= 0
    assert use.per(1000, "machine") == use.machine * 1000
