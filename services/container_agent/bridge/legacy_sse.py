"""`/mcp/{id}/sse` and `/mcp/{id}/messages`: the HTTP+SSE transport of MCP 2024-11-05.

The GET opens a session whose stream carries everything for it; its first event,
`endpoint`, names the full prefixed path to POST messages to (the ALB forwards
paths unchanged, so a bare `/messages` would reach nothing). A POST is accepted
with 202 and answered on the stream. The session ends with its stream.
"""

from __future__ import annotations

from aiohttp import web

from common import server_ids

from . import access_log, jsonrpc
from .channel import Channel
from .config import BridgeConfig
from .http_common import (
    client_of,
    json_response,
    method_not_allowed,
    read_json,
    rejection,
    sse_event,
    stream_channel,
    unsupported_media_type,
)
from .jsonrpc import Kind
from .served import ServedServer
from .sessions import LEGACY_SSE, STREAM_BACKLOG, SessionLimit
from .versions import LEGACY_SSE_VERSION


async def handle_stream(
    server: ServedServer, request: web.BaseRequest, config: BridgeConfig, cors: dict
) -> web.StreamResponse:
    if request.method != "GET":
        return method_not_allowed("GET")
    upstream = await server.ready_upstream(config)
    if isinstance(upstream, web.Response):
        return upstream
    try:
        session, evicted = server.sessions.create(LEGACY_SSE, LEGACY_SSE_VERSION, client_of(request, config))
    except SessionLimit as limit:
        return rejection(limit.status, jsonrpc.TRANSPORT_ERROR, f"MCP server '{server.server_id}': {limit.reason}")
    if evicted is not None:
        upstream.drop_session(evicted, "session evicted: too many sessions")
    channel = Channel(limit=STREAM_BACKLOG)
    server.sessions.open_stream(session, channel)
    endpoint = f"{server_ids.messages_path(server.server_id)}?sessionId={session.id}"
    server.traffic.streams += 1
    try:
        first = sse_event(endpoint.encode(), b"endpoint")
        return await stream_channel(request, channel, config.sse_keepalive_seconds, cors, first)
    finally:
        server.traffic.streams -= 1
        server.end_session(session, "the SSE stream closed")


async def handle_post(server: ServedServer, request: web.BaseRequest, config: BridgeConfig) -> web.Response:
    if request.method != "POST":
        return method_not_allowed("POST")
    session_id = request.query.get("sessionId") or request.query.get("session_id")
    if not session_id:
        return rejection(
            400, jsonrpc.TRANSPORT_ERROR, "Bad Request: no sessionId query parameter; open the SSE stream first"
        )
    session = server.sessions.get(session_id)
    if session is None or session.transport != LEGACY_SSE or session.stream is None:
        return rejection(404, jsonrpc.TRANSPORT_ERROR, "Session not found: its SSE stream is closed; open a new one")
    problem = unsupported_media_type(request)
    if problem is not None:
        return problem
    payload = await read_json(request, config.max_body_bytes)
    if isinstance(payload, web.Response):
        return payload
    access_log.note(server.traffic, request, payload, LEGACY_SSE_VERSION)
    items = payload if isinstance(payload, list) else [payload]
    kinds = [jsonrpc.classify(m) for m in items]
    if not items or (len(items) == 1 and isinstance(kinds[0], str)):
        reason = kinds[0] if items else "an empty batch"
        return json_response(
            jsonrpc.error(jsonrpc.id_of(payload), jsonrpc.INVALID_REQUEST, f"Invalid Request: {reason}"), status=400
        )
    upstream = await server.ready_upstream(config)
    if isinstance(upstream, web.Response):
        return upstream
    stream = session.stream
    if stream is None:
        return rejection(404, jsonrpc.TRANSPORT_ERROR, "Session not found: its SSE stream is closed; open a new one")
    for msg, kind in zip(items, kinds):
        if kind is Kind.REQUEST and msg["method"] == "initialize":
            stream.put(upstream.initialize_answer(session, jsonrpc.dumps(msg["id"]), msg.get("params")), final=True)
        else:
            upstream.forward(session, msg, kind, stream)
    await upstream.drain()
    return web.Response(status=202, text="Accepted")
