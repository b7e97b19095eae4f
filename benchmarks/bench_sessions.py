"""Benchmark 2: short sessions per second (LiteLLM's pattern).

Each session is a new connection: initialize (+ notifications/initialized), tools/list,
DELETE. A few clients run sessions back to back for a fixed time; the rate is the
sessions completed over the time until the last one ended. The targets are measured
one after the other, in an order rotated per repeat, and each phase waits until the
containers a peer started for its sessions are gone, so that one target's clean-up
does not load the next one's phase.

The direct row is what a client without a bridge does for a short session: start
`docker run -i --rm IMAGE`, initialize, list the tools, close stdin.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Optional

from .bench_bridge import Running, profile_bridge, start_targets, stop_targets
from .context import BENCH_LABEL, Context
from .mcp_client import HttpSession, StdioServer
from .meter import CpuUse, Meter
from .outcome import Goal, Outcome
from .report import Table
from .stats import Spread, ratio
from .targets import HttpTarget, McpProxy, ProjectBridge, Supergateway

KEY = "sessions"
TITLE = "2. Short sessions (initialize → tools/list → DELETE) per second"
BRIDGE = "this bridge"
DIRECT = "direct stdio"
PEERS = ("mcp-proxy", "supergateway")
SETTLE_TIMEOUT = 60.0


@dataclass
class Rate:
    sessions: int
    seconds: float
    errors: int
    first_error: str = ""
    cpu: Optional[CpuUse] = None

    @property
    def per_second(self) -> Optional[float]:
        return self.sessions / self.seconds if self.sessions and self.seconds > 0 else None


async def one_http_session(target: HttpTarget) -> None:
    session = HttpSession("127.0.0.1", target.port, target.path)
    try:
        await session.initialize()
        tools = await session.request("tools/list")
        if not isinstance(tools, dict) or not tools.get("tools"):
            raise RuntimeError(f"tools/list gave no tools: {str(tools)[:100]}")
        status = await session.delete()
        if status not in (200, 202, 204, 405):
            raise RuntimeError(f"DELETE answered HTTP {status}")
    finally:
        session.close()


async def one_stdio_session(ctx: Context) -> None:
    server = StdioServer(ctx.docker_run_argv("direct-per-session"))
    await server.start()
    try:
        await server.initialize()
        tools = await server.request("tools/list")
        if not isinstance(tools, dict) or not tools.get("tools"):
            raise RuntimeError("tools/list gave no tools")
    finally:
        await server.close()


async def timed(make_session, seconds: float, concurrency: int, meter: Meter) -> Rate:
    done = errors = 0
    first_error = ""
    meter.start()
    start = time.perf_counter()
    deadline = start + seconds

    async def client() -> None:
        nonlocal done, errors, first_error
        while time.perf_counter() < deadline:
            try:
                await make_session()
                done += 1
            except Exception as exc:
                errors += 1
                first_error = first_error or str(exc)[:200]
                await asyncio.sleep(0.05)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return Rate(done, elapsed, errors, first_error, meter.stop())


async def settle(ctx: Context, baseline: int) -> None:
    """Until no more of this run's containers run than before the phase."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        running = await asyncio.to_thread(
            ctx.docker.api.containers, filters={"label": f"{BENCH_LABEL}={ctx.run_id}", "status": "running"}
        )
        if len(running) <= baseline:
            return
        await asyncio.sleep(0.2)
    ctx.say(f"containers of the short sessions still running after {SETTLE_TIMEOUT:g} s")


async def measure(ctx: Context) -> tuple[dict[str, list[Rate]], list[Running]]:
    counts = ctx.counts
    runs = await start_targets(ctx, [ProjectBridge(ctx), McpProxy(ctx), Supergateway(ctx)])
    rates: dict[str, list[Rate]] = {DIRECT: []}
    rates.update({r.name: [] for r in runs if not r.error})
    try:
        baseline = len(
            await asyncio.to_thread(ctx.docker.api.containers, filters={"label": f"{BENCH_LABEL}={ctx.run_id}"})
        )
        phases = [(DIRECT, lambda: one_stdio_session(ctx), lambda: Meter([], []))]
        for run in runs:
            if not run.error:
                target = run.target
                # Only containers that live through the phase can be metered.
                containers = await asyncio.to_thread(target.container_ids)
                phases.append(
                    (
                        run.name,
                        (lambda t: lambda: one_http_session(t))(target),
                        (lambda t, c: lambda: Meter(t.pids(), c))(target, containers),
                    )
                )
        for rep in range(counts.repeats):
            shift = rep % len(phases)
            for name, make, meter in phases[shift:] + phases[:shift]:
                rate = await timed(make, counts.short_seconds, counts.short_concurrency, meter())
                rates[name].append(rate)
                await settle(ctx, baseline)
            ctx.say(
                f"short sessions, run {rep + 1}/{counts.repeats}: "
                + ", ".join(f"{n} {rs[-1].per_second or 0:.1f}/s" for n, rs in rates.items() if rs)
            )
    finally:
        await stop_targets(runs)
    return rates, runs


def summarize(ctx: Context, rates: dict[str, list[Rate]], runs: list[Running]) -> Outcome:
    out = Outcome(KEY, TITLE)
    table = Table(
        f"{TITLE}: {ctx.counts.short_concurrency} clients × {ctx.counts.short_seconds:g} s, "
        f"{ctx.counts.repeats} run(s)",
        [
            "target",
            "sessions/s",
            "×bridge",
            "ms/session",
            "bridge µs/session",
            "server µs/session",
            "engine µs/session",
            "sessions",
            "errors",
        ],
    )
    base = rates.get(BRIDGE, [])
    data = {}
    for name in [DIRECT, *[r.name for r in runs]]:
        reps = rates.get(name)
        if reps is None:
            err = next((r.error for r in runs if r.name == name), "not run")
            table.add(name, "—", "—", "—", "—", "—", "—", "—", err[:60])
            data[name] = {"error": err}
            continue
        per_s = Spread.of(r.per_second for r in reps)
        rel = Spread.of(ratio(a.per_second, b.per_second) for a, b in zip(reps, base))
        ms = Spread.of(1000 * ctx.counts.short_concurrency / r.per_second if r.per_second else None for r in reps)
        errors = sum(r.errors for r in reps)
        first = next((r.first_error for r in reps if r.first_error), "")
        cpu = {
            part: Spread.of(r.cpu.per(r.sessions, part) if r.cpu else None for r in reps)
            for part in ("bridge", "server", "engine")
        }
        client = Spread.of(100 * r.cpu.client / r.seconds if r.cpu and r.seconds else None for r in reps)
        table.add(
            name,
            per_s.fmt(1),
            rel.fmt(3 if (rel.known and rel.median < 0.1) else 2),
            ms.fmt(1),
            cpu["bridge"].fmt(0),
            cpu["server"].fmt(0),
            cpu["engine"].fmt(0),
            sum(r.sessions for r in reps),
            errors,
        )
        data[name] = {
            "sessions_per_s": per_s,
            "vs_bridge": rel,
            "ms_per_session": ms,
            "errors": errors,
            "cpu_us_per_session": cpu,
            "load_generator_cpu_pct": client,
            "sessions": sum(r.sessions for r in reps),
            "first_error": first,
        }
    table.notes += [
        "each session: a new connection, initialize + notifications/initialized, tools/list, DELETE",
        "direct stdio: a new `docker run -i --rm IMAGE` per session (initialize, tools/list, close stdin): "
        "what a client without a bridge pays",
        "this bridge answers initialize from its cache: the server was initialized once, when served",
        "supergateway (--stateful) starts a container per session; mcp-proxy shares one child",
        "CPU per session: bridge = its process and children, server = the shared server container "
        "(— where each session has its own), engine = dockerd, containerd and the shared container's shim",
    ]
    client = data.get(BRIDGE, {}).get("load_generator_cpu_pct")
    if client is not None and client.known:
        table.notes.append(
            f"the load generator (one Python process) used {client.fmt(0)} % of a core during this bridge's runs"
        )
    out.tables.append(table)
    out.data = {
        "targets": data,
        "concurrency": ctx.counts.short_concurrency,
        "seconds": ctx.counts.short_seconds,
        "repeats": ctx.counts.repeats,
    }
    best_per_rep = []
    for i, b in enumerate(base):
        peers = [rates[p][i].per_second for p in PEERS if p in rates and i < len(rates[p])]
        peers = [p for p in peers if p]
        best_per_rep.append(ratio(b.per_second, max(peers)) if peers else None)
    x = Spread.of(best_per_rep)
    out.goals.append(
        Goal(
            "2",
            "short sessions/s, this bridge ÷ the best peer",
            "≥ 3×",
            x.fmt(1, "×") if x.known else "not measured",
            x.median >= 3 if x.known else None,
        )
    )
    return out


async def _sessions_workload(ctx: Context, target: HttpTarget) -> int:
    rate = await timed(
        lambda: one_http_session(target), ctx.counts.short_seconds, ctx.counts.short_concurrency, Meter([], [])
    )
    return rate.sessions


def run(ctx: Context, profile: bool = False) -> Outcome:
    rates, runs = asyncio.run(measure(ctx))
    out = summarize(ctx, rates, runs)
    if profile or any(g.met is False for g in out.goals):
        ctx.say("profiling the bridge under short sessions (a goal was missed or profiling was asked for)")
        try:
            out.data["profile"] = asyncio.run(
                profile_bridge(
                    ctx,
                    f"short sessions, {ctx.counts.short_concurrency} clients",
                    lambda target: _sessions_workload(ctx, target),
                )
            )
        except Exception as exc:
            out.data["profile"] = f"profiling failed: {exc}"
    return out
