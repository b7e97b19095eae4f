"""View models of what the bridges served (pure): the overview's numbers per server and
a server page's charts, tools, prompts, resources and recent calls.

The numbers come from the bridge's traffic report (protocol.TrafficReport), passed on
by the scheduler; when it cannot be had, views say why and show the rest as usual.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Optional

from common.protocol import ServerTrafficReport, to_plain
from services.dashboard.control import TrafficResult
from services.dashboard.views import format_time


def status(result: TrafficResult) -> dict:
    """Whether traffic numbers are known, and why not."""
    return {"available": result.report is not None, "error": result.error}


def by_server(result: TrafficResult) -> dict[str, ServerTrafficReport]:
    if result.report is None:
        return {}
    return {s.server_id: s for s in result.report.servers}


def summary(report: Optional[ServerTrafficReport]) -> Optional[dict]:
    """An overview row's numbers: the last minutes, and the chart's calls and errors."""
    if report is None:
        return None
    w = report.window
    return {
        "window_seconds": w.seconds,
        "calls": w.calls,
        "errors": w.errors,
        "calls_per_minute": w.calls_per_minute,
        "error_rate": w.error_rate,
        "p50_ms": w.p50_ms,
        "p95_ms": w.p95_ms,
        "bucket_seconds": report.bucket_seconds,
        "calls_series": list(report.series.calls),
        "errors_series": list(report.series.errors),
    }


def detail(report: Optional[ServerTrafficReport]) -> Optional[dict]:
    """A server page's traffic: the summary, the charts' points, each tool's numbers,
    the recent calls (newest first) and what the server offers."""
    if report is None:
        return None
    plain = to_plain(report)
    catalog = plain.get("catalog") or {"tools": [], "prompts": [], "resources": [], "error": "not read"}
    tools = [
        {
            "name": t["name"],
            "title": t["title"],
            "description": t["description"],
            "input_schema": _schema(t["input_schema_json"]),
            "input_schema_text": t["input_schema_json"],
        }
        for t in catalog["tools"]
    ]
    return {
        **(summary(report) or {}),
        "now": report.now,
        "series": _points(plain["series"], report.bucket_seconds),
        "p95_series": list(report.series.p95_ms),
        "tools": [dict(t, series=_points(t["series"], report.bucket_seconds)) for t in plain.get("tools") or []],
        "recent": [dict(c, time=format_time(c["t"]), clock=_clock(c["t"])) for c in plain.get("recent") or []],
        "catalog": {
            "tools": tools,
            "prompts": catalog["prompts"],
            "resources": catalog["resources"],
            "error": catalog["error"],
        },
    }


def _points(series: dict, bucket_seconds: int) -> list[dict]:
    """A chart's columns as points, each with its time (the JSON twin's shape)."""
    return [
        {"t": t, "time": format_time(t), "calls": c, "errors": e, "p95_ms": p}
        for t, c, e, p in zip(
            (series["start"] + i * bucket_seconds for i in range(len(series["calls"]))),
            series["calls"],
            series["errors"],
            series["p95_ms"],
        )
    ]


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%H:%M:%S")


def _schema(text: str) -> Any:
    """The input schema as an object for the JSON twin; the text when it was cut."""
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def with_overview(view: dict, result: TrafficResult) -> dict:
    """The overview with each row's numbers (None: the bridge serves it not) and the
    traffic status."""
    reports = by_server(result)
    for row in view["servers"]:
        row["traffic"] = summary(reports.get(row["server_id"]))
    view["traffic"] = status(result)
    return view


def with_detail(view: dict, result: TrafficResult) -> dict:
    reports = by_server(result)
    view["traffic"] = detail(reports.get(view["server_id"]))
    view["traffic_status"] = status(result)
    return view
