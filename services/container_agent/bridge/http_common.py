"""What every bridge endpoint checks and answers the same way.

Rejections carry a JSON-RPC error body (id null) so that MCP clients can show
the reason, with the HTTP status the MCP transports specify.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Optional, Union
from urllib.parse import urlparse

from aiohttp import web

from common.client_address import client_address
from common.mcp_auth import bearer_token
from common.settings import is_loopback_host

from . import jsonrpc
from .config import BridgeConfig

JSON = "application/json"
SSE = "text/event-stream"
SESSION_HEADER = "Mcp-Session-Id"
VERSION_HEADER = "MCP-Protocol-Version"

SSE_HEADERS = {
    "Content-Type": SSE,
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",  # proxies in front must not buffer the stream
}


def rejection(
    status: int, code: int, message: str, headers: Optional[dict] = None, id_json: bytes = jsonrpc.NULL_ID
) -> web.Response:
    """A transport-level refusal; it names the request (`id_json`) when its body was read."""
    return web.Response(
        status=status,
        body=jsonrpc.error(id_json, code, message),
        content_type=JSON,
        headers=headers,
    )


def json_response(body: bytes, headers: Optional[dict] = None, status: int = 200) -> web.Response:
    return web.Response(status=status, body=body, content_type=JSON, headers=headers)


@dataclass(frozen=True)
class Accepts:
    json: bool
    sse: bool


def parse_accept(header: Optional[str]) -> Accepts:
    """Which of JSON and SSE a client takes; no header (or */*) means both."""
    if not header:
        return Accepts(True, True)
    text = header.lower()
    any_type = "*/*" in text
    return Accepts(
        json=any_type or JSON in text or "application/*" in text,
        sse=any_type or SSE in text or "text/*" in text,
    )


def origin_allowed(config: BridgeConfig, origin: Optional[str]) -> bool:
    """Requests without Origin (non-browser clients) are allowed; browsers from the list,
    or from the bridge's own names: the configured public name, and loopback names for a
    bridge bound to loopback (a page the bridge's own machine serves)."""
    if origin is None:
        return True
    allowed = config.origins
    if "*" in allowed or origin.rstrip("/") in allowed:
        return True
    name = (urlparse(origin).hostname or "").lower()
    if not name:
        return False
    if config.public_host and name == config.public_host.lower():
        return True
    return is_loopback_host(config.bind_host) and is_loopback_host(name)


def host_allowed(config: BridgeConfig, host: Optional[str]) -> bool:
    """Against DNS rebinding: a bridge bound to loopback answers only requests addressed
    to a loopback name or to the configured public name. One bound to other addresses
    is reached through names it cannot know (the ALB's, an instance address) and relies
    on its tokens."""
    if not is_loopback_host(config.bind_host):
        return True
    if not host:
        return False
    if host.startswith("["):
        name = host[1 : host.find("]")] if "]" in host else host
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return is_loopback_host(name) or bool(config.public_host and name.lower() == config.public_host.lower())


def client_of(request: web.BaseRequest, config: BridgeConfig) -> str:
    """The client's address, for per-address limits (X-Forwarded-For from trusted proxies)."""
    return client_address(request.remote, request.headers.getall("X-Forwarded-For", ()), config.proxy_networks)


AUTH_REALM = 'Bearer realm="mcp-orchestrator"'


def unauthorized(config: BridgeConfig, server_id: str, authorization: Optional[str]) -> Optional[web.Response]:
    """A 401 when tokens are configured and the request has none that opens `server_id`.

    RFC 6750: no credentials get the bare challenge; wrong ones `error="invalid_token"`.
    """
    if not config.token_set:
        return None
    token = bearer_token(authorization)
    if config.token_set.allows(server_id, token):
        return None
    challenge = AUTH_REALM if authorization is None else f'{AUTH_REALM}, error="invalid_token"'
    reason = "no bearer token" if authorization is None else "the bearer token is not valid for this server"
    return rejection(401, jsonrpc.TRANSPORT_ERROR, f"Unauthorized: {reason}", {"WWW-Authenticate": challenge})


def cors_headers(config: BridgeConfig, origin: Optional[str]) -> dict:
    if origin is None or not config.origins:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": f"{SESSION_HEADER}, {VERSION_HEADER}, WWW-Authenticate",
        "Vary": "Origin",
    }


def preflight(config: BridgeConfig, origin: Optional[str], methods: str) -> web.Response:
    headers = cors_headers(config, origin)
    headers.update(
        {
            "Access-Control-Allow-Methods": methods,
            "Access-Control-Allow-Headers": (
                f"Content-Type, Accept, Authorization, {SESSION_HEADER}, {VERSION_HEADER}, Last-Event-ID"
            ),
            "Access-Control-Max-Age": "600",
        }
    )
    return web.Response(status=204, headers=headers)


def method_not_allowed(allow: str) -> web.Response:
    return rejection(405, jsonrpc.TRANSPORT_ERROR, f"Method Not Allowed: use {allow}", headers={"Allow": allow})


def not_found(message: str = "Not Found") -> web.Response:
    return rejection(404, jsonrpc.TRANSPORT_ERROR, message)


def unsupported_media_type(request: web.BaseRequest) -> Optional[web.Response]:
    ctype = request.headers.get("Content-Type")
    if ctype is not None and JSON not in ctype.lower():
        return rejection(415, jsonrpc.TRANSPORT_ERROR, "Unsupported Media Type: the body must be application/json")
    return None


async def read_body(request: web.BaseRequest, limit: int) -> Union[bytes, web.Response]:
    """The request body, or a 413 rejection when it is over `limit` bytes."""
    if request.content_length is not None and request.content_length > limit:
        return _too_large(limit)
    chunks = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            return _too_large(limit)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(limit: int) -> web.Response:
    # Made only when needed: a response object per request was 4 % of the bridge's time.
    return rejection(413, jsonrpc.INVALID_REQUEST, f"Payload Too Large: the limit is {limit} bytes")


async def read_json(request: web.BaseRequest, max_bytes: int) -> Any:
    """The request's JSON body, or the response to send instead (413, a parse error)."""
    body = await read_body(request, max_bytes)
    if isinstance(body, web.Response):
        return body
    try:
        return json.loads(body)
    except ValueError as exc:
        return rejection(400, jsonrpc.PARSE_ERROR, f"Parse error: {exc}")
    except RecursionError:
        return rejection(400, jsonrpc.PARSE_ERROR, "Parse error: the JSON is nested too deeply")


def sse_event(data: bytes, event: bytes = b"message") -> bytes:
    # JSON-RPC lines hold no newline; a stray CR (legal JSON whitespace) would end an
    # SSE line early, so it goes.
    if b"\r" in data:
        data = data.replace(b"\r", b"")
    return b"event: " + event + b"\ndata: " + data + b"\n\n"


KEEPALIVE = b": keep-alive\n\n"


def sse_response(headers: Optional[dict] = None) -> web.StreamResponse:
    """An unprepared SSE response (prepare it where a gone client is handled)."""
    return web.StreamResponse(status=200, headers={**SSE_HEADERS, **(headers or {})})


async def pump(response: web.StreamResponse, channel, keepalive: float) -> None:
    """Write a channel's lines as SSE `message` events until it closes.

    Lines that are ready together go out in one write; an idle stream gets a
    comment line every `keepalive` seconds so that no proxy on the way (the ALB
    cuts at 60 s) takes it for dead. A client that went away ends the loop with
    ConnectionError.
    """
    call = channel.call
    while True:
        items = channel.drain()
        if items:
            if call is not None and call.first is None:  # the time to the first message
                call.first = time.perf_counter()
            await response.write(b"".join(sse_event(data) for data, _ in items))
        if channel.exhausted:
            return
        if not await channel.wait(keepalive):
            await response.write(KEEPALIVE)


async def stream_channel(
    request: web.BaseRequest, channel, keepalive: float, headers: Optional[dict] = None, first: bytes = KEEPALIVE
) -> web.StreamResponse:
    """Answer `request` with an SSE stream of `channel` (after `first`) until the channel
    closes or the client leaves; a client that left is not an error."""
    response = sse_response(headers)
    try:
        await response.prepare(request)
        await response.write(first)
        await pump(response, channel, keepalive)
        await response.write_eof()
    except ConnectionError:
        pass
    return response
