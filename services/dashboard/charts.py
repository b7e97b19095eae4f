"""Small SVG charts drawn on the server, inline in the page: no script, no CDN, and
nothing to load but the page itself. Pure functions of numbers; every label goes
through htmlkit (escaped).
"""

from __future__ import annotations

from typing import Optional, Sequence

from services.dashboard.htmlkit import Html, html, join


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _scale(values: Sequence[Optional[float]]) -> float:
    top = max((v for v in values if v is not None), default=0.0)
    return top if top > 0 else 1.0


def _segments(values: Sequence[Optional[float]], width: float, height: float, top: float, pad: float) -> list[str]:
    """Polyline point lists, broken where a value is missing (a bucket without calls
    has no latency)."""
    n = max(len(values) - 1, 1)
    segments, current = [], []
    for i, v in enumerate(values):
        if v is None:
            if current:
                segments.append(current)
            current = []
            continue
        x = i * width / n
        y = pad + (height - 2 * pad) * (1 - v / top)
        current.append(f"{_num(x)},{_num(y)}")
    if current:
        segments.append(current)
    return [" ".join(s) for s in segments]


def sparkline(calls: Sequence[int], errors: Sequence[int], *, label: str, width: int = 120, height: int = 26) -> Html:
    """Calls per bucket as a line, the failed ones as red bars under it."""
    top = _scale(calls)
    n = max(len(calls), 1)
    bar = width / n
    bars = join(
        html(
            '<rect class="err" x="{}" y="{}" width="{}" height="{}"/>',
            _num(i * bar),
            _num(height - height * e / top),
            _num(max(bar - 0.5, 0.5)),
            _num(height * e / top),
        )
        for i, e in enumerate(errors)
        if e
    )
    lines = join(
        html('<polyline class="calls" points="{}"/>', points) for points in _segments(calls, width, height, top, 1.5)
    )
    return html(
        '<svg class="spark" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{label}">'
        "<title>{label}</title>{bars}{lines}</svg>",
        w=width,
        h=height,
        label=label,
        bars=bars,
        lines=lines,
    )


def bar_chart(
    calls: Sequence[int],
    errors: Sequence[int],
    *,
    label: str,
    span: str,
    chart_id: str,
    width: int = 600,
    height: int = 120,
) -> Html:
    """Calls per bucket as bars, the failed part of each in red; the top value and the
    time span written on the axes."""
    top = _scale(calls)
    n = max(len(calls), 1)
    bar = width / n
    plot = height - 16
    rects = []
    for i, (c, e) in enumerate(zip(calls, errors)):
        if not c:
            continue
        h_all = plot * c / top
        h_err = plot * min(e, c) / top
        x, w = _num(i * bar + 0.5), _num(max(bar - 1, 0.5))
        rects.append(
            html('<rect class="ok" x="{}" y="{}" width="{}" height="{}"/>', x, _num(plot - h_all), w, _num(h_all))
        )
        if e:
            rects.append(
                html('<rect class="err" x="{}" y="{}" width="{}" height="{}"/>', x, _num(plot - h_err), w, _num(h_err))
            )
    return _frame(chart_id, label, span, f"{int(top) if calls and max(calls) else 0}", width, height, plot, join(rects))


def line_chart(
    values: Sequence[Optional[float]],
    *,
    label: str,
    span: str,
    unit: str,
    chart_id: str,
    width: int = 600,
    height: int = 120,
) -> Html:
    """A line through the values, broken where one is missing."""
    top = _scale(values)
    plot = height - 16
    segments = _segments(values, width, plot, top, 2)
    lines = join(html('<polyline class="line" points="{}"/>', points) for points in segments)
    # A point alone (one bucket with calls between empty ones) is no line: mark it.
    dots = join(
        html('<circle class="dot" cx="{}" cy="{}" r="2.5"/>', *points.split(","))
        for points in segments
        if " " not in points
    )
    known = [v for v in values if v is not None]
    top_label = f"{_num(top)} {unit}" if known else "no calls"
    return _frame(chart_id, label, span, top_label, width, height, plot, join([lines, dots]))


def _frame(chart_id: str, label: str, span: str, top: str, width: int, height: int, plot: int, body: Html) -> Html:
    return html(
        '<figure class="chart"><svg id="{id}" viewBox="0 0 {w} {h}" role="img" '
        'aria-label="{label}"><title>{label}</title>'
        '<line class="axis" x1="0" y1="{plot}" x2="{w}" y2="{plot}"/>{body}'
        '<text class="tick" x="2" y="10">{top}</text>'
        '<text class="tick" x="2" y="{bottom}">{span}</text>'
        '<text class="tick end" x="{w}" y="{bottom}">now</text></svg>'
        "<figcaption>{label}</figcaption></figure>",
        id=chart_id,
        w=width,
        h=height,
        plot=plot,
        label=label,
        body=body,
        top=top,
        span=span,
        bottom=height - 3,
    )
