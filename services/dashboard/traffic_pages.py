"""The HTML of what the bridges served: the overview's columns and a server page's
traffic, tools, prompts, resources and recent calls (from traffic_view's models)."""

from __future__ import annotations

from typing import Any, Optional

from services.dashboard.charts import bar_chart, line_chart, sparkline
from services.dashboard.htmlkit import Html, html, join, show

OVERVIEW_HEADERS = Html("<th>Calls/min</th><th>Errors</th><th>p95</th><th>Last 10 min</th>")


def ms(value: Optional[float]) -> Html:
    if value is None:
        return show(None)
    if value >= 1000:
        return html("{} s", f"{value / 1000:.2f}")
    return html("{} ms", f"{value:.1f}" if value < 100 else f"{value:.0f}")


def percent(rate: float, calls: int) -> Html:
    if not calls:
        return show(None)
    return html('<span class="{}">{} %</span>', "err" if rate else "", f"{rate * 100:.1f}".rstrip("0").rstrip("."))


def _minutes(t: dict) -> str:
    """How far back the charts go."""
    return f"{len(t['calls_series']) * t['bucket_seconds'] // 60} min"


def _span(t: dict) -> str:
    return _minutes(t) + " ago"


def overview_cells(t: Optional[dict]) -> Html:
    if t is None:
        return Html('<td class="num">—</td><td class="num">—</td><td class="num">—</td><td></td>')
    return html(
        '<td class="num traffic-rate">{}</td><td class="num traffic-errors">{}</td>'
        '<td class="num traffic-p95">{}</td><td class="traffic-spark">{}</td>',
        f"{t['calls_per_minute']:g}",
        percent(t["error_rate"], t["calls"]),
        ms(t["p95_ms"]),
        sparkline(
            t["calls_series"],
            t["errors_series"],
            label=f"{sum(t['calls_series'])} calls, {sum(t['errors_series'])} failed, in the last {_minutes(t)}",
        ),
    )


def unavailable_note(status: dict, where: str) -> Html:
    if status["available"]:
        return Html("")
    return html(
        '<p class="note" id="traffic-unavailable">Traffic numbers are not available right now{}{}.</p>',
        f" ({status['error']})" if status.get("error") else "",
        where,
    )


# ---------------------------------------------------------------------- a server


def server_traffic(t: Optional[dict], status: dict) -> Html:
    if t is None:
        note = unavailable_note(status, "") or Html(
            '<p class="missing" id="traffic-unavailable">The bridge does not serve this server right now.</p>'
        )
        return html("<section><h2>Traffic</h2>{}</section>", note)
    window = t["window_seconds"] // 60
    tiles = html(
        '<section class="counts" id="traffic-numbers">'
        '<div class="tile"><b id="traffic-calls">{}</b><span>calls, last {} min</span></div>'
        '<div class="tile"><b id="traffic-rate">{}</b><span>calls / min</span></div>'
        '<div class="tile"><b id="traffic-errors">{}</b><span>errors</span></div>'
        '<div class="tile"><b id="traffic-p50">{}</b><span>p50</span></div>'
        '<div class="tile"><b id="traffic-p95">{}</b><span>p95</span></div></section>',
        t["calls"],
        window,
        f"{t['calls_per_minute']:g}",
        percent(t["error_rate"], t["calls"]),
        ms(t["p50_ms"]),
        ms(t["p95_ms"]),
    )
    per = t["bucket_seconds"]
    charts = html(
        '<div class="charts">{}{}</div>',
        bar_chart(
            t["calls_series"],
            t["errors_series"],
            label=f"Calls per {per} s (failed in red)",
            span=_span(t),
            chart_id="chart-calls",
        ),
        line_chart(t["p95_series"], label=f"p95 latency per {per} s", span=_span(t), unit="ms", chart_id="chart-p95"),
    )
    return html(
        "<section><h2>Traffic</h2>{}{}</section>{}{}{}",
        tiles,
        charts,
        _tools(t),
        _prompts_and_resources(t["catalog"]),
        _recent(t["recent"]),
    )


def _tools(t: dict) -> Html:
    catalog = t["catalog"]
    numbers = {row["tool"]: row for row in t["tools"]}
    listed = [tool["name"] for tool in catalog["tools"]]
    # Tools that were called but are not (or no longer) listed still get a row.
    names = listed + sorted(n for n in numbers if n not in set(listed))
    described = {tool["name"]: tool for tool in catalog["tools"]}
    error = html('<p class="note" id="catalog-error">{}</p>', catalog["error"]) if catalog.get("error") else Html("")
    if not names:
        return html('<section><h2>Tools</h2>{}<p class="missing" id="tools">No tools listed.</p></section>', error)
    rows = join(_tool_row(i, name, described.get(name), numbers.get(name), t) for i, name in enumerate(names))
    return html(
        '<section><h2>Tools <small class="note">{} listed</small></h2>{}<table id="tools"><thead><tr>'
        "<th>Tool</th><th>Calls</th><th>Errors</th><th>p50</th><th>p95</th><th>Last 10 min</th>"
        "</tr></thead><tbody>{}</tbody></table></section>",
        len(listed),
        error,
        rows,
    )


def _tool_row(i: int, name: str, tool: Optional[dict], n: Optional[dict], t: dict) -> Html:
    about = Html("")
    if tool is not None:
        schema = (
            html(
                '<details id="schema-{}"><summary>Input schema</summary><pre class="schema">{}</pre></details>',
                i,
                tool["input_schema_text"],
            )
            if tool["input_schema_text"]
            else Html("")
        )
        about = html(
            "{}{}{}",
            html(" <small>({})</small>", tool["title"]) if tool.get("title") else Html(""),
            html('<div class="desc">{}</div>', tool["description"]) if tool["description"] else Html(""),
            schema,
        )
    else:
        about = Html(' <small class="note">not in the server\'s list</small>')
    if n is None:
        numbers = Html('<td class="num">0</td><td class="num">—</td><td>—</td><td>—</td><td></td>')
    else:
        series = n["series"]
        numbers = html(
            '<td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td>',
            n["calls"],
            percent(n["errors"] / n["calls"] if n["calls"] else 0.0, n["calls"]),
            ms(n["p50_ms"]),
            ms(n["p95_ms"]),
            sparkline(
                [p["calls"] for p in series],
                [p["errors"] for p in series],
                label=f"{name}: calls per {t['bucket_seconds']} s",
            ),
        )
    return html('<tr data-tool="{}"><td><code>{}</code>{}</td>{}</tr>', name, name, about, numbers)


def _prompts_and_resources(catalog: dict) -> Html:
    prompts = join(
        html(
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            p["name"],
            show(p["description"]),
            show(", ".join(a["name"] + ("" if a["required"] else "?") for a in p["arguments"])),
        )
        for p in catalog["prompts"]
    )
    resources = join(
        html(
            "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            r["name"],
            r["uri"],
            show(r["mime_type"]),
            show(r["description"]),
        )
        for r in catalog["resources"]
    )
    return html(
        '<div class="cols"><section><h2>Prompts</h2>{}</section><section><h2>Resources</h2>{}</section></div>',
        html(
            '<table id="prompts"><thead><tr><th>Prompt</th><th>Description</th><th>Arguments</th></tr></thead>'
            "<tbody>{}</tbody></table>",
            prompts,
        )
        if catalog["prompts"]
        else Html('<p class="missing" id="prompts">No prompts listed.</p>'),
        html(
            '<table id="resources"><thead><tr><th>Name</th><th>URI</th><th>Type</th><th>Description</th></tr>'
            "</thead><tbody>{}</tbody></table>",
            resources,
        )
        if catalog["resources"]
        else Html('<p class="missing" id="resources">No resources listed.</p>'),
    )


def _recent(recent: list[dict]) -> Html:
    if not recent:
        return Html('<section><h2>Recent calls</h2><p class="missing" id="recent-calls">No calls yet.</p></section>')
    rows = join(_recent_row(c) for c in recent)
    return html(
        '<section><h2>Recent calls <small class="note">newest first, no arguments</small></h2>'
        '<table id="recent-calls"><thead><tr><th>Time</th><th>Method</th><th>Tool</th><th>Era</th>'
        "<th>Outcome</th><th>Status</th><th>Duration</th></tr></thead><tbody>{}</tbody></table></section>",
        rows,
    )


def _recent_row(c: dict[str, Any]) -> Html:
    failed = c["outcome"] != "ok"
    return html(
        '<tr class="{}"><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td>'
        '<td class="num">{}</td><td class="num">{}</td></tr>',
        "failed" if failed else "",
        c["clock"],
        c["method"],
        html("<code>{}</code>", c["tool"]) if c["tool"] else show(None),
        show(c["era"]),
        html('<span class="{}">{}</span>', "err" if failed else "", c["outcome"]),
        show(c["status"]),
        ms(c["ms"]),
    )
