"""The access log: one line per MCP request through a real bridge, with the server, MCP
method and tool, era, status, duration, client and trace context, and never an argument."""

from __future__ import annotations

import logging

import pytest
from bridge_support import (  # noqa: F401  (fixtures)
    Containers,
    RunningBridge,
    bridge,
    containers,
    initialize,
    post_mcp,
    serve_ready,
)

from services.container_agent.bridge import access_log

pytestmark = pytest.mark.docker

SID = "logged"
TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
OTHER_TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
V = "2026-07-28"


@pytest.fixture(scope="module")
def port(bridge: RunningBridge, containers: Containers, time_server_image) -> int:
    return serve_ready(bridge, SID, containers.run(time_server_image))


def lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == access_log.ACCESS.name]


def test_each_request_gets_one_line_without_its_arguments(port, caplog):
    caplog.set_level(logging.INFO, logger=access_log.ACCESS.name)
    session = initialize(port, SID)
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "get_current_time", "arguments": {"timezone": "Europe/Secretville"}},
    }
    post_mcp(port, SID, call, session, headers={"traceparent": TRACE, "MCP-Protocol-Version": "2025-06-18"})
    modern = {
        "jsonrpc": "2.0",
        "id": "m",
        "method": "tools/call",
        "params": {
            "name": "get_current_time",
            "arguments": {"timezone": "Etc/UTC"},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": V,
                "io.modelcontextprotocol/clientCapabilities": {},
                "traceparent": OTHER_TRACE,
            },
        },
    }
    headers = {"MCP-Protocol-Version": V, "Mcp-Method": "tools/call", "Mcp-Name": "get_current_time"}
    post_mcp(port, SID, modern, headers=headers)
    got = lines(caplog)
    assert len(got) == 4, got  # initialize, notifications/initialized, and the two calls
    assert got[0].startswith(f"{SID} POST mcp initialize era=2025-06-18 status=200 result=ok ")
    assert " notifications/initialized era=2025-06-18 status=202 " in got[1]
    # An unknown time zone: the tool ran and said it failed.
    assert got[2].startswith(f"{SID} POST mcp tools/call get_current_time era=2025-06-18 status=200 result=tool_error ")
    assert got[2].endswith(f"client=127.0.0.1 traceparent={TRACE}")
    assert got[3].startswith(f"{SID} POST mcp tools/call get_current_time era={V} status=200 result=ok ")
    assert got[3].endswith(f"traceparent={OTHER_TRACE}")
    assert not any("Secretville" in line or "Etc/UTC" in line for line in got)


def test_a_hostile_name_cannot_forge_a_line(port, caplog):
    caplog.set_level(logging.INFO, logger=access_log.ACCESS.name)
    session = initialize(port, SID)
    call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "x\nforged line", "arguments": {}}}
    post_mcp(port, SID, call, session)
    line = lines(caplog)[-1]
    assert "\n" not in line and "tools/call x_forged_line" in line


def test_off_writes_nothing(port, caplog):
    caplog.set_level(logging.DEBUG, logger=access_log.ACCESS.name)
    access_log.configure("off")
    try:
        initialize(port, SID)
        assert lines(caplog) == []
    finally:
        access_log.configure("info")


def test_a_trace_context_header_goes_on_in_meta():
    msg = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "t"}}
    access_log.carry_trace({"traceparent": TRACE, "tracestate": "vendor=1"}, msg)
    assert msg["params"]["_meta"] == {"traceparent": TRACE, "tracestate": "vendor=1"}
    kept = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"_meta": {"traceparent": OTHER_TRACE}}}
    access_log.carry_trace({"traceparent": TRACE}, kept)
    assert kept["params"]["_meta"] == {"traceparent": OTHER_TRACE}
    bad = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    access_log.carry_trace({"traceparent": "not a trace"}, bad)
    assert "params" not in bad
