"""`python -m benchmarks` runs end to end with tiny counts, so that the harness cannot rot.

Each benchmark runs in a process of its own, as `make bench` runs it, against the real
Docker engine, the real bridge, the real orchestrator processes and moto. Only that it
works is checked, never how fast: timings belong to `make bench`. The peers (mcp-proxy
from npm, mcp-proxy from PyPI, supergateway) are measured when
scripts/ensure-bench-tools.sh has installed them; without them their rows say why, and
the run still succeeds. Both protocol eras are covered: handshake-era sessions and
2026-07-28 stateless calls.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.harness.labels import TEST_LABEL

pytestmark = [pytest.mark.docker, pytest.mark.slow]

PEERS = ("mcp-proxy (npm)", "mcp-proxy (PyPI)", "supergateway")
PEERS_INSTALLED = all(
    (ROOT / path).exists()
    for path in (
        ".cache/bench/node/node_modules/.bin/mcp-proxy",
        ".cache/bench/mcp-proxy-venv/bin/mcp-proxy",
        ".cache/bench/node/node_modules/.bin/supergateway",
    )
)


def measured(row: dict) -> bool:
    return "error" not in row and row["errors"] == 0


def run_bench(key: str, out: Path, docker_client) -> dict:
    label_value = f"bench-{uuid.uuid4().hex[:8]}"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--tiny",
            "--only",
            key,
            "--out",
            str(out),
            "--label",
            f"{TEST_LABEL}={label_value}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    left = docker_client.containers.list(all=True, filters={"label": f"{TEST_LABEL}={label_value}"})
    for container in left:  # a failed assertion below must not leave them behind
        container.remove(force=True)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    assert not left, f"the run left containers: {[c.name for c in left]}"
    results = json.loads((out / "latest.json").read_text())
    summary = (out / "latest.md").read_text()
    assert "| # | what | goal | measured | verdict |" in summary
    outcome = results["benchmarks"][key]
    assert outcome["available"], outcome["reason"]
    assert outcome["tables"] and all(t["rows"] for t in outcome["tables"])
    assert outcome["title"] in proc.stdout  # the table was printed
    return outcome


def test_bridge_latency_and_throughput(tmp_path, docker_client, time_server_image):
    outcome = run_bench("bridge", tmp_path, docker_client)
    levels = outcome["data"]["levels"]
    assert set(levels) == {"1", "2"}
    for level in levels.values():
        for name in ("direct stdio", "this bridge"):
            assert measured(level[name]) and level[name]["calls"] > 0, level[name]
            assert level[name]["p50_ms"]["median"] > 0
        for peer in PEERS:
            if PEERS_INSTALLED:
                assert measured(level[peer]) and level[peer]["calls"] > 0, level[peer]
            else:
                assert "error" in level[peer] or level[peer]["calls"] > 0
    modern = outcome["data"]["modern"]
    assert modern["protocol"] == "2026-07-28" and set(modern["levels"]) == {"2"}
    level = modern["levels"]["2"]
    # The floor and this bridge serve stateless calls; so does the npm mcp-proxy.
    for name in ("direct stdio", "this bridge", *(("mcp-proxy (npm)",) if PEERS_INSTALLED else ())):
        assert measured(level[name]) and level[name]["calls"] > 0, level[name]
    for peer in PEERS:  # measured, or n/a with the reason (never a made-up number)
        assert measured(level[peer]) or level[peer]["error"] == modern["unavailable"][peer], level[peer]
    table = outcome["tables"][-1]
    assert "2026-07-28 stateless" in table["title"]
    assert all(row[1] == "n/a" for row in table["rows"] if row[0] in modern["unavailable"])
    assert {g["what"].split(",")[0] for g in outcome["goals"]} >= {"p50 at 1 session"}


def test_short_sessions(tmp_path, docker_client, time_server_image):
    outcome = run_bench("sessions", tmp_path, docker_client)
    cycles = outcome["data"]["cycles"]
    assert set(cycles) == {"session-tools-list", "session-tools-call", "modern-tools-call"}
    for cycle in cycles.values():
        bridge = cycle["targets"]["this bridge"]
        assert measured(bridge) and bridge["sessions"] > 0, (cycle["label"], bridge)
        if PEERS_INSTALLED:
            npm = cycle["targets"]["mcp-proxy (npm)"]
            assert measured(npm) and npm["sessions"] > 0, (cycle["label"], npm)
    direct = cycles["session-tools-list"]["targets"]["direct stdio"]
    assert direct["errors"] == 0, direct
    labels = [row[0] for row in outcome["tables"][0]["rows"] if row[0]]
    assert labels == [c["label"] for c in cycles.values()]
    assert "from its cache" in labels[0] and labels[2].startswith("2026-07-28: one stateless POST tools/call")


def test_healing_and_convergence(tmp_path, docker_client, time_server_image):
    outcome = run_bench("healing", tmp_path, docker_client)
    data = outcome["data"]
    for key in ("kill", "add-init", "remove-init", "agent"):
        assert data[key]["values"] and None not in data[key]["values"], (key, data[key], outcome["reason"])
    for key in ("kill", "agent"):  # counted, not judged: timings and counts are the bench's
        assert len(data[key]["failed_calls"]) == len(data[key]["values"]), data[key]


def test_alb_api_calls(tmp_path, docker_client):
    outcome = run_bench("alb", tmp_path, docker_client)
    steps = outcome["data"]["sizes"]["3"]
    assert steps["check"]["routes_match"]
    assert all(steps[s]["ok"] for s in steps if s != "check"), steps
    assert steps["from nothing"]["writes"] > 0 and steps["no-op"]["writes"] == 0


def test_control_plane_scale(tmp_path, docker_client, busybox_image):
    outcome = run_bench("scale", tmp_path, docker_client)
    data = outcome["data"]
    assert data["converge_seconds"] > 0, outcome["reason"]
    assert data["passes"], outcome["reason"]
    assert all(data["rss_mb"][p] for p in ("scheduler", "container-agent", "alb-agent", "dashboard"))
