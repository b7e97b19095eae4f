"""Benchmark 3: healing and convergence, with the real processes.

K time servers (the real mcp-server-time image) run under the container-agent,
alb-agent and scheduler. Each scenario is measured K times, from the moment of the
event to the moment a client sees the result, polling every 50 ms:

- docker kill -> serving again: a whole MCP session (initialize, tools/call) through
  the bridge works again. Each repeat kills another server, so that no crash-loop
  back-off is measured (the first failure of a server restarts it at once).
- a server added to mcp.config.json -> serving and routed: the scheduler reports it
  running, served and routed, and an MCP session through its port works.
- that server removed -> gone and unrouted: no container, no route in the status.
  The image's PID 1 (Python) ignores SIGTERM, so `docker stop` waits out its 10 s
  timeout: the same pair is measured again with `--init` in the server's args, which
  shows the orchestrator's own part.
- container-agent restart (SIGTERM, started again) -> every server serving again
  through the new agent's bridge (it adopts the running containers).
"""

from __future__ import annotations

import time
from typing import Callable, Optional

from tests.harness.call_loop import CallLoop, failures_since
from tests.harness.servers import docker_server
from tests.harness.waiting import wait_until

from .aws_world import Moto
from .context import Context
from .orchestra import Orchestra, answers
from .outcome import Goal, Outcome
from .report import Table
from .stats import Spread

KEY = "healing"
TITLE = "3. Healing and convergence (real processes, mcp-server-time)"
SCENARIO_TIMEOUT = 120.0
START_TIMEOUT = 300.0

SCENARIOS = {
    "kill": "docker kill → serving again",
    "add": "server added to the config → serving and routed",
    "remove": "server removed → gone and unrouted",
    "add-init": "the same with --init: added → serving and routed",
    "remove-init": "the same with --init: removed → gone and unrouted",
    "agent": "container-agent restart → all serving again",
}


def available() -> Optional[str]:
    """Why the benchmark cannot run (the scheduler is missing), or None."""
    from .context import ROOT

    if not (ROOT / "services" / "scheduler" / "__main__.py").exists():
        return "services/scheduler/__main__.py does not exist yet"
    return None


def _port(orch: Orchestra, sid: str) -> Optional[int]:
    return Orchestra.servers_of(orch.status()).get(sid, {}).get("host_port")


def serving(orch: Orchestra, sid: str) -> Callable[[], bool]:
    return lambda: answers(_port(orch, sid), sid)


def run(ctx: Context) -> Outcome:
    out = Outcome(KEY, TITLE)
    why = available()
    if why:
        out.available, out.reason = False, f"not available yet: {why}"
        return out
    k = ctx.counts.healing_repeats
    moto = Moto().start()
    orch: Optional[Orchestra] = None
    times: dict[str, list[Optional[float]]] = {key: [] for key in SCENARIOS}
    # Calls of a client calling every 50 ms that failed during the event (kill, agent).
    failed: dict[str, list[int]] = {"kill": [], "agent": []}
    try:
        # As under systemd or `run`: the container-agent's sockets outlive it.
        orch = Orchestra(ctx, moto.world(), ports=3 * k + 10, name="heal", keep_sockets=True)
        base = {f"clock-{i}": docker_server(ctx.time_image) for i in range(1, k + 1)}
        orch.write_config(base)
        orch.start_all()
        servers, took = wait_until(lambda: orch.converged(set(base)), START_TIMEOUT, 0.2)
        if servers is None:
            raise RuntimeError(
                f"{k} servers did not converge in {START_TIMEOUT:g} s: {orch.counts(set(base))}; "
                f"dead: {orch.dead()}\n{orch.output('scheduler')}"
            )
        ctx.say(f"healing: {k} time servers running, served and routed after {took:.1f} s")
        out.data["first_convergence_seconds"] = round(took, 2)
        measure_kill(ctx, orch, base, times["kill"], failed["kill"])
        if ctx.counts.healing_without_init:
            measure_add_remove(ctx, orch, base, times["add"], times["remove"], init=False)
        measure_add_remove(ctx, orch, base, times["add-init"], times["remove-init"], init=True)
        measure_agent_restart(ctx, orch, base, times["agent"], failed["agent"])
    except Exception as exc:
        out.reason = f"stopped: {exc}"
        ctx.say(f"healing: {out.reason}")
    finally:
        if orch is not None:
            orch.close()
        moto.stop()
    table = Table(
        f"{TITLE}: seconds, median (min–max) of {k}", ["scenario", "seconds", "runs", "timed out", "failed calls"]
    )
    for key, label in SCENARIOS.items():
        values = times[key]
        if not values and key in ("add", "remove") and not ctx.counts.healing_without_init:
            continue
        spread = Spread.of(values)
        lost = failed.get(key)
        table.add(label, spread.fmt(2), len(values), sum(v is None for v in values), _failed(lost))
        out.data[key] = {"seconds": spread, "values": [None if v is None else round(v, 3) for v in values]}
        if lost is not None:
            out.data[key]["failed_calls"] = lost
        timed_out = sum(v is None for v in values)
        out.goals.append(
            Goal(
                "3",
                label,
                "reported (seconds)",
                spread.fmt(2, " s") + (f", {timed_out} timed out" if timed_out else ""),
                False if timed_out else None,
            )
        )
    table.notes += [
        "measured from the event to what a client sees, polling every 50 ms; serving = a whole MCP "
        "session (initialize, tools/call get_current_time) through the bridge works",
        "the time includes the server's own start (a Python process in a container: about a second)",
        "routed = the scheduler reports the alb-agent's rule for it (ALB: moto over HTTP)",
        "failed calls: of a client (the official SDK, 2025 sessions) calling get_current_time every 50 ms "
        "through the bridge during the event, per run; a call in flight at a crash fails, the others wait "
        "([bridge] restart_wait_seconds; the agent's sockets are kept across its restart as systemd does)",
    ]
    if out.reason:
        table.notes.append(out.reason.splitlines()[0][:200])
    out.tables.append(table)
    return out


def _failed(lost: Optional[list[int]]) -> str:
    if not lost:
        return "" if lost is None else "n/a"
    return f"{sorted(lost)[len(lost) // 2]} ({min(lost)}–{max(lost)})"


def _calling(orch: Orchestra, sid: str) -> Optional[CallLoop]:
    port = _port(orch, sid)
    if port is None:
        return None
    loop = CallLoop(f"http://127.0.0.1:{port}/mcp/{sid}/mcp", "get_current_time", {"timezone": "UTC"}).start()
    ok, _ = wait_until(lambda: loop.successes_after(0) >= 3 or bool(loop.problem), 30)
    return loop if ok and not loop.problem else None


def _failures(loop: Optional[CallLoop], since: float, lost: list) -> None:
    if loop is None:
        return
    # Until the client has seen the server again, then stop it.
    wait_until(lambda: loop.successes_after(time.time() - 0.3) >= 2, 30)
    lost.append(len(failures_since(loop.stop(), since)))


def measure_kill(ctx: Context, orch: Orchestra, base: dict, times: list, lost: list) -> None:
    for sid in base:
        old = orch.run_of(sid)
        if old is None:
            times.append(None)
            continue
        loop = _calling(orch, sid)
        t0, since = time.monotonic(), time.time()
        ctx.docker.api.kill(old[0])

        def again() -> bool:
            run = orch.run_of(sid)
            return run is not None and run != old and serving(orch, sid)()

        ok, _ = wait_until(again, SCENARIO_TIMEOUT)
        times.append(time.monotonic() - t0 if ok else None)
        _failures(loop, since, lost)
        ctx.say(
            f"healing: kill {sid} -> serving again in {times[-1] or float('nan'):.2f} s"
            + (f", {lost[-1]} failed call(s)" if loop is not None else "")
        )


def measure_add_remove(ctx: Context, orch: Orchestra, base: dict, added: list, removed: list, init: bool) -> None:
    config = dict(base)
    new_ids = [f"{'init' if init else 'added'}-{i}" for i in range(1, len(base) + 1)]
    for sid in new_ids:
        config[sid] = docker_server(ctx.time_image, init=init)
        t0 = time.monotonic()
        orch.write_config(config)
        ok, _ = wait_until(lambda: orch.converged({sid}) is not None and serving(orch, sid)(), SCENARIO_TIMEOUT)
        added.append(time.monotonic() - t0 if ok else None)
        ctx.say(f"healing: add {sid} -> serving and routed in {added[-1] or float('nan'):.2f} s")
    paths = orch.world.rule_paths()
    missing = [sid for sid in new_ids if f"/mcp/{sid}" not in paths]
    if missing:
        ctx.say(f"healing: warning: added servers without an ALB rule: {missing}")
    for sid in new_ids:
        del config[sid]
        t0 = time.monotonic()
        orch.write_config(config)
        ok, _ = wait_until(lambda: sid not in orch.container_ids() and _unrouted(orch, sid), SCENARIO_TIMEOUT)
        removed.append(time.monotonic() - t0 if ok else None)
        ctx.say(f"healing: remove {sid} -> gone and unrouted in {removed[-1] or float('nan'):.2f} s")
    left = [sid for sid in new_ids if f"/mcp/{sid}" in orch.world.rule_paths()]
    if left:
        ctx.say(f"healing: warning: removed servers still have ALB rules: {left}")


def _unrouted(orch: Orchestra, sid: str) -> bool:
    state = orch.status()
    if state is None:
        return False
    server = Orchestra.servers_of(state).get(sid)
    return server is None or (not server.get("container_id") and server.get("route") in ("none", None))


def measure_agent_restart(ctx: Context, orch: Orchestra, base: dict, times: list, lost: list) -> None:
    first = next(iter(base))
    for i in range(len(base)):
        loop = _calling(orch, first)
        t0, since = time.monotonic(), time.time()
        orch.stop("container-agent")
        orch.start("container-agent")
        ok, _ = wait_until(lambda: all(serving(orch, sid)() for sid in base), SCENARIO_TIMEOUT)
        times.append(time.monotonic() - t0 if ok else None)
        _failures(loop, since, lost)
        ctx.say(
            f"healing: container-agent restart {i + 1} -> all serving in {times[-1] or float('nan'):.2f} s"
            + (f", {lost[-1]} failed call(s)" if loop is not None else "")
        )
