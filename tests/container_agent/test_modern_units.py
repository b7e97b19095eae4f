"""The pure parts of the 2026-07-28 front: which requests are modern, the header
checks, what goes upstream and what comes back."""

from __future__ import annotations

import base64
import json

import pytest

from services.container_agent.bridge import era, modern

V = "2026-07-28"


def request(method="tools/call", **params):
    meta = {modern.META_VERSION: V, modern.META_CAPABILITIES: {}}
    return {"jsonrpc": "2.0", "id": 7, "method": method, "params": {**params, "_meta": meta}}


def headers(method="tools/call", name="echo", version=V):
    out = {"MCP-Protocol-Version": version, "Mcp-Method": method}
    if name is not None:
        out["Mcp-Name"] = name
    return out


def test_which_requests_are_modern():
    assert modern.is_modern({}, request())
    assert modern.is_modern({"MCP-Protocol-Version": V}, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert not modern.is_modern({"MCP-Protocol-Version": "2025-06-18"}, {"method": "tools/list", "params": {}})
    assert not modern.is_modern({}, [request()])  # a batch is judged by its header only


@pytest.mark.parametrize(
    "raw,value",
    [
        ("plain", "plain"),
        ("=?base64?" + base64.b64encode("Hello, 世界".encode()).decode() + "?=", "Hello, 世界"),
        ("=?base64?not base64!?=", None),
        (None, None),
    ],
)
def test_header_values_decode_the_base64_sentinel(raw, value):
    assert modern.header_value(raw) == value


def test_a_well_formed_request_passes():
    modern.check(headers(), request(name="echo"))
    modern.check(headers("resources/read", "file:///a"), request("resources/read", uri="file:///a"))
    modern.check(headers("tools/list", None), request("tools/list"))


@pytest.mark.parametrize(
    "hdrs,msg,code",
    [
        (headers(version="2025-06-18"), request(name="echo"), modern.HEADER_MISMATCH),
        ({"Mcp-Method": "tools/call", "Mcp-Name": "echo"}, request(name="echo"), modern.HEADER_MISMATCH),
        (headers(name=None), request(name="echo"), modern.HEADER_MISMATCH),
        (headers(name="other"), request(name="echo"), modern.HEADER_MISMATCH),
        (headers("tools/list"), request(name="echo"), modern.HEADER_MISMATCH),
        (headers("ping", None), request("ping"), -32601),
    ],
)
def test_what_is_refused(hdrs, msg, code):
    with pytest.raises(modern.Refusal) as refused:
        modern.check(hdrs, msg)
    assert refused.value.code == code


def test_missing_capabilities_and_unknown_versions():
    msg = request(name="echo")
    del msg["params"]["_meta"][modern.META_CAPABILITIES]
    with pytest.raises(modern.Refusal, match="clientCapabilities") as refused:
        modern.check(headers(), msg)
    assert refused.value.code == -32602
    future = request(name="echo")
    future["params"]["_meta"][modern.META_VERSION] = "2099-01-01"
    with pytest.raises(modern.Refusal) as refused:
        modern.check(headers(version="2099-01-01"), future)
    assert refused.value.code == modern.UNSUPPORTED_VERSION
    assert refused.value.data == {"supported": [V], "requested": "2099-01-01"}


def test_the_protocols_own_meta_keys_do_not_reach_a_handshake_era_server():
    msg = request(name="echo")
    msg["params"]["_meta"].update(progressToken=3, traceparent="00-ab-cd-01")
    sent = era.strip_protocol_meta(msg)
    assert sent["params"]["_meta"] == {"progressToken": 3, "traceparent": "00-ab-cd-01"}
    assert modern.META_VERSION in msg["params"]["_meta"]  # the original is left alone
    assert "params" not in era.strip_protocol_meta(request("tools/list"))


def test_caching_hints_follow_list_changed():
    assert modern.caching_hints("tools/list", {"tools": {"listChanged": True}}) == {"ttlMs": 0, "cacheScope": "public"}
    assert modern.caching_hints("tools/list", {"tools": {}})["ttlMs"] == modern.STABLE_TTL_MS
    assert modern.caching_hints("resources/read", {})["cacheScope"] == "private"
    assert modern.caching_hints("tools/call", {}) is None


def test_results_and_errors_are_rewritten():
    init = {"serverInfo": {"name": "s", "version": "1"}, "capabilities": {"tools": {}}}
    rewritten = json.loads(modern.modern_result("tools/list", init)(b'{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}'))
    result = rewritten["result"]
    assert result["resultType"] == "complete" and result["ttlMs"] == modern.STABLE_TTL_MS
    assert result["_meta"][modern.META_SERVER_INFO] == {"name": "s", "version": "1"}
    error = modern.modern_result("resources/read", init)(
        b'{"jsonrpc":"2.0","id":1,"error":{"code":-32002,"message":"no such resource"}}'
    )
    assert json.loads(error)["error"]["code"] == -32602


def test_discover_leaves_out_logging():
    init = {"capabilities": {"tools": {}, "logging": {}}, "instructions": "use it", "serverInfo": {"name": "s"}}
    result = modern.discover_result(init)
    assert result["capabilities"] == {"tools": {}} and result["instructions"] == "use it"
    assert result["supportedVersions"] == [V] and result["resultType"] == "complete"


SQL_SCHEMA = {
    "type": "object",
    "properties": {
        "region": {"type": "string", "x-mcp-header": "Region"},
        "query": {"type": "string"},
        "opts": {"type": "object", "properties": {"limit": {"type": "integer", "x-mcp-header": "Limit"}}},
        "rows": {"type": "array", "items": {"type": "object", "properties": {"x": {"x-mcp-header": "X"}}}},
    },
}


def test_mirrored_parameters_are_found_through_properties_only():
    assert modern.header_params(SQL_SCHEMA) == [("Region", ("region",)), ("Limit", ("opts", "limit"))]
    assert modern.header_params(None) == []


def test_mirrored_parameters_must_match_their_headers():
    args = {"region": "us-west1", "query": "SELECT 1", "opts": {"limit": 42}}
    modern.check_param_headers({"Mcp-Param-Region": "us-west1", "Mcp-Param-Limit": "42"}, SQL_SCHEMA, args)
    encoded = "=?base64?" + base64.b64encode("西部".encode()).decode() + "?="
    modern.check_param_headers({"Mcp-Param-Region": encoded}, SQL_SCHEMA, {"region": "西部"})
    modern.check_param_headers({}, SQL_SCHEMA, {"query": "no mirrored value given"})
    for headers in ({"Mcp-Param-Limit": "42"}, {"Mcp-Param-Region": "eu", "Mcp-Param-Limit": "42"}):
        with pytest.raises(modern.Refusal) as refused:
            modern.check_param_headers(headers, SQL_SCHEMA, args)
        assert refused.value.code == modern.HEADER_MISMATCH
