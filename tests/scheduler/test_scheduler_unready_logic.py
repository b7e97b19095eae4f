"""A running container whose server did not answer initialize is a failure: the pure logic
(back-off, plan, status, CLI text). The processes are tested in test_scheduler_unready.py."""

from __future__ import annotations

from common.config import load_config
from common.protocol import ContainerInfo
from common.settings import Settings
from services.cli.status_view import judge, server_details
from services.scheduler.backoff import UNREADY, BackoffPolicy, CrashRecord, observe
from services.scheduler.diff import Want, plan_containers
from services.scheduler.server_state import ServerFacts, server_state

POLICY = BackoffPolicy(first=1.0, factor=2.0, maximum=10.0, stable_after=30.0)
REASON = "did not answer initialize within 60 s"


def run(started="2026-01-01T00:00:00Z", bridge="failed", **kw):
    reason = REASON if bridge == "failed" else ""
    return ContainerInfo(
        server_id="a",
        container_id="c1",
        state="running",
        host_port=8000,
        spec_hash="h1",
        started_at=started,
        bridge=bridge,
        bridge_reason=reason,
        **kw,
    )


def test_each_unready_run_is_one_failure_with_its_reason_and_stderr():
    r = observe(CrashRecord(), run(stderr_tail=["waiting for the database"]), 100.0, POLICY)
    assert (r.failures, r.error, r.exit_code, r.last_kind) == (1, REASON, None, UNREADY)
    assert r.stderr_tail == ("waiting for the database",) and r.waiting(100.0) == 0
    assert observe(r, run(), 101.0, POLICY) == r  # the same run, seen again
    waits = []
    for n in range(2, 5):  # restarted, silent again
        r = observe(r, run(started=f"2026-01-01T00:0{n}:00Z", bridge="starting"), 100.0 * n, POLICY)
        r = observe(r, run(started=f"2026-01-01T00:0{n}:00Z"), 100.0 * n + 1, POLICY)
        waits.append(r.waiting(100.0 * n + 1))
    assert r.failures == 4 and r.crash_looping(POLICY) and waits == [1.0, 2.0, 4.0]


def test_a_run_counts_as_stable_only_once_it_is_served():
    r = observe(CrashRecord(), run(), 0.0, POLICY)
    started = "2026-01-01T00:01:00Z"
    r = observe(r, run(started=started, bridge="starting"), 1.0, POLICY)
    r = observe(r, run(started=started, bridge="starting"), 50.0, POLICY)
    assert r.failures == 1  # starting for 49 s is not stable running
    r = observe(r, run(started=started, bridge="ready"), 60.0, POLICY)
    assert r.failures == 0  # a slow starter that answered


def test_the_plan_restarts_it_after_the_back_off():
    wants = {"a": Want(server_id="a", spec_hash="h1", host_port=8000)}
    plan = plan_containers(wants, {"a": run()})
    assert [(s.action, s.reason) for s in plan.steps] == [("restart", REASON)]
    assert plan.steps[0].starts
    waiting = {"a": Want(server_id="a", spec_hash="h1", host_port=8000, wait=4.0)}
    plan = plan_containers(waiting, {"a": run()})
    assert plan.steps == [] and "back-off" in plan.waiting["a"]
    # Starting, or answered late: nothing to do.
    assert plan_containers(wants, {"a": run(bridge="starting")}).steps == []
    assert plan_containers(wants, {"a": run(bridge="ready")}).steps == []


def test_status_says_not_ready_then_crash_looping_with_the_reason(tmp_path):
    path = tmp_path / "mcp.config.json"
    path.write_text('{"mcpServers": {"a": {"command": "docker", "args": ["run", "-i", "img"]}}}')
    server = load_config(path, environ={}).servers["a"]
    first = observe(CrashRecord(), run(), 100.0, POLICY)
    facts = ServerFacts(
        "a", server, port=8000, container=run(stderr_tail=["no db"]), containers_known=True, crash=first
    )
    s = server_state(facts, Settings(), POLICY, 100.0)
    assert (s.status, s.health, s.bridge, s.last_error) == ("error", "failed", "failed", REASON)
    looping = CrashRecord(failures=3, next_start_at=104.0, delay=4.0, error=REASON, last_failure=f"{UNREADY}|c1|t")
    s = server_state(
        ServerFacts("a", server, port=8000, container=run(stderr_tail=["no db"]), containers_known=True, crash=looping),
        Settings(),
        POLICY,
        100.0,
    )
    assert (s.status, s.last_error, s.backoff_seconds, s.stderr_tail) == ("crash-looping", REASON, 4.0, ["no db"])
    assert s.next_restart_at == 104.0 and s.exit_code is None
    # The CLI names the reason, not a missing exit code.
    plain = {
        "server_id": "a",
        "status": s.status,
        "bridge": s.bridge,
        "exit_code": None,
        "last_error": s.last_error,
        "failures": 3,
        "backoff_seconds": 4.0,
        "next_restart_at": 104.0,
        "stderr_tail": ["no db"],
    }
    lines = server_details(plain, now=100.0)
    assert lines[0] == "  a: crash-looping: running, not ready, 3 failures, back-off 4.0 s, next start in 4 s"
    assert f"  a: {REASON}" in lines and "  a: stderr: no db" in lines
    verdict = judge(
        {
            "config": {"ok": True},
            "reconciles": 5,
            "agents": {"container-agent": "available", "alb-agent": "available"},
            "servers": [{**plain, "route": "routed"}],
        },
        0,
    )
    assert verdict.done and not verdict.converged
    assert verdict.reasons == [f"a: crash-looping, route routed: running, not ready: {REASON}"]
