"""Sessions that follow their owner (`[cluster] engine = swarm`).

A handshake-era session lives on the node whose bridge answered its `initialize` (or
opened its legacy SSE stream): its owner, named in the session id and signed with the
cluster's key (sessions.SessionIds), so no client can point a request at another node
by forging one. The ALB keeps a client on its node by cookie, but a client that loses
the cookie, or a node that leaves the target group, sends the next request elsewhere:
that node forwards it to the owner over the cluster network, at the same port and path,
and streams the owner's answer back. Only when the owner is gone (not a ready node of
the swarm, or not answering) does the client get the transport's 404, on which it
initializes again; a 2026-07-28 request holds no session and is served wherever it lands.

A forwarded request carries FORWARDED_BY, and is never forwarded again.
"""

from __future__ import annotations

import logging
from typing import Mapping, Optional

import aiohttp
from aiohttp import web

from . import jsonrpc
from .config import BridgeConfig
from .http_common import SESSION_HEADER, rejection
from .proxy import forwarded_headers, relay
from .served import ServedServer

log = logging.getLogger(__name__)

FORWARDED_BY = "X-MCP-Orchestrator-Forwarded-By"
# An owner is named by the start of its Swarm node id: unique enough within one swarm.
OWNER_CHARS = 12


def short_node_id(node_id: str) -> str:
    return node_id[:OWNER_CHARS]


def session_id_of(request: web.BaseRequest, endpoint: str) -> Optional[str]:
    """The session a request belongs to: the Streamable HTTP header, or the legacy
    messages endpoint's query parameter."""
    if endpoint == "mcp":
        return request.headers.get(SESSION_HEADER)
    if endpoint == "messages":
        return request.query.get("sessionId") or request.query.get("session_id")
    return None


def gone(reason: str) -> web.Response:
    """The transport's answer to a session nobody holds any more: initialize again."""
    return rejection(404, jsonrpc.TRANSPORT_ERROR, f"Session not found: {reason}; initialize a new one")


def owner_elsewhere(server: ServedServer, request: web.BaseRequest, session_id: str, me: str) -> Optional[str]:
    """The owner of the request's session when that is another node and this one does
    not hold it; None when the request is this node's to answer."""
    if request.headers.get(FORWARDED_BY) or server.sessions.holds(session_id):
        return None
    owner = server.sessions.owner_of(session_id)
    return owner if owner and owner != me else None


async def forward(
    server: ServedServer,
    request: web.BaseRequest,
    owner: str,
    peers: Mapping[str, str],
    config: BridgeConfig,
    client: aiohttp.ClientSession,
    cors: dict,
) -> web.StreamResponse:
    """The request answered by its session's owner (`peers`: short node id -> address)."""
    address = peers.get(owner)
    if not address:
        return gone(f"the host that held it ({owner}) has left the swarm")
    host = f"[{address}]" if ":" in address else address
    url = f"http://{host}:{server.port}{request.raw_path}"
    # The owner checks the client's token itself: the Authorization header goes along.
    headers = forwarded_headers(request, drop_authorization=False)
    headers[FORWARDED_BY] = config.node

    def unreachable(why: str) -> web.Response:
        return gone(f"the host that held it ({owner}) does not answer ({why})")

    log.debug("server %s: a request of a session of %s forwarded there", server.server_id, owner)
    return await relay(server, request, url, headers, config, client, cors, None, unreachable)
