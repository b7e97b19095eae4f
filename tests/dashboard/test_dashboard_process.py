"""`python -m services.dashboard` as a real process under waitress, against a stand-in
scheduler process speaking the real protocol: state, actions, restarts of either side,
systemd notification and a clean stop."""

from __future__ import annotations

import signal
import socket
import time

import pytest
import requests

from tests.dashboard.processes import PASSWORD, DashboardUser, World, start_dashboard, wait_for_http


@pytest.fixture
def world():
    w = World()
    yield w
    w.close()


def synced(user: DashboardUser, count: int) -> bool:
    view = user.api("overview")
    return view["scheduler"]["available"] and len(view["servers"]) == count


def stable(rows: list[dict]) -> list[dict]:
    """Rows without what moves by itself (uptime counts up, traffic comes and goes)."""
    return [{k: v for k, v in row.items() if not k.startswith("uptime") and k != "traffic"} for row in rows]


def test_serves_the_scheduler_state_and_sends_actions(world):
    world.scheduler()
    dash = world.dashboard()
    user = DashboardUser(world.port).login()
    wait_for_http(lambda: synced(user, 3), 10, "the scheduler's state in the dashboard")
    assert user.statuses() == {"alpha": "running", "beta": "running", "gamma": "crash-looping"}
    detail = user.api("servers/alpha")
    assert detail["stderr_tail"][0] == "server ready on stdio (fake)"
    assert detail["env_names"] == ["ALPHA_TOKEN"]
    result = user.act("stop", "beta")
    assert result.status_code == 200 and result.json()["message"] == "stop beta queued"
    wait_for_http(lambda: user.statuses()["beta"] == "stopped", 5, "beta to show as stopped")
    events = user.api("overview")["events"]
    assert events[0]["message"] == "beta: stopped by hand"
    refused = user.act("stop", "nope")
    assert refused.status_code == 404 and "no server 'nope'" in refused.json()["message"]
    assert user.get("/routing").status_code == 200
    assert "mcpo-alpha" in user.get("/routing").text
    assert user.api("routing")["target_groups"][0]["name"] == "mcpo-alpha"
    page = user.get("/")
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    # Behind an HTTPS load balancer the session cookie gets the Secure flag.
    behind = requests.post(
        f"{user.base}/api/login",
        timeout=5,
        headers={"X-Forwarded-Proto": "https"},
        json={"username": "admin", "password": PASSWORD},
    )
    cookie = behind.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie

    dash.signal(signal.SIGTERM)
    assert dash.wait(10) == 0, dash.output()
    assert "HTTP server stopped" in dash.output()


def test_waits_for_the_scheduler_and_actions_fail_clearly_without_it(world):
    world.dashboard()
    user = DashboardUser(world.port).login()
    view = user.api("overview")
    assert view["scheduler"]["synced_once"] is False and view["servers"] == []
    assert "Waiting for the scheduler" in user.get("/").text
    started = time.monotonic()
    result = user.act("sync")
    assert result.status_code == 503 and "does not answer" in result.json()["message"]
    assert time.monotonic() - started < 8  # bounded; the timing goal itself is a benchmark
    world.scheduler()
    wait_for_http(lambda: synced(user, 3), 10, "the dashboard to connect by itself")


def test_dashboard_kill9_and_restart_shows_the_same_state(world):
    world.scheduler()
    dash = world.dashboard()
    user = DashboardUser(world.port).login()
    wait_for_http(lambda: synced(user, 3), 10, "the first sync")
    user.act("stop", "alpha")
    wait_for_http(lambda: user.statuses()["alpha"] == "stopped", 5, "alpha stopped")
    before = stable(user.api("overview")["servers"])

    dash.signal(signal.SIGKILL)
    dash.wait(5)
    restarted_at = time.monotonic()
    world.dashboard(name="dashboard-2")
    again = DashboardUser(world.port).login()  # sessions do not survive a restart
    wait_for_http(
        lambda: stable(again.api("overview")["servers"]) == before,
        10,
        f"the same state after the restart\n{world.logs()}",
    )
    print(f"same state {time.monotonic() - restarted_at:.2f} s after starting the dashboard again")
    assert user.get("/api/overview").status_code == 401  # the old session is gone


def test_scheduler_restart_is_followed_by_itself(world):
    sched = world.scheduler()
    world.dashboard()
    user = DashboardUser(world.port).login()
    wait_for_http(lambda: synced(user, 3), 10, "the first sync")
    user.act("stop", "gamma")
    wait_for_http(lambda: user.statuses()["gamma"] == "stopped", 5, "gamma stopped")

    sched.signal(signal.SIGKILL)
    sched.wait(5)
    wait_for_http(
        lambda: not user.api("overview")["scheduler"]["available"], 10, "the scheduler to show as unavailable"
    )
    view = user.api("overview")
    assert (
        view["servers"] and {s["server_id"]: s["status"] for s in view["servers"]}["gamma"] == "stopped"
    )  # the last known state stays on screen
    assert "Scheduler unavailable" in user.get("/").text

    world.scheduler(servers=4, name="fake-scheduler-2")  # a new epoch, a new state
    wait_for_http(lambda: synced(user, 4), 10, f"the dashboard to reconnect\n{world.logs()}")
    assert user.statuses()["gamma"] == "crash-looping"


def test_notifies_systemd_when_ready_and_stopping(world):
    world.scheduler()
    path = world.dir / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(20)
        dash = world.dashboard(NOTIFY_SOCKET=str(path), WATCHDOG_USEC="400000")
        messages = []
        while not any("WATCHDOG=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
        assert messages[0].startswith("READY=1")
        # Ready means serving: the HTTP port answers by then.
        assert requests.get(f"http://127.0.0.1:{world.port}/monitor/login", timeout=5).ok
        dash.signal(signal.SIGTERM)
        while not any("STOPPING=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
    assert dash.wait(10) == 0


def test_bad_settings_and_a_busy_port_fail_at_start(world):
    bad = world.dir / "bad.conf"
    bad.write_text("[dashboard]\nport = 99999\n")
    proc = world.start(start_dashboard(world.dir, bad, name="bad", read=False))
    assert proc.wait(20) == 2
    assert "[dashboard] port" in proc.output()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", world.port))
        busy.listen()
        proc = world.start(start_dashboard(world.dir, world.settings, name="busy"))
        assert proc.wait(20) == 1
        assert f"cannot listen on 127.0.0.1:{world.port}" in proc.output()
