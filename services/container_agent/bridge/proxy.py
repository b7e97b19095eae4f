"""Reverse-proxy mode: for servers that speak HTTP themselves inside the container.

`/mcp/{id}/<rest>` goes to `http://<target><base_path>/<rest>`. Responses are
streamed as they come (SSE is never buffered); redirects from the server are
followed here, so a client never sees one; the legacy SSE `endpoint` event gets
the public prefix put in front of its path, or the client would POST where
nothing is routed. Idle SSE streams get comment lines so the ALB keeps them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable, Optional
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from yarl import URL

from common import server_ids

from . import jsonrpc
from .config import BridgeConfig
from .http_common import SSE, read_body, rejection
from .served import ProxyTarget, ServedServer

log = logging.getLogger(__name__)

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
_BODYLESS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})
_LINE_KEEPALIVE = b": keep-alive\n"


class SseEndpointRewriter:
    """Puts the public prefix in front of the path of `endpoint` events in an SSE stream.

    Works on whole lines (a partial line waits for its end); everything but the
    data line of an `endpoint` event passes unchanged.
    """

    def __init__(self, prefix: str, base_path: str = "") -> None:
        self._prefix = prefix.rstrip("/").encode()
        self._base = base_path.rstrip("/").encode()
        self._buf = b""
        self._event = b""

    @property
    def at_line_start(self) -> bool:
        return not self._buf

    def feed(self, chunk: bytes) -> bytes:
        data = self._buf + chunk
        cut = data.rfind(b"\n") + 1
        self._buf = data[cut:]
        if not cut:
            return b""
        out = []
        for line in data[:cut].splitlines(keepends=True):
            bare = line.rstrip(b"\r\n")
            if not bare:
                self._event = b""
            elif bare.startswith(b"event:"):
                self._event = bare[6:].strip()
            elif bare.startswith(b"data:") and self._event == b"endpoint":
                line = b"data: " + self.rewrite(bare[5:].strip()) + b"\n"
            out.append(line)
        return b"".join(out)

    def flush(self) -> bytes:
        rest, self._buf = self._buf, b""
        return rest

    def rewrite(self, value: bytes) -> bytes:
        if value.startswith((b"http://", b"https://")):
            parts = urlsplit(value.decode("latin-1"))
            value = (parts.path or "/").encode("latin-1")
            if parts.query:
                value += b"?" + parts.query.encode("latin-1")
        if not value.startswith(b"/"):
            return value  # relative: it already resolves under the prefix
        if self._base and (value == self._base or value.startswith(self._base + b"/")):
            value = value[len(self._base) :] or b"/"
        return self._prefix + value


def make_client(config: BridgeConfig) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=config.proxy_connect_timeout_seconds),
        auto_decompress=False,  # bytes pass through as the server encoded them
        cookie_jar=aiohttp.DummyCookieJar(),
    )


def _origin(target: ProxyTarget) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    return f"http://{host}:{target.port}"


async def probe(client: aiohttp.ClientSession, target: ProxyTarget, timeout: float) -> Optional[str]:
    """None when the server answers HTTP at all (any status), else why not."""
    url = f"{_origin(target)}{target.base_path}/"
    try:
        async with client.get(url, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=timeout)):
            return None
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        return f"no HTTP answer from {target.host}:{target.port} ({type(exc).__name__})"


async def forward(
    server: ServedServer,
    request: web.BaseRequest,
    tail: str,
    config: BridgeConfig,
    client: aiohttp.ClientSession,
    cors: dict,
) -> web.StreamResponse:
    target = server.proxy
    assert target is not None
    if server.proxy_down:
        return server.unavailable(server.proxy_down)
    prefix = server_ids.path_prefix(server.server_id)
    # Forward the path as the client encoded it (decoding and re-encoding could alter it).
    raw_path, _, raw_query = request.raw_path.partition("?")
    if raw_path.startswith(prefix + "/"):
        tail = raw_path[len(prefix) + 1 :]
    url = f"{_origin(target)}{target.base_path}/{tail}"
    if raw_query:
        url += "?" + raw_query
    # With tokens of ours, the Authorization header was meant for the bridge: never pass it on.
    headers = forwarded_headers(request, drop_authorization=bool(config.token_set))
    headers["X-Forwarded-Prefix"] = prefix
    rewriter = SseEndpointRewriter(prefix, target.base_path)
    return await relay(server, request, url, headers, config, client, cors, rewriter, server.unavailable)


def forwarded_headers(request: web.BaseRequest, drop_authorization: bool) -> dict[str, str]:
    """The request's end-to-end headers for the next hop, with who asked (X-Forwarded-*)."""
    dropped = _HOP_BY_HOP | {"authorization"} if drop_authorization else _HOP_BY_HOP
    headers = {k: v for k, v in request.headers.items() if k.lower() not in dropped}
    forwarded_for = request.headers.get("X-Forwarded-For")
    remote = request.remote or ""
    headers["X-Forwarded-For"] = f"{forwarded_for}, {remote}" if forwarded_for else remote
    headers.setdefault("X-Forwarded-Proto", request.scheme)
    headers.setdefault("X-Forwarded-Host", request.host)
    return headers


async def relay(
    server: ServedServer,
    request: web.BaseRequest,
    url: str,
    headers: dict[str, str],
    config: BridgeConfig,
    client: aiohttp.ClientSession,
    cors: dict,
    rewriter: Optional[SseEndpointRewriter],
    unreachable: Callable[[str], web.Response],
) -> web.StreamResponse:
    """`request` sent on to `url` and its answer streamed back as it comes (SSE through
    `rewriter` when given); `unreachable(why)` is the answer when nothing answers there."""
    body: Optional[bytes] = None
    if request.method not in _BODYLESS or request.body_exists:
        read = await read_body(request, config.max_body_bytes)
        if isinstance(read, web.Response):
            return read
        body = read
    try:
        upstream = await asyncio.wait_for(
            client.request(
                request.method,
                URL(url, encoded=True),
                headers=headers,
                data=body,
                allow_redirects=True,
                max_redirects=5,
            ),
            config.request_timeout_seconds,
        )
    except asyncio.TimeoutError:
        log.warning("server %s: proxied %s got no answer in time", server.server_id, request.method)
        return rejection(
            504,
            jsonrpc.REQUEST_TIMEOUT,
            f"MCP server '{server.server_id}' did not answer within {config.request_timeout_seconds:g} s",
        )
    except aiohttp.TooManyRedirects:
        return rejection(502, jsonrpc.TRANSPORT_ERROR, f"MCP server '{server.server_id}' redirects in a loop")
    except aiohttp.ClientError as exc:
        log.info("server %s: cannot reach %s: %s", server.server_id, URL(url, encoded=True).origin(), exc)
        return unreachable(f"cannot reach it over HTTP ({type(exc).__name__})")
    response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
    for key, value in upstream.headers.items():
        if key.lower() not in _HOP_BY_HOP and key.lower() != "location":
            response.headers.add(key, value)
    response.headers.update(cors)
    is_sse = upstream.content_type == SSE
    if not is_sse and upstream.content_length is not None:
        response.content_length = upstream.content_length
    try:
        await response.prepare(request)
        if is_sse:
            await _pump_sse(upstream, response, rewriter, config)
        else:
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
        await response.write_eof()
    except (ConnectionError, aiohttp.ClientError, asyncio.TimeoutError):
        pass  # one side went away mid-stream: nothing left to tell the other
    finally:
        upstream.close()
    return response


async def _pump_sse(
    upstream: aiohttp.ClientResponse,
    response: web.StreamResponse,
    rewriter: Optional[SseEndpointRewriter],
    config: BridgeConfig,
) -> None:
    reader = upstream.content
    while True:
        try:
            chunk = await asyncio.wait_for(reader.readany(), config.sse_keepalive_seconds)
        except asyncio.TimeoutError:
            if rewriter is None or rewriter.at_line_start:  # a comment line is only legal between lines
                await response.write(_LINE_KEEPALIVE)
            continue
        if not chunk:
            break
        out = rewriter.feed(chunk) if rewriter is not None else chunk
        if out:
            await response.write(out)
    rest = rewriter.flush() if rewriter is not None else b""
    if rest:
        await response.write(rest)
