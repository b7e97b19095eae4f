"""What the bridges served, on the dashboard: the overview's numbers and sparklines, a
server page's charts, tools, prompts, resources and recent calls, their JSON twins,
and what is shown when the numbers cannot be had (fake Control, falcon's TestClient)."""

from __future__ import annotations

import re
from urllib.parse import quote

from services.dashboard.charts import bar_chart, line_chart, sparkline
from services.dashboard.control import TrafficResult
from tests.dashboard.support import XSS, XSS_ID

P = "/monitor"


def row_of(page: str, server_id: str) -> str:
    found = re.search(rf'<tr data-server="{re.escape(server_id)}".*?</tr>', page, re.S)
    assert found, server_id
    return found.group(0)


def test_the_overview_shows_each_served_servers_numbers_and_a_sparkline(logged_in, control):
    page = logged_in.get(f"{P}/").text
    for header in ("Calls/min", "Errors", "p95", "Last 10 min"):
        assert f"<th>{header}</th>" in page
    time_row = row_of(page, "time")
    assert '<td class="num traffic-rate">18</td>' in time_row
    assert "3.3 %" in time_row and "9.8 ms" in time_row
    spark = re.search(r'<svg class="spark".*?</svg>', time_row, re.S).group(0)
    assert 'aria-label="174 calls, 5 failed, in the last 10 min"' in spark
    assert spark.count('<rect class="err"') == 5  # one bar per bucket with failures
    # A server the bridge does not serve: dashes, no chart.
    assert "<svg" not in row_of(page, "halt")
    assert control.traffic_asked == [(None, False)]


def test_the_overview_json_twin_carries_the_numbers(logged_in):
    body = logged_in.get(f"{P}/api/overview").json
    assert body["traffic"] == {"available": True, "error": None}
    rows = {r["server_id"]: r for r in body["servers"]}
    t = rows["time"]["traffic"]
    assert (t["calls"], t["errors"], t["calls_per_minute"], t["p95_ms"]) == (90, 3, 18.0, 9.75)
    assert len(t["calls_series"]) == 60 and sum(t["errors_series"]) == 5
    assert rows["halt"]["traffic"] is None
    servers = logged_in.get(f"{P}/api/servers").json
    assert servers["traffic"]["available"] is True


def test_a_servers_page_shows_charts_tools_prompts_resources_and_recent_calls(logged_in, control):
    page = logged_in.get(f"{P}/servers/time").text
    assert control.traffic_asked == [("time", True)]
    assert '<b id="traffic-calls">90</b>' in page and '<b id="traffic-p95">9.8 ms</b>' in page
    assert '<svg id="chart-calls"' in page and '<svg id="chart-p95"' in page
    tools = re.search(r'<table id="tools">.*?</table>', page, re.S).group(0)
    # Listed tools first (called or not), then a called tool the server no longer lists.
    assert re.findall(r'<tr data-tool="([^"]+)"', tools) == ["get_current_time", "convert_time", "retired_tool"]
    assert "<small>(Current time)</small>" in tools and "Now, in a timezone" in tools
    assert '<details id="schema-0"><summary>Input schema</summary>' in tools
    assert "&quot;timezone&quot;" in tools and XSS not in tools  # the schema as escaped text
    assert "not in the server's list" in tools
    assert "1.20 s" in tools  # the retired tool's p95
    assert "<code>greet</code>" in page and "who, tone?" in page
    assert "<code>time://clock</code>" in page and "text/plain" in page
    recent = re.search(r'<table id="recent-calls">.*?</table>', page, re.S).group(0)
    assert recent.count("<tr") == 3  # header + two calls, newest first
    assert recent.index("get_current_time") < recent.index("retired_tool")
    assert '<tr class="failed">' in recent and "31.0 ms" in recent


def test_the_servers_json_twin_has_its_traffic_with_the_schema_as_an_object(logged_in):
    body = logged_in.get(f"{P}/api/servers/time").json
    t = body["traffic"]
    assert body["traffic_status"] == {"available": True, "error": None}
    schema = t["catalog"]["tools"][0]["input_schema"]
    assert schema["properties"]["timezone"]["type"] == "string"
    assert t["catalog"]["tools"][1]["input_schema"] is None
    assert [c["tool"] for c in t["recent"]] == ["get_current_time", "retired_tool"]
    assert t["recent"][0]["time"].endswith(" UTC") and re.fullmatch(r"\d\d:\d\d:\d\d", t["recent"][0]["clock"])
    assert len(t["series"]) == 60 and len(t["p95_series"]) == 60 and t["series"][-1]["time"].endswith(" UTC")
    assert [len(row["series"]) for row in t["tools"]] == [60, 60]


def test_hostile_names_from_a_server_are_escaped_everywhere(logged_in):
    for path in (f"{P}/", f"{P}/servers/{quote(XSS_ID, safe='')}", f"{P}/servers/{quote(XSS_ID, safe='')}?fragment=1"):
        page = logged_in.get(path).text
        assert XSS not in page and XSS_ID not in page
    page = logged_in.get(f"{P}/servers/{quote(XSS_ID, safe='')}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'id="catalog-error"' in page


def test_without_traffic_numbers_the_pages_say_why_and_show_the_rest(logged_in, control):
    control.traffic_result = TrafficResult(error="the container-agent did not answer within 3.5 s")
    page = logged_in.get(f"{P}/").text
    assert "Traffic numbers are not available right now (the container-agent did not answer within 3.5 s)" in page
    assert 'data-server="time"' in page and "<svg" not in page
    detail = logged_in.get(f"{P}/servers/time").text
    assert 'id="traffic-unavailable"' in detail and 'id="stderr-tail"' in detail
    assert logged_in.get(f"{P}/api/servers/time").json["traffic"] is None


def test_a_server_the_bridge_does_not_serve_says_so(logged_in, control):
    page = logged_in.get(f"{P}/servers/halt").text
    assert "The bridge does not serve this server right now." in page
    assert ("halt", True) in control.traffic_asked


def test_an_unknown_server_asks_for_no_traffic(logged_in, control):
    assert logged_in.get(f"{P}/api/servers/nobody").status_code == 404
    assert control.traffic_asked == []


# ------------------------------------------------------------------------ charts


def test_a_sparkline_scales_to_its_top_and_draws_failures_as_bars():
    svg = sparkline([0, 5, 10], [0, 0, 2], label="x", width=100, height=20)
    assert '<polyline class="calls" points="0,18.5 50,10 100,1.5"/>' in svg
    assert svg.count("<rect") == 1 and 'height="4"' in svg


def test_charts_without_calls_draw_nothing_but_their_frame():
    empty = bar_chart([0] * 60, [0] * 60, label="calls", span="10 min ago", chart_id="c")
    assert "<rect" not in empty and '<text class="tick" x="2" y="10">0</text>' in empty
    gaps = line_chart([None, 2.0, None, 4.0, 4.0], label="p95", span="s", unit="ms", chart_id="l")
    assert gaps.count("<polyline") == 2  # broken where a bucket had no calls
    assert "4 ms" in gaps
    assert "no calls" in line_chart([None, None], label="p95", span="s", unit="ms", chart_id="l")


def test_chart_labels_are_escaped():
    assert XSS not in sparkline([1], [0], label=XSS)
    assert XSS not in bar_chart([1], [1], label=XSS, span=XSS, chart_id=XSS)


def test_a_latency_point_alone_is_marked():
    chart = line_chart([None, 3.0, None], label="p95", span="s", unit="ms", chart_id="l")
    assert '<circle class="dot" cx="300" cy="2" r="2.5"/>' in chart
