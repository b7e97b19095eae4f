"""`/mcp/{id}/mcp`: the Streamable HTTP transport (MCP revisions 2025-03-26 and later;
a 2026-07-28 request, stateless, is handed to modern.py).

A POST that carries requests is answered lazily: while only the response comes,
it is sent as plain JSON (cheap, and what most calls need); as soon as something
else comes first (progress, a server-to-client request) or the request runs past
the keep-alive interval, the answer switches to an SSE stream, if the client
accepts one. Events carry no ids: streams are not resumable.
"""

from __future__ import annotations

import time
from typing import Callable, Optional, Union

from aiohttp import web

from . import access_log, jsonrpc, modern
from .channel import Channel
from .config import BridgeConfig
from .http_common import (
    KEEPALIVE,
    SESSION_HEADER,
    VERSION_HEADER,
    Accepts,
    client_of,
    json_response,
    method_not_allowed,
    parse_accept,
    read_json,
    rejection,
    sse_event,
    sse_response,
    stream_channel,
    unsupported_media_type,
)
from .jsonrpc import Kind
from .served import ServedServer
from .sessions import STREAM_BACKLOG, STREAMABLE_HTTP, HttpSession, SessionLimit
from .versions import KNOWN_VERSIONS, OFFERED_VERSION, is_known

ALLOW = "GET, POST, DELETE"


async def handle(
    server: ServedServer, request: web.BaseRequest, config: BridgeConfig, cors: dict
) -> web.StreamResponse:
    method = request.method
    if method == "POST":
        return await _post(server, request, config, cors)
    if method == "GET":
        return await _get(server, request, config, cors)
    if method == "DELETE":
        return _delete(server, request, config)
    return method_not_allowed(ALLOW)


def _version_problem(request: web.BaseRequest, id_json: bytes = jsonrpc.NULL_ID) -> Optional[web.Response]:
    version = request.headers.get(VERSION_HEADER)
    if version is not None and not is_known(version):
        message = f"Bad Request: unsupported {VERSION_HEADER} {version[:40]!r} (supported: {', '.join(KNOWN_VERSIONS)})"
        return rejection(400, jsonrpc.TRANSPORT_ERROR, message, id_json=id_json)
    return None


def _session_of(
    server: ServedServer, request: web.BaseRequest, config: BridgeConfig, id_json: bytes = jsonrpc.NULL_ID
) -> Union[HttpSession, web.Response]:
    session_id = request.headers.get(SESSION_HEADER)
    if not session_id:
        message = f"Bad Request: no {SESSION_HEADER} header; send initialize first"
        return rejection(400, jsonrpc.TRANSPORT_ERROR, message, id_json=id_json)
    session = server.sessions.get(session_id)
    if session is None:
        # Made by an earlier run of this process (a restart): taken back, not 404.
        version = request.headers.get(VERSION_HEADER) or OFFERED_VERSION
        try:
            session = server.sessions.revive(
                STREAMABLE_HTTP,
                session_id,
                version if is_known(version) else OFFERED_VERSION,
                client_of(request, config),
            )
        except SessionLimit as limit:
            message = f"MCP server '{server.server_id}': {limit.reason}"
            return rejection(limit.status, jsonrpc.TRANSPORT_ERROR, message, id_json=id_json)
    if session is None or session.transport != STREAMABLE_HTTP:
        message = "Session not found: it expired or was terminated; initialize a new one"
        return rejection(404, jsonrpc.TRANSPORT_ERROR, message, id_json=id_json)
    return session


async def _post(server: ServedServer, request: web.BaseRequest, config: BridgeConfig, cors: dict) -> web.StreamResponse:
    accepts = parse_accept(request.headers.get("Accept"))
    if not (accepts.json or accepts.sse):
        return rejection(406, jsonrpc.TRANSPORT_ERROR, "Not Acceptable: accept application/json and text/event-stream")
    problem = unsupported_media_type(request)
    if problem is not None:
        return problem
    payload = await read_json(request, config.max_body_bytes)
    if isinstance(payload, web.Response):
        return payload
    if modern.is_modern(request.headers, payload):
        access_log.note(server.traffic, request, payload, modern.MODERN_VERSIONS[-1])
        access_log.carry_trace(request.headers, payload)

        async def answer(channel: Channel) -> web.StreamResponse:
            return await _answer(request, None, channel, accepts, False, config, cors, modern.status_of)

        return await modern.handle(server, request, config, cors, payload, accepts, answer)
    params = payload.get("params") if isinstance(payload, dict) else None
    initialize = isinstance(params, dict) and payload.get("method") == "initialize"
    asked = params.get("protocolVersion") if initialize else None  # type: ignore[union-attr]
    call = access_log.note(
        server.traffic, request, payload, str(asked or request.headers.get(VERSION_HEADER) or "handshake")[:20]
    )
    if not isinstance(payload, list):
        access_log.carry_trace(request.headers, payload)
    # Refusals from here on name the request, when there is one.
    id_json = jsonrpc.id_of(payload)
    problem = _version_problem(request, id_json)
    if problem is not None:
        return problem

    is_batch = isinstance(payload, list)
    items = payload if is_batch else [payload]
    if not items:
        return rejection(400, jsonrpc.INVALID_REQUEST, "Invalid Request: an empty batch")
    kinds = [jsonrpc.classify(m) for m in items]
    if not is_batch:
        kind = kinds[0]
        if isinstance(kind, str):
            return json_response(
                jsonrpc.error(jsonrpc.id_of(payload), jsonrpc.INVALID_REQUEST, f"Invalid Request: {kind}"), status=400
            )
        if kind is Kind.REQUEST and payload["method"] == "initialize":
            return await _initialize(server, request, config, payload, accepts, cors)
    elif any(k is Kind.REQUEST and m["method"] == "initialize" for m, k in zip(items, kinds)):
        return rejection(400, jsonrpc.INVALID_REQUEST, "Invalid Request: initialize must not be part of a batch")

    session = _session_of(server, request, config, id_json)
    if isinstance(session, web.Response):
        return session
    access_log.session_era(request, session.protocol_version)
    upstream = await server.ready_upstream(config, id_json)
    if isinstance(upstream, web.Response):
        return upstream

    answers = sum(1 for k in kinds if k is Kind.REQUEST or isinstance(k, str))
    channel = Channel(expected=answers)
    channel.call = call
    bridge_ids: list[int] = []
    for msg, kind in zip(items, kinds):
        bridge_id = upstream.forward(session, msg, kind, channel)
        if bridge_id is not None:
            bridge_ids.append(bridge_id)
    if answers == 0:
        return web.Response(status=202)
    try:
        await upstream.drain()
        return await _answer(request, session, channel, accepts, is_batch, config, cors)
    finally:
        upstream.abandon(bridge_ids)


async def _initialize(
    server: ServedServer,
    request: web.BaseRequest,
    config: BridgeConfig,
    msg: dict,
    accepts: Accepts,
    cors: dict,
) -> web.StreamResponse:
    # A session id sent along is ignored: initialize always starts a new session.
    id_json = jsonrpc.id_of(msg)
    upstream = await server.ready_upstream(config, id_json)
    if isinstance(upstream, web.Response):
        return upstream
    try:
        params = msg.get("params")
        capabilities = params.get("capabilities") if isinstance(params, dict) else None
        session, evicted = server.sessions.create(STREAMABLE_HTTP, "", client_of(request, config), capabilities)
    except SessionLimit as limit:
        message = f"MCP server '{server.server_id}': {limit.reason}"
        return rejection(limit.status, jsonrpc.TRANSPORT_ERROR, message, id_json=id_json)
    if evicted is not None:
        upstream.drop_session(evicted, "session evicted: too many sessions")
    answer = upstream.initialize_answer(session, jsonrpc.dumps(msg["id"]), msg.get("params"))
    headers = {SESSION_HEADER: session.id, **cors}
    if accepts.json:
        return json_response(answer, headers)
    response = sse_response(headers)
    try:
        await response.prepare(request)
        await response.write(sse_event(answer))
        await response.write_eof()
    except ConnectionError:
        server.end_session(session, "the client left during initialize")
    return response


async def _answer(
    request: web.BaseRequest,
    session: Optional[HttpSession],
    channel: Channel,
    accepts: Accepts,
    is_batch: bool,
    config: BridgeConfig,
    cors: dict,
    status_of: Optional[Callable[[bytes], int]] = None,
) -> web.StreamResponse:
    """JSON while only responses come; an SSE stream once anything else must go first.
    `status_of`: the HTTP status of a JSON answer (200 when not given)."""
    ready: list[bytes] = []
    if accepts.sse and not accepts.json:
        return await _stream(request, channel, ready, config, cors)
    while True:
        item = channel.pop()
        if item is None:
            if channel.closed:
                break
            if await channel.wait(config.sse_keepalive_seconds):
                continue
            if accepts.sse:  # a long call: keep the connection visibly alive
                return await _stream(request, channel, ready, config, cors)
            continue
        data, final = item
        if final:
            ready.append(data)
        elif accepts.sse:
            ready.append(data)
            return await _stream(request, channel, ready, config, cors)
        elif session is not None and session.stream is not None:  # JSON only: side messages take the standing stream
            session.stream.put(data)
    body = ready[0] if not is_batch else b"[" + b",".join(ready) + b"]"
    return json_response(body, cors, status=status_of(body) if status_of is not None else 200)


async def _stream(
    request: web.BaseRequest, channel: Channel, ready: list[bytes], config: BridgeConfig, cors: dict
) -> web.StreamResponse:
    # A client that leaves has its pending requests abandoned by the caller.
    if ready:
        first = b"".join(sse_event(d) for d in ready)
        if channel.call is not None:
            channel.call.first = time.perf_counter()
    else:
        first = KEEPALIVE
    return await stream_channel(request, channel, config.sse_keepalive_seconds, cors, first)


async def _get(server: ServedServer, request: web.BaseRequest, config: BridgeConfig, cors: dict) -> web.StreamResponse:
    if not parse_accept(request.headers.get("Accept")).sse:
        return rejection(406, jsonrpc.TRANSPORT_ERROR, "Not Acceptable: the GET stream is text/event-stream")
    problem = _version_problem(request)
    if problem is not None:
        return problem
    session = _session_of(server, request, config)
    if isinstance(session, web.Response):
        return session
    channel = Channel(limit=STREAM_BACKLOG)
    replaced = server.sessions.open_stream(session, channel)
    if replaced is not None:
        replaced.close()  # one standing stream per session: the newest wins
    server.traffic.streams += 1
    try:
        return await stream_channel(request, channel, config.sse_keepalive_seconds, cors)
    finally:
        server.traffic.streams -= 1
        server.sessions.close_stream(session, channel)


def _delete(server: ServedServer, request: web.BaseRequest, config: BridgeConfig) -> web.Response:
    session = _session_of(server, request, config)
    if isinstance(session, web.Response):
        return session
    server.end_session(session, "the client terminated the session")
    return web.Response(status=204)
