"""Benchmark 5: the control plane at scale: N servers on one host (200 by default).

The servers are tiny stdio MCP servers (busybox sh answering initialize, tools/list
and tools/call), so the bridge sees them healthy and the ALB routes them. Measured:

- from nothing to every server running and served, and routed as far as the ALB's
  default rule quota (100) allows (seconds);
- a no-op reconcile (control.action sync: a full pass that finds nothing to do): its
  wall time, watched with control.status, and in a second pass nobody watches, the CPU
  time each process spends on it (from /proc, less each process's idle rate);
- the resident memory (RSS) of each of the four processes, with everything running.
"""

from __future__ import annotations

import time
from typing import Optional

from tests.harness.servers import echo_server
from tests.harness.waiting import wait_until

from . import procfs
from .aws_world import Moto
from .context import Context
from .orchestra import Orchestra
from .outcome import Goal, Outcome
from .report import Table
from .stats import Spread

KEY = "scale"
TITLE = "5. Control-plane scale"
PROCESSES = ("scheduler", "container-agent", "alb-agent", "dashboard")
METERED = ("scheduler", "container-agent", "alb-agent")
POLL_SECONDS = 0.02
IDLE_SECONDS = 3.0
STATUS_SAMPLES = 10
CPU_GOAL_MS = 200.0
RSS_GOAL_MB = 80.0
COLD_GOAL_SECONDS = 15.0


def cpu_of(orch: Orchestra) -> dict[str, float]:
    return {name: procfs.precise_cpu_seconds(orch.pid(name) or -1) or 0.0 for name in METERED}


def alb_rule_quota() -> int:
    from services.alb_agent.plan import Quotas

    return Quotas().rules_per_load_balancer


def settled(orch: Orchestra, wanted: set[str], routable: int) -> Optional[dict]:
    """Every server running and served, `routable` of them routed and the others refused
    a route with a reason (the ALB's rule quota); None before that."""
    state = orch.status()
    if not state or set(state.get("agents", {}).values()) != {"available"}:
        return None
    servers = Orchestra.servers_of(state)
    got = [servers.get(sid) for sid in wanted]
    if any(s is None or s.get("status") != "running" or s.get("bridge") != "ready" for s in got):
        return None
    routed = sum(s.get("route") == "routed" for s in got)
    refused = sum(s.get("route") == "error" and bool(s.get("route_error")) for s in got)
    return servers if routed == routable and routed + refused == len(wanted) else None


def served(orch: Orchestra, wanted: set[str]) -> int:
    """How many of the wanted servers run and are served by the bridge (routed or not)."""
    servers = orch.servers()
    return sum(
        1
        for sid in wanted
        if (s := servers.get(sid)) is not None and s.get("status") == "running" and s.get("bridge") == "ready"
    )


def reconciles(orch: Orchestra) -> Optional[int]:
    state = orch.status()
    return None if state is None else int(state.get("reconciles") or 0)


def run(ctx: Context) -> Outcome:
    from .bench_healing import available

    out = Outcome(KEY, f"{TITLE}: {ctx.counts.scale_servers} servers")
    why = available()
    if why:
        out.available, out.reason = False, f"not available yet: {why}"
        return out
    n = ctx.counts.scale_servers
    moto = Moto().start()
    orch: Optional[Orchestra] = None
    try:
        orch = Orchestra(ctx, moto.world(), ports=n + 20, interval=3600, name="scale")
        wanted = {f"s{i:03d}" for i in range(n)}
        routable = min(n, alb_rule_quota())
        out.data["routable"] = routable
        orch.write_config({sid: echo_server(ctx.busybox_image) for sid in sorted(wanted)})
        t0 = time.monotonic()
        orch.start_all(dashboard=True)
        deadline = max(300.0, 3.0 * n)
        last_note = time.monotonic()
        servers = None
        first_served = all_served = None
        while time.monotonic() - t0 < deadline:
            count = served(orch, wanted)
            if count and first_served is None:
                first_served = time.monotonic() - t0
            if count == len(wanted) and all_served is None:
                all_served = time.monotonic() - t0
                ctx.say(f"scale: {n} servers served after {all_served:.1f} s (the first after {first_served:.1f} s)")
            servers = settled(orch, wanted, routable)
            if servers is not None or orch.dead():
                break
            if time.monotonic() - last_note > 15:
                ctx.say(f"scale: {orch.counts(wanted)} after {time.monotonic() - t0:.0f} s")
                last_note = time.monotonic()
            time.sleep(0.5)
        if servers is None:
            raise RuntimeError(
                f"{n} servers did not converge in {deadline:g} s ({orch.counts(wanted)}); dead: {orch.dead()}"
            )
        converge = time.monotonic() - t0
        ctx.say(f"scale: {n} servers running and served, {routable} routed, after {converge:.1f} s")
        out.data["converge_seconds"] = round(converge, 2)
        out.data["served_seconds"] = round(all_served or converge, 2)
        out.data["first_served_seconds"] = round(first_served or converge, 2)
        measure_steady(ctx, orch, out)
    except Exception as exc:
        out.reason = f"stopped: {exc}"
        ctx.say(f"scale: {out.reason}")
        if orch is not None:
            for name in orch.dead():
                ctx.say(f"scale: {name} exited:\n{orch.output(name)}")
    finally:
        if orch is not None:
            orch.close()
        t0 = time.monotonic()
        removed = ctx.remove_containers()
        ctx.say(f"scale: removed {removed} containers in {time.monotonic() - t0:.1f} s")
        moto.stop()
    build_tables(ctx, out)
    return out


def measure_steady(ctx: Context, orch: Orchestra, out: Outcome) -> None:
    # Idle: what each process costs when nothing happens (heartbeats, the file watch).
    time.sleep(1.0)
    c0, t0 = cpu_of(orch), time.monotonic()
    time.sleep(IDLE_SECONDS)
    c1, idle_for = cpu_of(orch), time.monotonic() - t0
    idle_rate = {p: (c1[p] - c0[p]) / idle_for for p in METERED}
    # What one control.status costs the scheduler (it answers with every server's state).
    s0, t0 = cpu_of(orch)["scheduler"], time.monotonic()
    for _ in range(STATUS_SAMPLES):
        orch.status()
    s1, took = cpu_of(orch)["scheduler"], time.monotonic() - t0
    status_cost = max(0.0, (s1 - s0 - idle_rate["scheduler"] * took) / STATUS_SAMPLES)
    passes = []
    for rep in range(ctx.counts.scale_repeats):
        wall = timed_pass(orch)
        if wall is None:
            ctx.say(f"scale: no-op pass {rep + 1} did not finish in 60 s")
            continue
        cpu = metered_pass(orch, idle_rate, max(1.0, 3 * wall))
        if cpu is None:
            ctx.say(f"scale: no-op pass {rep + 1}: the metered pass did not run exactly once")
            continue
        passes.append({"wall_ms": wall * 1000, **{f"{p}_cpu_ms": v * 1000 for p, v in cpu.items()}})
        ctx.say(
            f"scale: no-op pass {rep + 1}: {wall * 1000:.0f} ms wall, CPU "
            + ", ".join(f"{p} {v * 1000:.0f} ms" for p, v in cpu.items())
        )
    rss = {p: procfs.memory_mb(orch.pid(p)) for p in PROCESSES}
    peak = {p: procfs.memory_mb(orch.pid(p), "VmHWM") for p in PROCESSES}
    out.data.update(
        {
            "idle_cpu_pct": {p: round(100 * v, 2) for p, v in idle_rate.items()},
            "status_call_cpu_ms": round(status_cost * 1000, 2),
            "passes": passes,
            "rss_mb": rss,
            "peak_rss_mb": peak,
            "agent_status_reads": agent_status_reads(ctx, orch),
        }
    )


def timed_pass(orch: Orchestra) -> Optional[float]:
    """Seconds from control.action sync to the reconcile count going up (polled)."""
    before = reconciles(orch)
    if before is None:
        raise RuntimeError("the scheduler does not answer control.status")
    t0 = time.monotonic()
    orch.action("sync")
    ok, _ = wait_until(lambda: (reconciles(orch) or 0) > before, 60.0, POLL_SECONDS)
    return time.monotonic() - t0 if ok else None


def metered_pass(orch: Orchestra, idle_rate: dict[str, float], window: float) -> Optional[dict[str, float]]:
    """CPU seconds per process of one pass, nothing else asked meanwhile: sync, wait
    `window` (well past the pass's end), read the CPU, then check that one pass ran."""
    before = reconciles(orch)
    c0, t0 = cpu_of(orch), time.monotonic()
    orch.action("sync")
    time.sleep(window)
    c1, elapsed = cpu_of(orch), time.monotonic() - t0
    if reconciles(orch) != (before or 0) + 1:
        return None
    return {p: max(0.0, c1[p] - c0[p] - idle_rate[p] * elapsed) for p in METERED}


def agent_status_reads(ctx: Context, orch: Orchestra) -> dict[str, float]:
    """The container-agent's container.status, replayed here with the agent's own Docker
    calls (one listing, then one inspect per container): the CPU milliseconds of each."""
    from services.container_agent.docker_ops import DockerOps

    ops = DockerOps(ctx.docker, orch.cluster)
    c0 = time.process_time()
    listing = ops.list_ours()
    c1 = time.process_time()
    for summary in listing:
        ops.inspect(summary["Id"])
    c2 = time.process_time()
    return {
        "containers": len(listing),
        "list_ms": round((c1 - c0) * 1000, 1),
        "inspects_ms": round((c2 - c1) * 1000, 1),
    }


def build_tables(ctx: Context, out: Outcome) -> None:
    n = ctx.counts.scale_servers
    data = out.data
    passes = data.get("passes", [])
    table = Table(
        f"{TITLE}: {n} servers (busybox stdio MCP servers), no-op reconcile over {len(passes)} run(s)",
        ["process", "RSS MB", "peak RSS MB", "idle CPU %", "no-op pass CPU ms"],
    )
    totals = [sum(p[f"{m}_cpu_ms"] for m in METERED) for p in passes]
    for name in PROCESSES:
        cpu = Spread.of(p.get(f"{name}_cpu_ms") for p in passes) if name in METERED else None
        rss = data.get("rss_mb", {}).get(name)
        peak = data.get("peak_rss_mb", {}).get(name)
        idle = data.get("idle_cpu_pct", {}).get(name)
        table.add(
            name,
            "—" if rss is None else f"{rss:.1f}",
            "—" if peak is None else f"{peak:.1f}",
            "—" if idle is None else f"{idle:.1f}",
            cpu.fmt(0) if cpu is not None else "—",
        )
    total = Spread.of(totals)
    wall = Spread.of(p["wall_ms"] for p in passes)
    table.add("all (no-op pass)", "", "", "", total.fmt(0))
    routable = data.get("routable", n)
    if "converge_seconds" in data:
        table.notes.append(
            f"from nothing to {n} servers running and served, {routable} of them routed: "
            f"{data['converge_seconds']:.1f} s"
        )
    if routable < n:
        table.notes.append(
            f"the ALB's default quota of {routable} rules lets {routable} servers be routed; "
            f"the alb-agent refuses the other {n - routable} with the quota as the reason, "
            f"and every no-op pass plans them again"
        )
    if passes:
        table.notes.append(
            f"no-op pass wall time: {wall.fmt(0)} ms (from control.action sync to the "
            f"reconcile count going up, polled every {POLL_SECONDS * 1000:.0f} ms)"
        )
        table.notes.append(
            "pass CPU: /proc around a pass nobody watches (sync, then a wait of three times "
            "its wall time), less each process's idle rate over the same time"
        )
        table.notes.append(
            f"one control.status costs the scheduler {data.get('status_call_cpu_ms')} ms CPU "
            f"(it answers with every server's state)"
        )
    reads = data.get("agent_status_reads")
    if reads:
        table.notes.append(
            f"the container-agent's container.status makes one container listing and "
            f"{reads['containers']} inspects; replayed in this process they cost "
            f"{reads['list_ms']} ms and {reads['inspects_ms']} ms of CPU"
        )
    table.notes += [
        "the dashboard takes no part in a reconcile; its RSS is with the scheduler's state mirrored",
        "the ALB is moto over HTTP in the benchmark's own process (not counted)",
    ]
    if out.reason:
        table.notes.append(out.reason.splitlines()[0][:200])
    out.tables.append(table)
    out.data["noop_total_cpu_ms"] = total
    out.data["noop_wall_ms"] = wall
    if passes:
        sched = Spread.of(p["scheduler_cpu_ms"] for p in passes)
        out.goals.append(
            Goal(
                "5",
                f"no-op reconcile CPU at {n} servers, all processes (scheduler alone)",
                f"< {CPU_GOAL_MS:.0f} ms",
                f"{total.fmt(0, ' ms')} ({sched.fmt(0, ' ms')})",
                total.median < CPU_GOAL_MS,
            )
        )
    else:
        out.goals.append(
            Goal("5", f"no-op reconcile CPU at {n} servers", f"< {CPU_GOAL_MS:.0f} ms", "not measured", None)
        )
    if "served_seconds" in data:
        out.goals.append(
            Goal(
                "5",
                f"cold start: from nothing to {n} servers served (the first after)",
                f"≤ {COLD_GOAL_SECONDS:.0f} s",
                f"{data['served_seconds']:.1f} s ({data['first_served_seconds']:.1f} s)",
                data["served_seconds"] <= COLD_GOAL_SECONDS,
            )
        )
    rss = data.get("rss_mb", {})
    for name in PROCESSES:
        value = rss.get(name)
        out.goals.append(
            Goal(
                "5",
                f"{name} RSS with {n} servers",
                f"< {RSS_GOAL_MB:.0f} MB",
                "not measured" if value is None else f"{value:.1f} MB",
                None if value is None else value < RSS_GOAL_MB,
            )
        )
