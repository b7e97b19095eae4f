"""MCP 2026-07-28 on the Streamable HTTP endpoint: stateless requests.

A modern request carries its protocol version and the client's capabilities in
`params._meta` and mirrors its version, method and name in headers; there is no
`initialize` and no `Mcp-Session-Id`. The bridge checks what the spec says a server
must check, answers `server/discover` from the stdio server's initialize result, and
forwards everything else through the same shared stdio session as handshake-era
clients, turning the result into a modern one (`resultType`, `serverInfo` in `_meta`,
caching hints). A handshake-era request (no `_meta` version) never comes here.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Callable, Mapping, Optional

from aiohttp import web

from . import jsonrpc
from .channel import Channel
from .config import BridgeConfig
from .era import (
    META_CAPABILITIES,
    META_LOG_LEVEL,
    META_SERVER_INFO,
    META_VERSION,
    MODERN_VERSIONS,
    UNSUPPORTED_VERSION,
)
from .http_common import VERSION_HEADER, Accepts, json_response, rejection, stream_channel
from .jsonrpc import Kind
from .served import ServedServer
from .sessions import STREAM_BACKLOG
from .subscriptions import FilterError, Listener, acknowledgement, agreed_filter
from .traffic import CALL

METHOD_HEADER = "Mcp-Method"
NAME_HEADER = "Mcp-Name"

# Error codes of 2026-07-28 (the spec's reserved range -32020..-32099).
HEADER_MISMATCH = -32020
MISSING_CAPABILITY = -32021
INVALID_PARAMS = jsonrpc.INVALID_PARAMS
# 2025 servers said "resource not found" with -32002; 2026-07-28 says -32602.
_LEGACY_NOT_FOUND = -32002

# Methods 2026-07-28 removed (their replacements: per-request _meta, subscriptions/listen).
REMOVED_METHODS = frozenset({"initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"})
# The params key mirrored in Mcp-Name, by method.
NAME_KEYS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
# Results that carry caching hints, with the capability whose listChanged says the
# list can change under the client ("" = only a restart changes it).
_CACHEABLE = {
    "server/discover": "",
    "tools/list": "tools",
    "prompts/list": "prompts",
    "resources/list": "resources",
    "resources/templates/list": "resources",
    "resources/read": None,
}
# A list the server never announces changes of stays fresh this long; one it may
# change at any time is stale at once (listeners get told when it changes).
STABLE_TTL_MS = 300_000
_SENTINEL = ("=?base64?", "?=")


def is_modern(headers: Mapping[str, str], payload: Any) -> bool:
    """True for a request of the stateless era: its `_meta` names a protocol version,
    or its MCP-Protocol-Version header is a modern one."""
    if headers.get(VERSION_HEADER) in MODERN_VERSIONS:
        return True
    if isinstance(payload, dict):
        params = payload.get("params")
        meta = params.get("_meta") if isinstance(params, dict) else None
        return isinstance(meta, dict) and META_VERSION in meta
    return False


def header_value(raw: Optional[str]) -> Optional[str]:
    """A mirrored header's value, its base64 sentinel form decoded; None when absent
    or not decodable."""
    if raw is None:
        return None
    if raw.startswith(_SENTINEL[0]) and raw.endswith(_SENTINEL[1]) and len(raw) >= 11:
        try:
            return base64.b64decode(raw[len(_SENTINEL[0]) : -len(_SENTINEL[1])], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
    return raw


class Refusal(Exception):
    """A modern request refused before it reached the server."""

    def __init__(self, status: int, code: int, message: str, data: Optional[dict] = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.data = data

    def response(self, id_json: bytes, headers: dict) -> web.Response:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        body = b'{"jsonrpc":"2.0","id":' + id_json + b',"error":' + jsonrpc.dumps(error) + b"}"
        return json_response(body, headers, status=self.status)


def check(headers: Mapping[str, str], msg: dict) -> None:
    """What 2026-07-28 says a server must check before it serves a request; Refusal
    says which check failed. Pure."""
    params = msg.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    requested = meta.get(META_VERSION) if isinstance(meta, dict) else None
    header = headers.get(VERSION_HEADER)
    if header is None or requested is None or header != requested:
        raise Refusal(
            400,
            HEADER_MISMATCH,
            f"Header mismatch: {VERSION_HEADER} header {_shown(header)} does not match "
            f"_meta {META_VERSION} {_shown(requested)}",
        )
    if requested not in MODERN_VERSIONS:
        raise Refusal(
            400,
            UNSUPPORTED_VERSION,
            f"Unsupported protocol version {_shown(requested)}",
            {"supported": list(MODERN_VERSIONS), "requested": requested if isinstance(requested, str) else None},
        )
    method = msg["method"]
    mirrored = headers.get(METHOD_HEADER)
    if mirrored != method:
        raise Refusal(
            400,
            HEADER_MISMATCH,
            f"Header mismatch: {METHOD_HEADER} header {_shown(mirrored)} does not match body method {_shown(method)}",
        )
    key = NAME_KEYS.get(method)
    if key is not None:
        name = params.get(key) if isinstance(params, dict) else None
        mirrored_name = header_value(headers.get(NAME_HEADER))
        if mirrored_name is None or mirrored_name != name:
            raise Refusal(
                400,
                HEADER_MISMATCH,
                f"Header mismatch: {NAME_HEADER} header {_shown(mirrored_name)} does not match "
                f"params.{key} {_shown(name)}",
            )
    if not isinstance(meta.get(META_CAPABILITIES), dict):
        raise Refusal(400, INVALID_PARAMS, f"Invalid params: _meta {META_CAPABILITIES} must be an object")
    if method in REMOVED_METHODS:
        raise Refusal(404, jsonrpc.METHOD_NOT_FOUND, f"Method not found: {method} is not part of 2026-07-28")


PARAM_HEADER_PREFIX = "Mcp-Param-"
_SAFE_INTEGER = 2**53 - 1


def header_params(schema: Any) -> list[tuple[str, tuple[str, ...]]]:
    """(header name, property path) for each `x-mcp-header` annotation of a tool's
    inputSchema, reached through `properties` keys only (others are not mirrored)."""
    out: list[tuple[str, tuple[str, ...]]] = []

    def walk(node: Any, path: tuple[str, ...]) -> None:
        props = node.get("properties") if isinstance(node, dict) else None
        if not isinstance(props, dict):
            return
        for key, prop in props.items():
            if not isinstance(prop, dict):
                continue
            name = prop.get("x-mcp-header")
            if isinstance(name, str) and name:
                out.append((name, path + (key,)))
            walk(prop, path + (key,))

    walk(schema, ())
    return out


def _mirrored(value: Any) -> Optional[str]:
    """A primitive argument as its header form (None for what cannot be mirrored)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if abs(value) <= _SAFE_INTEGER else None
    if isinstance(value, str):
        return value
    return None


def check_param_headers(headers: Mapping[str, str], schema: Any, arguments: Any) -> None:
    """Every argument a tool mirrors into `Mcp-Param-{Name}` must come with that header,
    equal to it (base64 sentinel decoded); Refusal (-32020) otherwise."""
    for name, path in header_params(schema):
        value: Any = arguments
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            continue  # not given: no header is expected
        header = f"{PARAM_HEADER_PREFIX}{name}"
        sent = header_value(headers.get(header))
        expected = _mirrored(value)
        if sent is None or expected is None or sent != expected:
            raise Refusal(400, HEADER_MISMATCH, f"Header mismatch: {header} header does not match the argument")


def _shown(value: Any) -> str:
    return "(none)" if value is None else repr(value if not isinstance(value, str) else value[:80])


_MISSING_CAPABILITY_CODE = b'"error":{"code":-32021,'


def status_of(body: bytes) -> int:
    """The HTTP status of a modern request's JSON answer: 400 for a missing client
    capability, as the spec says; 200 for everything else that reached the server."""
    return 400 if _MISSING_CAPABILITY_CODE in body else 200


def caching_hints(method: str, capabilities: Mapping[str, Any]) -> Optional[dict]:
    """`ttlMs` and `cacheScope` for a result of `method` (None: not cacheable)."""
    if method not in _CACHEABLE:
        return None
    capability = _CACHEABLE[method]
    if capability is None:  # resources/read: the contents may be the caller's own
        return {"ttlMs": 0, "cacheScope": "private"}
    changes = capability and isinstance(capabilities.get(capability), dict)
    may_change = bool(changes and capabilities[capability].get("listChanged"))
    return {"ttlMs": 0 if may_change else STABLE_TTL_MS, "cacheScope": "public"}


def modern_result(method: str, init_result: Mapping[str, Any]) -> Callable[[bytes], bytes]:
    """Rewrites the server's final answer for a modern client."""
    server_info = init_result.get("serverInfo")
    hints = caching_hints(method, init_result.get("capabilities") or {})

    def rewrite(line: bytes) -> bytes:
        try:
            msg = json.loads(line)
        except (ValueError, RecursionError):
            return line
        if not isinstance(msg, dict):
            return line
        result = msg.get("result")
        if isinstance(result, dict):
            result.setdefault("resultType", "complete")
            if hints is not None:
                for k, v in hints.items():
                    result.setdefault(k, v)
            if isinstance(server_info, dict):
                meta = result.get("_meta")
                result["_meta"] = dict(meta if isinstance(meta, dict) else {}, **{META_SERVER_INFO: server_info})
        error = msg.get("error")
        if isinstance(error, dict) and error.get("code") == _LEGACY_NOT_FOUND:
            error["code"] = INVALID_PARAMS
        return jsonrpc.dumps(msg)

    return rewrite


def discover_result(init_result: Mapping[str, Any], discovered: Optional[Mapping[str, Any]] = None) -> dict:
    """server/discover, from what the stdio server said when the bridge probed it
    (`discovered`, a modern server's own answer: only the versions both speak) or
    initialized it."""
    if discovered is not None:
        result = dict(discovered)
        result["supportedVersions"] = [v for v in discovered.get("supportedVersions", ()) if v in MODERN_VERSIONS]
        return result
    capabilities = dict(init_result.get("capabilities") or {})
    capabilities.pop("logging", None)  # setLevel is gone; the level travels per request
    result: dict[str, Any] = {
        "resultType": "complete",
        "supportedVersions": list(MODERN_VERSIONS),
        "capabilities": capabilities,
        **(caching_hints("server/discover", capabilities) or {}),
    }
    if isinstance(init_result.get("instructions"), str):
        result["instructions"] = init_result["instructions"]
    if isinstance(init_result.get("serverInfo"), dict):
        result["_meta"] = {META_SERVER_INFO: init_result["serverInfo"]}
    return result


async def handle(
    server: ServedServer,
    request: web.BaseRequest,
    config: BridgeConfig,
    cors: dict,
    payload: Any,
    accepts: Accepts,
    answer: Callable[..., Any],
) -> web.StreamResponse:
    """One modern POST. `answer(request, channel)` sends the server's answer back (the
    transport's own JSON-or-SSE logic)."""
    if isinstance(payload, list):
        return Refusal(400, jsonrpc.INVALID_REQUEST, "Invalid Request: 2026-07-28 has no batches").response(
            jsonrpc.NULL_ID, cors
        )
    kind = jsonrpc.classify(payload)
    if isinstance(kind, str) or kind is Kind.RESPONSE:
        reason = kind if isinstance(kind, str) else "a client sends no responses in 2026-07-28"
        return Refusal(400, jsonrpc.INVALID_REQUEST, f"Invalid Request: {reason}").response(
            jsonrpc.id_of(payload), cors
        )
    if kind is Kind.NOTIFICATION:
        # 2026-07-28 defines none over HTTP (closing a stream cancels): accepted, dropped.
        return web.Response(status=202, headers=cors)
    id_json = jsonrpc.dumps(payload["id"])
    try:
        check(request.headers, payload)
    except Refusal as refusal:
        return refusal.response(id_json, cors)
    upstream = await server.ready_upstream(config, id_json)
    if isinstance(upstream, web.Response):
        return upstream
    init_result = upstream.init_result or {}
    method = payload["method"]
    if method == "tools/call":
        params = payload["params"]
        try:
            check_param_headers(
                request.headers, await upstream.tool_schema(params.get("name")), params.get("arguments")
            )
        except Refusal as refusal:
            return refusal.response(id_json, cors)
    if method == "subscriptions/listen":
        return await _listen(server, request, config, cors, payload, accepts, init_result)
    if method == "server/discover":
        return json_response(
            jsonrpc.result(id_json, jsonrpc.dumps(discover_result(init_result, upstream.discovered))), cors
        )
    channel = Channel(expected=1, transform=modern_result(method, init_result))
    channel.call = request.get(CALL)
    asked = payload["params"]["_meta"].get(META_LOG_LEVEL)  # check() made sure _meta is there
    principal = request.headers.get("Authorization", "")
    bridge_id = upstream.submit_stateless(payload, channel, asked if isinstance(asked, str) else None, principal)
    try:
        await upstream.drain()
        return await answer(channel)
    finally:
        # Still unanswered here: the client closed its stream, which cancels the request.
        upstream.cancel(bridge_id, "the client closed the response stream")


async def _listen(
    server: ServedServer,
    request: web.BaseRequest,
    config: BridgeConfig,
    cors: dict,
    payload: dict,
    accepts: Accepts,
    init_result: Mapping[str, Any],
) -> web.StreamResponse:
    """subscriptions/listen: an SSE stream that starts with the acknowledgement (what
    the server can send of what was asked) and then carries the change notifications
    asked for, each tagged with the request's id, with keep-alive comments between.
    It lasts until the client closes it; it outlives a restart of the container."""
    id_json = jsonrpc.dumps(payload["id"])
    if not accepts.sse:
        return rejection(
            406,
            jsonrpc.TRANSPORT_ERROR,
            "Not Acceptable: subscriptions/listen answers with text/event-stream",
            id_json=id_json,
        )
    try:
        agreed, methods, uris = agreed_filter(payload["params"].get("notifications"), init_result.get("capabilities"))
    except FilterError as problem:
        return Refusal(400, INVALID_PARAMS, f"Invalid params: {problem}").response(id_json, cors)
    channel = Channel(limit=STREAM_BACKLOG)
    listener = Listener(payload["id"], channel, methods, uris)
    channel.put(acknowledgement(payload["id"], agreed))
    server.listen(listener)
    try:  # the client leaving ends the subscription
        return await stream_channel(request, channel, config.sse_keepalive_seconds, cors)
    finally:
        server.stop_listening(listener)
