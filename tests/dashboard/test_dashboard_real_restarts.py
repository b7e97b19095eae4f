"""Restarts against the real orchestrator (scheduler, container-agent, alb-agent, real
containers): the dashboard killed with -9 shows the same state when it is back, and a
scheduler killed and started again is followed by the dashboard by itself."""

from __future__ import annotations

import time

import pytest

from tests.dashboard.processes import DashboardUser, wait_for_http
from tests.dashboard.real_world import real_world

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def world(docker_client, busybox_image):
    with real_world(docker_client, busybox_image) as w:
        yield w


def steady_rows(user: DashboardUser, *ids: str) -> dict:
    """The overview rows of servers as the scheduler's state says them: without uptime (it
    changes by itself) and traffic (read live from the container-agent on each request,
    and absent when that read is late)."""
    view = user.api("overview")
    if not view["scheduler"]["available"]:
        return {}
    rows = {
        r["server_id"]: {k: v for k, v in r.items() if not k.startswith("uptime") and k != "traffic"}
        for r in view["servers"]
    }
    return {sid: rows.get(sid) for sid in ids}


def settled(row: dict | None) -> bool:
    """Running, answering and registered: nothing left that converges by itself."""
    return bool(row) and (row["status"], row["health"], row["route_health"]) == ("running", "ready", "healthy")


def test_dashboard_kill9_and_restart_shows_the_same_state(world):
    dash = world.start_dashboard()
    try:
        user = DashboardUser(world.port).login()
        ids = (world.talker, world.quiet)
        # A state still converging (health or target health on its way) would differ
        # after the restart for a good reason: compare settled states only.
        before = wait_for_http(
            lambda: (lambda rows: rows if all(settled(r) for r in rows.values()) else None)(steady_rows(user, *ids)),
            20,
            "both echo servers running, ready and registered in the dashboard",
        )
        dash.kill9()
        started = time.monotonic()
        dash = world.start_dashboard()
        again = DashboardUser(world.port).login()
        seen: list = []
        wait_for_http(
            lambda: seen.append(steady_rows(again, *ids)) or seen[-1] == before,
            10,
            "the same state again",
            explain=lambda: f"before: {before}\nnow:    {seen[-1] if seen else None}",
        )
        print(f"same state {time.monotonic() - started:.2f} s after starting the dashboard again")
        assert again.api("overview")["counts"]["total"] == 3
    finally:
        dash.stop()


def test_scheduler_restart_is_followed_by_itself(world):
    dash = world.start_dashboard()
    try:
        user = DashboardUser(world.port).login()
        wait_for_http(lambda: steady_rows(user, world.talker)[world.talker], 20, "a first sync")
        world.orch.kill9("scheduler")
        wait_for_http(
            lambda: not user.api("overview")["scheduler"]["available"], 15, "the scheduler shown as unavailable"
        )
        rows = {r["server_id"]: r for r in user.api("overview")["servers"]}
        assert rows[world.talker]["status"] == "running"  # the last known state stays
        assert "Scheduler unavailable" in user.get("/").text
        refused = user.act("sync")
        assert refused.status_code == 503

        world.orch.start("scheduler")
        wait_for_http(
            lambda: (steady_rows(user, world.talker).get(world.talker) or {}).get("status") == "running",
            30,
            "the dashboard to follow the new scheduler",
        )
        assert user.act("sync").status_code == 200
    finally:
        dash.stop()
