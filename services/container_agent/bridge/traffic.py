"""What the bridge serves, counted per server: the numbers behind the container-agent's
/metrics, the dashboard's charts and its list of recent calls.

A transport notes the MCP request it parsed (`ServerTraffic.note` returns a `Call`,
kept on the aiohttp request), the upstream says how it ended (`settle`, on the
request's channel), and the bridge's handler records it once the response is sent.
Everything runs on the bridge's event loop: plain counters, no lock; readers take a
snapshot on that loop. Labels are bounded: unknown methods and eras are "other", and
a server counts at most MAX_TOOLS tool names (then "other").
"""

from __future__ import annotations

import json
import re
import time
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass
from typing import Any, Optional

from aiohttp import web

from .era import MODERN_VERSIONS

# Upper bounds of the latency histograms, in seconds (Prometheus' "le").
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SERIES_SECONDS = 10  # one dashboard chart point
SERIES_LENGTH = 60  # points kept: the last ten minutes
WINDOW_SECONDS = 300  # the overview's "last minutes"
RECENT_CALLS = 50
MAX_TOOLS = 128

OK = "ok"
TOOL_ERROR = "tool_error"  # a tools/call result with isError: the tool ran and failed
ERROR = "error"  # a JSON-RPC error answer (its code is counted apart)
TIMEOUT = "timeout"
CANCELLED = "cancelled"
UNAVAILABLE = "unavailable"  # the server was down or went away
REJECTED = "rejected"  # refused by the bridge before it reached the server (4xx)
UNAUTHORIZED = "unauthorized"
OUTCOMES = (OK, TOOL_ERROR, ERROR, TIMEOUT, CANCELLED, UNAVAILABLE, REJECTED, UNAUTHORIZED)

METHODS = frozenset(
    {
        "initialize",
        "ping",
        "server/discover",
        "tools/list",
        "tools/call",
        "prompts/list",
        "prompts/get",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "subscriptions/listen",
        "completion/complete",
        "logging/setLevel",
        "notification",
        "response",
        "batch",
        "http",
    }
)
ERAS = frozenset({"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "handshake", "http", *MODERN_VERSIONS})
OTHER = "other"

CALL: web.RequestKey["Call"] = web.RequestKey("mcp.call", object)  # type: ignore[arg-type]


class Histogram:
    """Counts per BUCKETS bound (the last: above them all), their sum and count."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds

    def add(self, other: "Histogram") -> None:
        for i, n in enumerate(other.counts):
            self.counts[i] += n
        self.total += other.total


def quantile_ms(counts: list[int], q: float) -> Optional[float]:
    """The q-quantile in milliseconds, interpolated inside its bucket as Prometheus'
    histogram_quantile does; None without observations. Above the last bound: that bound."""
    n = sum(counts)
    if not n:
        return None
    rank = q * n
    seen = 0
    for i, count in enumerate(counts):
        if seen + count >= rank and count:
            if i == len(BUCKETS):
                return BUCKETS[-1] * 1000
            low = BUCKETS[i - 1] if i else 0.0
            return round((low + (BUCKETS[i] - low) * (rank - seen) / count) * 1000, 3)
        seen += count
    return BUCKETS[-1] * 1000


class Series:
    """Calls, errors and latencies in SERIES_SECONDS buckets, the last SERIES_LENGTH."""

    __slots__ = ("_buckets",)

    def __init__(self) -> None:
        self._buckets: deque = deque(maxlen=SERIES_LENGTH)  # [slot, calls, errors, counts]

    def add(self, now: float, seconds: float, error: bool) -> None:
        slot = int(now // SERIES_SECONDS)
        if not self._buckets or self._buckets[-1][0] != slot:
            self._buckets.append([slot, 0, 0, [0] * (len(BUCKETS) + 1)])
        bucket = self._buckets[-1]
        bucket[1] += 1
        bucket[2] += error
        bucket[3][bisect_left(BUCKETS, seconds)] += 1

    def columns(self, now: float) -> dict:
        """The last SERIES_LENGTH buckets, oldest first, empty ones as zeros, as columns
        (protocol.TrafficSeries): one record per chart, not one per point."""
        last = int(now // SERIES_SECONDS)
        first = last - SERIES_LENGTH + 1
        calls = [0] * SERIES_LENGTH
        errors = [0] * SERIES_LENGTH
        p95: list[Optional[float]] = [None] * SERIES_LENGTH
        for slot, c, e, h in self._buckets:
            if slot >= first:
                i = slot - first
                calls[i], errors[i], p95[i] = c, e, quantile_ms(h, 0.95)
        return {"start": float(first * SERIES_SECONDS), "calls": calls, "errors": errors, "p95_ms": p95}

    def window(self, now: float, seconds: int) -> tuple[int, int, list[int]]:
        """Calls, errors and latency counts of the buckets that started in the last `seconds`."""
        first = int((now - seconds) // SERIES_SECONDS) + 1
        calls = errors = 0
        counts = [0] * (len(BUCKETS) + 1)
        for slot, c, e, h in self._buckets:
            if slot >= first:
                calls += c
                errors += e
                for i, n in enumerate(h):
                    counts[i] += n
        return calls, errors, counts


class ToolStats:
    __slots__ = ("outcomes", "duration", "series")

    def __init__(self) -> None:
        self.outcomes: dict[str, int] = {}
        self.duration = Histogram()
        self.series = Series()


class Call:
    """One MCP request, from its arrival to its answer (as the client sent it: the
    labels are bounded when it is recorded)."""

    __slots__ = ("traffic", "method", "tool", "era", "trace", "first", "outcome", "code")

    def __init__(self, traffic: "ServerTraffic", method: str, tool: str, era: str, trace: Optional[str]) -> None:
        self.traffic = traffic
        self.method = method
        self.tool = tool
        self.era = era
        self.trace = trace
        self.first: Optional[float] = None  # perf_counter() at the first MCP message sent back
        self.outcome: Optional[str] = None  # set by the upstream; else from the HTTP status
        self.code: Optional[int] = None  # the JSON-RPC error code of an ERROR


def settle(channel: Any, outcome: str, code: Optional[int] = None) -> None:
    """How the request answered on `channel` ended (the upstream knows, the handler records)."""
    call = channel.call
    if call is not None:
        call.outcome = outcome
        call.code = code


def outcome_of_status(status: int) -> str:
    if status < 400:
        return OK
    if status in (401, 403):
        return UNAUTHORIZED
    if status == 503:
        return UNAVAILABLE
    if status == 504:
        return TIMEOUT
    return REJECTED if status < 500 else ERROR


@dataclass(frozen=True)
class Sample:
    """One server's numbers at one moment, taken on the loop for a reader elsewhere."""

    counts: dict  # ServerTraffic.counts()
    sessions: int
    streams: int
    in_flight: int
    stdio_queue_bytes: int
    up: bool


class ServerTraffic:
    """One served server's numbers, since the container-agent started."""

    def __init__(self, server_id: str) -> None:
        self.server_id = server_id
        self.requests: dict[tuple[str, str, str], int] = {}  # (method, era, outcome)
        self.errors: dict[tuple[str, int], int] = {}  # (method, JSON-RPC code)
        self.duration: dict[str, Histogram] = {}
        self.first_byte: dict[str, Histogram] = {}
        self.tools: dict[str, ToolStats] = {}
        self.refused: dict[int, int] = {}  # HTTP status of requests refused before an MCP message was read
        self.health: dict[int, int] = {}  # HTTP status of /health answers
        self.bytes_in = 0
        self.bytes_out = 0
        self.streams = 0  # GET streams open now (listen streams are counted by the server)
        self.series = Series()
        self.recent: deque = deque(maxlen=RECENT_CALLS)

    # --- the hot path ---------------------------------------------------------------

    def note(self, request: Any, method: str, tool: str, era: str, trace: Optional[str] = None) -> Call:
        call = request[CALL] = Call(self, method, tool, era, trace)
        return call

    def record(self, call: Call, status: int, seconds: float, first: Optional[float], sent: int, got: int) -> None:
        """A request answered: `seconds` from its arrival, `first` to the first MCP
        message sent back (None: as `seconds`), `sent`/`got` body bytes out and in."""
        outcome = call.outcome if call.outcome is not None else outcome_of_status(status)
        call.outcome = outcome  # for the access line
        method = call.method
        if method not in METHODS:
            method = "notification" if method.startswith("notifications/") else OTHER
        era = call.era if call.era in ERAS else OTHER
        key = (method, era, outcome)
        self.requests[key] = self.requests.get(key, 0) + 1
        if call.code is not None and outcome == ERROR:
            code_key = (method, call.code)
            self.errors[code_key] = self.errors.get(code_key, 0) + 1
        histogram = self.duration.get(method)
        if histogram is None:
            histogram = self.duration[method] = Histogram()
            self.first_byte[method] = Histogram()
        histogram.observe(seconds)
        self.first_byte[method].observe(seconds if first is None else first)
        self.bytes_in += got
        self.bytes_out += sent
        if method in ("notification", "response"):
            return  # not calls: no chart point, no line in the recent calls
        now = time.time()
        error = outcome != OK
        self.series.add(now, seconds, error)
        tool = call.tool
        if tool:
            stats = self.tools.get(tool)
            if stats is None:
                if len(self.tools) >= MAX_TOOLS:
                    tool = OTHER
                    stats = self.tools.get(OTHER)
                if stats is None:
                    stats = self.tools[tool] = ToolStats()
            stats.outcomes[outcome] = stats.outcomes.get(outcome, 0) + 1
            stats.duration.observe(seconds)
            stats.series.add(now, seconds, error)
        self.recent.append((now, method, tool, era, outcome, status, seconds))

    def refusal(self, status: int) -> None:
        self.refused[status] = self.refused.get(status, 0) + 1

    def health_check(self, status: int) -> None:
        self.health[status] = self.health.get(status, 0) + 1

    # --- readers (on the loop) ------------------------------------------------------

    def counts(self) -> dict:
        """A copy of the counters (histograms as (bucket counts, sum))."""
        return {
            "server_id": self.server_id,
            "requests": dict(self.requests),
            "errors": dict(self.errors),
            "duration": {m: (list(h.counts), h.total) for m, h in self.duration.items()},
            "first_byte": {m: (list(h.counts), h.total) for m, h in self.first_byte.items()},
            "tools": {t: (dict(s.outcomes), list(s.duration.counts), s.duration.total) for t, s in self.tools.items()},
            "refused": dict(self.refused),
            "health": dict(self.health),
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
        }

    def report(self, detail: bool, catalog: Optional[dict] = None) -> dict:
        """The dashboard's view: the chart series, the last minutes; with `detail` the
        tools' numbers, the recent calls and `catalog`."""
        now = time.time()
        calls, errors, counts = self.series.window(now, WINDOW_SECONDS)
        report: dict[str, Any] = {
            "server_id": self.server_id,
            "bucket_seconds": SERIES_SECONDS,
            "now": now,
            "series": self.series.columns(now),
            "window": {
                "seconds": WINDOW_SECONDS,
                "calls": calls,
                "errors": errors,
                "calls_per_minute": round(calls * 60 / WINDOW_SECONDS, 2),
                "error_rate": round(errors / calls, 4) if calls else 0.0,
                "p50_ms": quantile_ms(counts, 0.5),
                "p95_ms": quantile_ms(counts, 0.95),
            },
        }
        if detail:
            report["tools"] = [
                {
                    "tool": name,
                    "calls": sum(stats.outcomes.values()),
                    "errors": sum(n for outcome, n in stats.outcomes.items() if outcome != OK),
                    "p50_ms": quantile_ms(stats.duration.counts, 0.5),
                    "p95_ms": quantile_ms(stats.duration.counts, 0.95),
                    "series": stats.series.columns(now),
                }
                for name, stats in sorted(self.tools.items())
            ]
            report["recent"] = [
                {
                    "t": t,
                    "method": method,
                    "tool": tool,
                    "era": era,
                    "outcome": outcome,
                    "status": status,
                    "ms": round(seconds * 1000, 3),
                }
                for t, method, tool, era, outcome, status, seconds in reversed(self.recent)
            ]
            report["catalog"] = catalog if catalog is not None else empty_catalog("not read")
        return report


def empty_catalog(error: Optional[str]) -> dict:
    return {"tools": [], "prompts": [], "resources": [], "error": error}


def catalog_of(lists: dict[str, Optional[dict]], error: Optional[str] = None) -> dict:
    """The dashboard's tool, prompt and resource lists from the server's list results
    (method -> result, None when the server has no such list), in the shape of
    protocol.Catalog. A server's lists are its own to fill: every text is cut to a
    bound, each list to CATALOG_ITEMS, an input schema travels as indented JSON text
    (of any depth) of at most SCHEMA_CHARS, and descriptions and schemas together stop
    at CATALOG_CHARS (well inside a message)."""
    cut: list[str] = []
    budget = [CATALOG_CHARS]

    def spend(text: str) -> str:
        if len(text) > budget[0]:
            if budget[0] >= 0:
                cut.append(f"descriptions and schemas past {CATALOG_CHARS} characters left out")
                budget[0] = -1
            return ""
        budget[0] -= len(text)
        return text

    def items(method: str, key: str) -> list[dict]:
        result = lists.get(method)
        found = result.get(key) if isinstance(result, dict) else None
        kept = [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []
        if len(kept) > CATALOG_ITEMS:
            cut.append(f"{len(kept)} {key}, the first {CATALOG_ITEMS} shown")
        return kept[:CATALOG_ITEMS]

    def tools() -> list[dict]:
        return [
            {
                "name": _text(t.get("name"), NAME_CHARS),
                "title": _text(t.get("title"), NAME_CHARS) or None,
                "description": spend(_text(t.get("description"), TEXT_CHARS)),
                "input_schema_json": spend(_schema_text(t.get("inputSchema"))),
            }
            for t in items("tools/list", "tools")
        ]

    def prompts() -> list[dict]:
        return [
            {
                "name": _text(p.get("name"), NAME_CHARS),
                "description": spend(_text(p.get("description"), TEXT_CHARS)),
                "arguments": [
                    {
                        "name": _text(a.get("name"), NAME_CHARS),
                        "description": spend(_text(a.get("description"), TEXT_CHARS)),
                        "required": a.get("required") is True,
                    }
                    for a in (p.get("arguments") if isinstance(p.get("arguments"), list) else [])[:CATALOG_ITEMS]
                    if isinstance(a, dict)
                ],
            }
            for p in items("prompts/list", "prompts")
        ]

    def resources() -> list[dict]:
        return [
            {
                "name": _text(r.get("name"), NAME_CHARS),
                "uri": spend(_text(r.get("uri"), TEXT_CHARS)),
                "description": spend(_text(r.get("description"), TEXT_CHARS)),
                "mime_type": _text(r.get("mimeType"), NAME_CHARS) or None,
            }
            for r in items("resources/list", "resources")
        ]

    catalog = {"tools": tools(), "prompts": prompts(), "resources": resources()}
    catalog["error"] = "; ".join(([error] if error else []) + cut) or None
    return catalog


CATALOG_ITEMS = 500  # per list
NAME_CHARS = 200
TEXT_CHARS = 2000
SCHEMA_CHARS = 16384
CATALOG_CHARS = 1_000_000


def _text(value: Any, limit: int) -> str:
    if not isinstance(value, str):
        return ""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _schema_text(schema: Any) -> str:
    if not isinstance(schema, dict):
        return ""
    try:
        text = json.dumps(schema, indent=2, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return ""
    if len(text) > SCHEMA_CHARS:
        return text[:SCHEMA_CHARS] + f"\n… ({len(text)} characters, the first {SCHEMA_CHARS} shown)"
    return text


_ERROR_AT = b',"error":'
_CODE = re.compile(rb',"error":\{"code":(-?\d{1,9})[,}]')
_TOOL_FAILED = b'"isError":true'


def fast_outcome(line: bytes, rest: int, tool_call: bool) -> tuple[str, Optional[int]]:
    """How a response in the canonical form ended, without parsing it: `rest` is where
    `,"result":` or `,"error":` starts (see jsonrpc.fast_response_id)."""
    if line.startswith(_ERROR_AT, rest):
        found = _CODE.match(line, rest)
        return ERROR, int(found.group(1)) if found else None
    if tool_call and _TOOL_FAILED in line:
        return TOOL_ERROR, None
    return OK, None


def outcome_of(msg: dict, tool_call: bool) -> tuple[str, Optional[int]]:
    """How a parsed response ended."""
    error = msg.get("error")
    if error is not None:
        code = error.get("code") if isinstance(error, dict) else None
        return ERROR, code if type(code) is int else None
    result = msg.get("result")
    if tool_call and isinstance(result, dict) and result.get("isError") is True:
        return TOOL_ERROR, None
    return OK, None
