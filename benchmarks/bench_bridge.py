"""Benchmark 1: tools/call latency and throughput through each bridge, in both protocol eras.

All five targets run side by side for the whole benchmark. Two workloads, on the same
targets, image and load generator:

- handshake era (2025-06-18): 1, 8 and 32 concurrent sessions, each initialized once
  (initialize + notifications/initialized) and then calling back to back;
- 2026-07-28 (stateless): 8 and 32 concurrent clients, each call one POST that carries
  its protocol version and capabilities in `params._meta` and mirrors them in headers,
  with no initialize and no session. A target that cannot serve it is shown as n/a
  with the reason it gave, found by asking it, not assumed.

For each number of concurrent sessions or clients, each repeat measures every target
once, in an order rotated per repeat (a neighbour's load hits every target alike), and
the ratios to this project are computed within the repeat before their median is
taken. Calls are `get_current_time`; latency is one call's round trip as the load
generator sees it, calls/s is all clients' calls over the phase's wall time.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from .context import Context
from .mcp_client import MODERN_VERSION, PROTOCOL_VERSION
from .meter import CpuUse, Meter
from .outcome import Goal, Outcome
from .report import Table
from .stats import Spread, percentile, ratio
from .targets import (
    DirectStdio,
    McpProxyNpm,
    McpProxyPypi,
    ProjectBridge,
    ProjectBridgeQuiet,
    Session,
    Supergateway,
    Target,
    ToolCaller,
)

KEY = "bridge"
TITLE = "1. Bridge latency and throughput (tools/call get_current_time)"
TOOL, ARGS = "get_current_time", {"timezone": "UTC"}
# Sessions opened at once on one target (supergateway starts a container for each).
OPEN_CONCURRENCY = 4
BRIDGE = ProjectBridge.name
DIRECT = DirectStdio.name
QUIET = ProjectBridgeQuiet.name
PEERS = (McpProxyNpm.name, McpProxyPypi.name, Supergateway.name)


@dataclass
class PhaseResult:
    latencies: list[float]
    wall: float
    errors: int
    cpu: CpuUse
    first_error: str = ""

    @property
    def calls(self) -> int:
        return len(self.latencies)

    def p(self, q: float) -> Optional[float]:
        return percentile(self.latencies, q) * 1000 if self.latencies else None

    @property
    def calls_per_s(self) -> Optional[float]:
        return self.calls / self.wall if self.calls and self.wall > 0 else None


# Concurrency level -> target name -> one result per repeat.
Levels = dict[int, dict[str, list[PhaseResult]]]


@dataclass
class Running:
    target: Target
    sessions: list[Session] = field(default_factory=list)
    error: str = ""  # why it is not measured at all
    containers: list[str] = field(default_factory=list)
    stateless: list[ToolCaller] = field(default_factory=list)  # 2026-07-28 clients
    modern_error: str = ""  # why its 2026-07-28 workload is not measured

    @property
    def name(self) -> str:
        return self.target.name

    def meter(self) -> Meter:
        return Meter(self.target.pids(), self.containers)


@dataclass
class Measured:
    sessions: Levels  # the handshake era
    modern: Levels  # 2026-07-28, stateless
    runs: list[Running]


async def phase(run: Running, callers: Sequence[ToolCaller], calls: int) -> PhaseResult:
    latencies: list[float] = []
    errors = 0
    first_error = ""
    clock = time.perf_counter

    async def worker(caller: ToolCaller) -> None:
        nonlocal errors, first_error
        append = latencies.append
        for _ in range(calls):
            t0 = clock()
            try:
                await caller.call_tool(TOOL, ARGS)
            except Exception as exc:
                errors += 1
                first_error = first_error or f"{type(exc).__name__}: {exc}"[:200]
                continue
            append(clock() - t0)

    meter = run.meter()
    meter.start()
    t0 = clock()
    await asyncio.gather(*(worker(c) for c in callers))
    wall = clock() - t0
    return PhaseResult(latencies, wall, errors, meter.stop(), first_error)


async def open_sessions(run: Running, count: int, ctx: Context) -> None:
    limit = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def one() -> Session:
        async with limit:
            return await run.target.open_session()

    t0 = time.perf_counter()
    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise RuntimeError(f"opening a session failed: {r}")
        run.sessions.append(r)
    ctx.say(f"{run.name}: {count} session(s) open in {time.perf_counter() - t0:.1f} s")


async def open_stateless(run: Running, count: int, ctx: Context) -> None:
    """`count` 2026-07-28 clients, warmed up. The first call asks whether the target
    serves that era at all: run.modern_error holds its answer when it does not (or why
    it is not loaded although it does)."""
    target = run.target
    clients: list[ToolCaller] = []
    try:
        clients = [await target.open_stateless() for _ in range(count)]
        t0 = time.perf_counter()
        await clients[0].call_tool(TOOL, ARGS)
        if target.modern_unloaded:
            run.modern_error = f"{target.modern_unloaded}; one call took {time.perf_counter() - t0:.2f} s"
    except Exception as exc:
        run.modern_error = f"{MODERN_VERSION} tools/call failed: {type(exc).__name__}: {exc}"
    if run.modern_error:
        for client in clients:
            client.close()
        ctx.say(f"{run.name}: {run.modern_error}")
        return
    run.stateless = clients
    # The floor serves this era from a server of its own: meter it too.
    run.containers = await asyncio.to_thread(target.container_ids)
    await asyncio.gather(*(phase(run, [c], ctx.counts.warmup_calls) for c in clients))


async def start_targets(ctx: Context, targets: list[Target]) -> list[Running]:
    runs = []
    for target in targets:
        run = Running(target)
        t0 = time.perf_counter()
        try:
            await target.start()
            ctx.say(f"{target.name}: started in {time.perf_counter() - t0:.1f} s")
        except Exception as exc:
            run.error = f"did not start: {exc}"
            ctx.say(f"{target.name}: {run.error}")
        runs.append(run)
    return runs


async def stop_targets(runs: list[Running]) -> None:
    for run in runs:
        for session in run.sessions:
            try:
                await asyncio.wait_for(session.delete(), 10)
            except Exception:
                pass
            session.close()
        run.sessions.clear()
        for client in run.stateless:
            client.close()
        run.stateless.clear()
        try:
            await run.target.stop()
        except Exception:
            pass


async def rounds(
    ctx: Context,
    live: list[Running],
    levels: Sequence[int],
    callers: Callable[[Running], Sequence[ToolCaller]],
    what: str,
) -> Levels:
    """Each level, `repeats` times: every live target once, the order rotated per repeat."""
    counts = ctx.counts
    results: Levels = {}
    for level in levels:
        per: dict[str, list[PhaseResult]] = {r.name: [] for r in live}
        for rep in range(counts.repeats):
            shift = rep % len(live) if live else 0
            for run in live[shift:] + live[:shift]:
                per[run.name].append(await phase(run, callers(run)[:level], counts.calls_for(level)))
            line = ", ".join(
                f"{n} p50 {rs[-1].p(50) or 0:.2f} ms {rs[-1].calls_per_s or 0:.0f}/s" for n, rs in per.items()
            )
            ctx.say(f"{level} {what}, run {rep + 1}/{counts.repeats}: {line}")
        results[level] = per
    return results


async def measure(ctx: Context) -> Measured:
    counts = ctx.counts
    targets: list[Target] = [
        DirectStdio(ctx),
        ProjectBridge(ctx),
        ProjectBridgeQuiet(ctx),
        McpProxyNpm(ctx),
        McpProxyPypi(ctx),
        Supergateway(ctx),
    ]
    runs = await start_targets(ctx, targets)
    try:
        most = max(counts.levels)
        for run in runs:
            if run.error:
                continue
            try:
                await open_sessions(run, most, ctx)
                run.containers = await asyncio.to_thread(run.target.container_ids)
                await asyncio.gather(*(phase(run, [s], counts.warmup_calls) for s in run.sessions))
            except Exception as exc:
                run.error = str(exc)
                ctx.say(f"{run.name}: {run.error}")
        live = [r for r in runs if not r.error]
        sessions = await rounds(ctx, live, counts.levels, lambda r: r.sessions, f"{PROTOCOL_VERSION} session(s)")
        if counts.modern_levels:
            for run in live:
                await open_stateless(run, max(counts.modern_levels), ctx)
        modern = await rounds(
            ctx,
            [r for r in live if not r.modern_error],
            counts.modern_levels,
            lambda r: r.stateless,
            f"{MODERN_VERSION} stateless client(s)",
        )
    finally:
        await stop_targets(runs)
    return Measured(sessions, modern, runs)


def _by_rep(per: dict[str, list[PhaseResult]], name: str, fn) -> list[Optional[float]]:
    return [fn(r) for r in per.get(name, [])]


COLUMNS = [
    "target",
    "p50 ms",
    "p99 ms",
    "calls/s",
    "p50 ×bridge",
    "p99 ×bridge",
    "calls/s ×bridge",
    "bridge µs/call",
    "server µs/call",
    "dockerd µs/call",
    "containerd µs/call",
    "shim µs/call",
    "client µs/call",
    "machine µs/call",
    "idle µs/call",
    "errors",
]


def level_table(title: str, per: dict[str, list[PhaseResult]], names: list[str], unavailable: dict[str, str]):
    """One level's table and its numbers; a target in `unavailable` is n/a with its reason."""
    table = Table(title, list(COLUMNS))
    level_data: dict[str, Any] = {}
    base = per.get(BRIDGE, [])
    for name in names:
        reps = per.get(name)
        if reps is None:
            reason = unavailable.get(name, "not measured")
            table.add(name, *["n/a"] * (len(COLUMNS) - 2), "—")
            table.notes.append(f"{name}: n/a: {reason.splitlines()[0][:300]}")
            level_data[name] = {"error": reason}
            continue

        def rel(fn) -> Spread:
            return Spread.of(
                ratio(fn(a), fn(b)) if b is not None else None
                for a, b in zip(reps, base + [None] * (len(reps) - len(base)))
            )

        p50 = Spread.of(_by_rep(per, name, lambda r: r.p(50)))
        p99 = Spread.of(_by_rep(per, name, lambda r: r.p(99)))
        cps = Spread.of(_by_rep(per, name, lambda r: r.calls_per_s))
        cpu = {
            part: Spread.of(_by_rep(per, name, lambda r: r.cpu.per(r.calls, part)))
            for part in ("bridge", "server", "dockerd", "containerd", "shim", "client", "machine", "idle")
        }
        client = Spread.of(_by_rep(per, name, lambda r: 100 * r.cpu.client / r.wall if r.wall else None))
        errors = sum(r.errors for r in reps)
        first = next((r.first_error for r in reps if r.first_error), "")
        if first:
            table.notes.append(f"{name}: {errors} failed call(s), the first: {first}")
        r50, r99, rcps = (rel(lambda r: r.p(50)), rel(lambda r: r.p(99)), rel(lambda r: r.calls_per_s))
        table.add(
            name,
            p50.fmt(2),
            p99.fmt(2),
            cps.fmt(0),
            r50.fmt(2),
            r99.fmt(2),
            rcps.fmt(2),
            cpu["bridge"].fmt(0),
            cpu["server"].fmt(0),
            cpu["dockerd"].fmt(0),
            cpu["containerd"].fmt(0),
            cpu["shim"].fmt(0),
            cpu["client"].fmt(0),
            cpu["machine"].fmt(0),
            cpu["idle"].fmt(0),
            errors,
        )
        level_data[name] = {
            "p50_ms": p50,
            "p99_ms": p99,
            "calls_per_s": cps,
            "p50_vs_bridge": r50,
            "p99_vs_bridge": r99,
            "calls_per_s_vs_bridge": rcps,
            "cpu_us_per_call": cpu,
            "load_generator_cpu_pct": client,
            "errors": errors,
            "first_error": first,
            "calls": sum(r.calls for r in reps),
        }
    table.notes.append(
        "median (min–max) over the runs; ×bridge = the target's value ÷ this bridge's, "
        "per run; CPU per call: bridge = its process and children (the peers' docker "
        "CLI), server = the container(s) of the MCP server (their cgroup), dockerd, containerd "
        "and shim = the engine's parts, each its own threads only (the shims of the server containers: their "
        "children are the server), "
        "client = the load generator, machine = every core's busy time whoever used it (the rest of machine "
        "minus the parts is everything else: the kernel's work for no process, other processes), idle = "
        "every core's idle time"
    )
    client = Spread.of(_by_rep(per, BRIDGE, lambda r: 100 * r.cpu.client / r.wall if r.wall else None))
    if client.known:
        table.notes.append(
            f"the load generator (one Python process) used {client.fmt(0)} % of a core during this bridge's runs"
        )
    return table, level_data


def summarize(ctx: Context, measured: Measured) -> Outcome:
    out = Outcome(KEY, TITLE)
    runs = measured.runs
    names = [r.name for r in runs]
    notes = {r.name: r.target.note for r in runs}
    counts = ctx.counts
    floor_note = (
        "direct stdio pipes through the docker CLI, which attaches to dockerd; the "
        "bridge attaches to dockerd itself, one hop less, so with several clients it "
        "can outrun this floor"
    )
    levels_data: dict[str, Any] = {}
    not_run = {r.name: r.error for r in runs if r.error}
    for level, per in measured.sessions.items():
        table, levels_data[str(level)] = level_table(
            f"{TITLE}: {level} concurrent {PROTOCOL_VERSION} session(s), {counts.calls_for(level)} calls each, "
            f"{counts.repeats} run(s)",
            per,
            names,
            not_run,
        )
        table.notes.insert(0, "each session: initialize + notifications/initialized once, then tools/call back to back")
        if level > 1:
            table.notes.append(floor_note)
        out.tables.append(table)
    modern_data: dict[str, Any] = {}
    unserved = {r.name: r.error or r.modern_error for r in runs if r.error or r.modern_error}
    for level, per in measured.modern.items():
        table, modern_data[str(level)] = level_table(
            f"{TITLE}: {level} concurrent {MODERN_VERSION} stateless client(s), {counts.calls_for(level)} calls "
            f"each, {counts.repeats} run(s)",
            per,
            names,
            unserved,
        )
        table.notes.insert(
            0,
            f"each call: one stateless {MODERN_VERSION} POST (params._meta protocolVersion and "
            "clientCapabilities, MCP-Protocol-Version, Mcp-Method and Mcp-Name headers), no initialize, "
            "no Mcp-Session-Id; each client keeps one keep-alive connection; direct stdio writes the same "
            "request to a server of its own that was never initialized (the image's MCP SDK answers it "
            "without a handshake)",
        )
        table.notes.append(floor_note)
        out.tables.append(table)
    if out.tables:
        out.tables[-1].notes += [f"{n}: {notes[n]}" for n in names]
    out.data = {
        "levels": levels_data,
        "protocol": PROTOCOL_VERSION,
        "modern": {
            "protocol": MODERN_VERSION,
            "levels": modern_data,
            "calls": {str(k): counts.calls_for(k) for k in counts.modern_levels},
            "unavailable": unserved,
        },
        "tool": TOOL,
        "calls": {str(k): counts.calls_for(k) for k in counts.levels},
        "repeats": counts.repeats,
        "targets": notes,
    }
    out.goals = goals(measured.sessions)
    return out


def goals(results: Levels) -> list[Goal]:
    found: list[Goal] = []
    one = results.get(1, {})
    if one:
        gaps = Spread.of(
            b.p(50) - d.p(50) if b.p(50) is not None and d.p(50) is not None else None
            for b, d in zip(one.get(BRIDGE, []), one.get(DIRECT, []))
        )
        found.append(
            Goal(
                "1",
                "p50 at 1 session, minus direct stdio's",
                "≤ 1 ms",
                gaps.fmt(2, " ms") if gaps.known else "not measured",
                gaps.median <= 1.0 if gaps.known else None,
            )
        )
    for level, per in sorted(results.items()):
        # Counting and the access log must cost little: compared within each run.
        for what, fn, bound, ok in (
            ("calls/s", lambda r: r.calls_per_s, "≥ 0.95×", lambda x: x >= 0.95),
            ("p50", lambda r: r.p(50), "≤ 1.05×", lambda x: x <= 1.05),
        ):
            x = Spread.of(ratio(fn(b), fn(q)) for b, q in zip(per.get(BRIDGE, []), per.get(QUIET, [])))
            found.append(
                Goal(
                    "1",
                    f"{what} at {level} session(s), counted and logged ÷ unobserved",
                    bound,
                    x.fmt(3, "×") if x.known else "not measured",
                    ok(x.median) if x.known else None,
                )
            )
    for level in (8, 32):
        per = results.get(level)
        if not per:
            continue
        for peer in PEERS:
            x = Spread.of(ratio(b.calls_per_s, p.calls_per_s) for b, p in zip(per.get(BRIDGE, []), per.get(peer, [])))
            found.append(
                Goal(
                    "1",
                    f"calls/s at {level} sessions, this bridge ÷ {peer}",
                    "≥ 2×",
                    x.fmt(2, "×") if x.known else f"not measured: {peer} unavailable",
                    x.median >= 2.0 if x.known else None,
                )
            )
    return found


async def profile_bridge(ctx: Context, what: str, workload, top: int = 25) -> str:
    """cProfile of the bridge's own thread while `await workload(target)` runs; the
    statistics by own time, as text."""
    import io
    import pstats

    path = ctx.work / "bridge.prof"
    target = ProjectBridge(ctx, profile=str(path))
    try:
        await target.start()
        t0 = time.perf_counter()
        done = await workload(target)
        seconds = time.perf_counter() - t0
    finally:
        await target.stop()  # the profile is written when the bridge process exits
    buf = io.StringIO()
    stats = pstats.Stats(str(path), stream=buf)
    stats.sort_stats("tottime").print_stats(top)
    head = f"cProfile of this bridge's thread: {what} ({done / seconds:.0f}/s while profiled); by own time:\n"
    body = buf.getvalue().splitlines()
    # pstats' preamble (date, file name) says nothing useful here.
    start = next((i for i, line in enumerate(body) if "function calls" in line), 0)
    return head + "\n".join(line for line in body[start:] if line.strip())


async def _calls_workload(ctx: Context, level: int, calls: int, target: ProjectBridge) -> int:
    run = Running(target)
    await open_sessions(run, level, ctx)
    try:
        result = await phase(run, run.sessions, calls)
    finally:
        for session in run.sessions:
            session.close()
    return result.calls


def run(ctx: Context, profile: bool = False) -> Outcome:
    out = summarize(ctx, asyncio.run(measure(ctx)))
    if profile or any(g.met is False for g in out.goals):
        level = max(ctx.counts.levels)
        ctx.say("profiling the bridge (a goal was missed or profiling was asked for)")
        calls = ctx.counts.calls_for(level)
        try:
            out.data["profile"] = asyncio.run(
                profile_bridge(
                    ctx,
                    f"{level} sessions × {calls} tools/call",
                    lambda target: _calls_workload(ctx, level, calls, target),
                )
            )
        except Exception as exc:
            out.data["profile"] = f"profiling failed: {exc}"
    return out
