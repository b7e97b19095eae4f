"""One line per MCP request: which server, which MCP method and tool, which era, how it
ended and how long it took, and its W3C trace context; never arguments or results.

The transports note what they parsed on the aiohttp request (`note`: a traffic.Call,
counted in the server's traffic too); the bridge's handler writes the line when the
response is done (`write`). The logger is
`services.container_agent.bridge.access`, at `[bridge] access_log_level` (info by
default, off to silence it).
"""

from __future__ import annotations

import logging
import re
from typing import Any, Mapping, Optional

from .traffic import CALL, ERROR, Call, ServerTraffic, outcome_of_status

ACCESS = logging.getLogger("services.container_agent.bridge.access")
# The W3C header; anything else is not logged (a log line is no place for free text).
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
_NAMED = {"tools/call", "prompts/get"}  # the name is logged; a resource URI may hold anything
LEVELS = {"off": None, "debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_level: Optional[int] = logging.INFO


def configure(level: str) -> None:
    """The level the lines are written at ("off": none)."""
    global _level
    _level = LEVELS[level]


def enabled() -> bool:
    return _level is not None and ACCESS.isEnabledFor(_level)


def _clean(text: str, limit: int) -> str:
    """Printable, no spaces: one field of one line, whatever a client sent."""
    text = text[:limit]
    if text.isascii() and text.isprintable() and " " not in text:  # the usual case, in C
        return text
    return "".join(c if c.isprintable() and not c.isspace() else "_" for c in text)


def traceparent(headers: Mapping[str, str], msg: Any) -> Optional[str]:
    """The request's trace context: `traceparent` in its `_meta`, else the HTTP header."""
    params = msg.get("params") if isinstance(msg, dict) else None
    meta = params.get("_meta") if isinstance(params, dict) else None
    value = meta.get("traceparent") if isinstance(meta, dict) else None
    if not isinstance(value, str):
        value = headers.get("traceparent")
    return value if isinstance(value, str) and _TRACEPARENT.match(value) else None


def carry_trace(headers: Mapping[str, str], msg: Any) -> None:
    """A trace context sent as HTTP headers goes on with the request, in its `_meta`
    (the stdio server has no headers); one already in `_meta` is left as it is."""
    parent = headers.get("traceparent")
    if parent is None or not isinstance(msg, dict) or not _TRACEPARENT.match(parent):
        return
    params = msg.get("params")
    if params is None:
        params = msg["params"] = {}
    if not isinstance(params, dict):
        return
    meta = params.get("_meta")
    if meta is None:
        meta = params["_meta"] = {}
    if isinstance(meta, dict) and "traceparent" not in meta:
        meta["traceparent"] = parent
        state = headers.get("tracestate")
        if state is not None and len(state) <= 512:
            meta.setdefault("tracestate", state)


def note(traffic: ServerTraffic, request: Any, msg: Any, era: str) -> Call:
    """The MCP message a request carried (a batch: its size), for the access line and
    the server's traffic numbers."""
    if isinstance(msg, list):
        return traffic.note(request, "batch", "", era)
    method = msg.get("method") if isinstance(msg, dict) else None
    if not isinstance(method, str):
        method = "response" if isinstance(msg, dict) and "id" in msg else "?"
    params = msg.get("params") if isinstance(msg, dict) else None
    name = params.get("name") if method in _NAMED and isinstance(params, dict) else None
    return traffic.note(
        request,
        _clean(method, 60),
        _clean(name, 100) if isinstance(name, str) else "",
        era,
        traceparent(request.headers, msg) if _level is not None else None,
    )


def session_era(request: Any, version: str) -> None:
    """The era of a session's request is the revision its session negotiated."""
    call = request.get(CALL)
    if call is not None and version:
        call.era = version


def _result(call: Optional[Call], status: int) -> str:
    outcome = call.outcome if call is not None and call.outcome is not None else outcome_of_status(status)
    return f"{outcome}({call.code})" if call is not None and call.code is not None and outcome == ERROR else outcome


def write(server_id: str, request: Any, status: int, seconds: float, client: str) -> None:
    if _level is None:
        return
    call = request.get(CALL)
    method, name, era, trace = (
        (call.method, call.tool, call.era, call.trace) if call is not None else ("", "", "", None)
    )
    line = (
        f"{server_id} {request.method} {_clean(request.path.rsplit('/', 1)[-1], 20)} {method or '-'}"
        f"{' ' + name if name else ''} era={era or '-'} status={status} result={_result(call, status)} "
        f"{seconds * 1000:.1f}ms client={client}{' traceparent=' + trace if trace else ''}"
    )
    # A record made here, not by Logger.log: one per request, and where it was logged
    # from (the caller's frame, which Logger.log looks up) says nothing.
    ACCESS.handle(ACCESS.makeRecord(ACCESS.name, _level, "", 0, line, None, None))
