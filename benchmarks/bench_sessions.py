"""Benchmark 2: short sessions per second (LiteLLM's pattern).

Each session is a new connection that does one small thing and goes away. Three
cycles, each a row per target:

- 2025-06-18: initialize (+ notifications/initialized), tools/list, DELETE. This
  bridge answers all of it from what the server said when it was served (initialize
  result, tools list), so its sessions never reach the server;
- 2025-06-18: initialize (+ notifications/initialized), tools/call, DELETE: the call
  reaches the server through every target;
- 2026-07-28: one stateless POST tools/call (no initialize, no session): the same work
  in the new protocol revision. A target that does not serve it is n/a, with the
  answer it gave to one such request.

A few clients run sessions back to back for a fixed time; the rate is the sessions
completed over the time until the last one ended. The (cycle, target) phases are
measured one after the other, in an order rotated per repeat, and each phase waits
until the containers a peer started for its sessions are gone, so that one phase's
clean-up does not load the next one's.

The direct row is what a client without a bridge does for a short session: start
`docker run -i --rm IMAGE`, initialize, list the tools, close stdin.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Optional

from .bench_bridge import ARGS, TOOL, Running, profile_bridge, start_targets, stop_targets
from .context import BENCH_LABEL, Context
from .mcp_client import MODERN_VERSION, PROTOCOL_VERSION, HttpSession, StdioServer
from .meter import CpuUse, Meter
from .outcome import Goal, Outcome
from .report import Table
from .stats import Spread, ratio
from .targets import DirectStdio, HttpTarget, McpProxyNpm, McpProxyPypi, ProjectBridge, Supergateway

KEY = "sessions"
TITLE = "2. Short sessions per second (LiteLLM's pattern: a new connection per session)"
BRIDGE = ProjectBridge.name
DIRECT = DirectStdio.name
PEERS = (McpProxyNpm.name, McpProxyPypi.name, Supergateway.name)
SETTLE_TIMEOUT = 60.0


@dataclass(frozen=True)
class Cycle:
    key: str  # in the JSON
    label: str  # in the table: what one session does, and who answers the bridge's
    targets: tuple[str, ...]  # the targets it is measured on, in table order
    final: str = ""  # a handshake-era session's request after initialize
    modern: bool = False  # one stateless 2026-07-28 request instead of a session


LIST = Cycle(
    "session-tools-list",
    f"{PROTOCOL_VERSION}: initialize → notifications/initialized → tools/list → DELETE "
    "(this bridge: tools/list from its cache)",
    (DIRECT, BRIDGE, *PEERS),
    final="tools/list",
)
CALL = Cycle(
    "session-tools-call",
    f"{PROTOCOL_VERSION}: initialize → notifications/initialized → tools/call → DELETE "
    "(tools/call answered by the server)",
    (BRIDGE, McpProxyNpm.name),
    final="tools/call",
)
MODERN = Cycle(
    "modern-tools-call",
    f"{MODERN_VERSION}: one stateless POST tools/call (answered by the server)",
    (BRIDGE, *PEERS),
    modern=True,
)
CYCLES = (LIST, CALL, MODERN)


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


async def one_http_session(target: HttpTarget, final: str = "tools/list") -> None:
    """A new connection: initialize, `final` (tools/list or tools/call), DELETE."""
    session = HttpSession("127.0.0.1", target.port, target.path)
    try:
        await session.initialize()
        if final == "tools/call":
            await session.call_tool(TOOL, ARGS)
        else:
            tools = await session.request("tools/list")
            if not isinstance(tools, dict) or not tools.get("tools"):
                raise RuntimeError(f"tools/list gave no tools: {str(tools)[:100]}")
        status = await session.delete()
        if status not in (200, 202, 204, 405):
            raise RuntimeError(f"DELETE answered HTTP {status}")
    finally:
        session.close()


async def one_modern_call(target: HttpTarget) -> None:
    """A new connection: one stateless 2026-07-28 tools/call."""
    client = await target.open_stateless()
    try:
        await client.call_tool(TOOL, ARGS)
    finally:
        client.close()


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


# (cycle key, target name) -> one rate per repeat
Rates = dict[tuple[str, str], list[Rate]]


@dataclass
class Measured:
    rates: Rates
    unavailable: dict[tuple[str, str], str]  # why a (cycle, target) was not measured
    runs: list[Running]


def _session_maker(cycle: Cycle, target: HttpTarget):
    if cycle.modern:
        return lambda: one_modern_call(target)
    return lambda: one_http_session(target, cycle.final)


async def measure(ctx: Context) -> Measured:
    counts = ctx.counts
    runs = await start_targets(ctx, [ProjectBridge(ctx), McpProxyNpm(ctx), McpProxyPypi(ctx), Supergateway(ctx)])
    by_name = {r.name: r for r in runs}
    rates: Rates = {}
    unavailable: dict[tuple[str, str], str] = {}
    try:
        baseline = len(
            await asyncio.to_thread(ctx.docker.api.containers, filters={"label": f"{BENCH_LABEL}={ctx.run_id}"})
        )
        phases = []
        for cycle in CYCLES:
            for name in cycle.targets:
                if name == DIRECT:
                    phases.append((cycle, name, lambda: one_stdio_session(ctx), lambda: Meter([], [])))
                    continue
                run = by_name[name]
                if run.error:
                    unavailable[(cycle.key, name)] = run.error
                    continue
                target = run.target
                assert isinstance(target, HttpTarget)
                if cycle.modern:
                    # Whether it serves 2026-07-28 at all: its answer to one request.
                    try:
                        await one_modern_call(target)
                    except Exception as exc:
                        reason = f"{MODERN_VERSION} tools/call failed: {type(exc).__name__}: {exc}"
                        unavailable[(cycle.key, name)] = reason
                        ctx.say(f"{name}: {reason}")
                        continue
                # Only containers that live through the phase can be metered.
                containers = await asyncio.to_thread(target.container_ids)
                phases.append(
                    (
                        cycle,
                        name,
                        _session_maker(cycle, target),
                        (lambda t, c: lambda: Meter(t.pids(), c))(target, containers),
                    )
                )
        for cycle, name, _, _ in phases:
            rates[(cycle.key, name)] = []
        for rep in range(counts.repeats):
            shift = rep % len(phases)
            for cycle, name, make, meter in phases[shift:] + phases[:shift]:
                rate = await timed(make, counts.short_seconds, counts.short_concurrency, meter())
                rates[(cycle.key, name)].append(rate)
                await settle(ctx, baseline)
            for cycle in CYCLES:
                line = ", ".join(
                    f"{n} {rs[-1].per_second or 0:.1f}/s" for (k, n), rs in rates.items() if k == cycle.key and rs
                )
                ctx.say(f"short sessions, run {rep + 1}/{counts.repeats}, {cycle.key}: {line}")
    finally:
        await stop_targets(runs)
    return Measured(rates, unavailable, runs)


COLUMNS = [
    "cycle",
    "target",
    "sessions/s",
    "×bridge",
    "ms/session",
    "bridge µs/session",
    "server µs/session",
    "engine µs/session",
    "sessions",
    "errors",
]


def summarize(ctx: Context, measured: Measured) -> Outcome:
    out = Outcome(KEY, TITLE)
    counts = ctx.counts
    table = Table(
        f"{TITLE}: {counts.short_concurrency} clients × {counts.short_seconds:g} s, {counts.repeats} run(s)",
        list(COLUMNS),
        text_columns=2,
    )
    cycles_data: dict[str, dict] = {}
    for cycle in CYCLES:
        base = measured.rates.get((cycle.key, BRIDGE), [])
        data: dict[str, dict] = {}
        for i, name in enumerate(cycle.targets):
            label = cycle.label if i == 0 else ""  # once per group of rows
            reps = measured.rates.get((cycle.key, name))
            if reps is None:
                reason = measured.unavailable.get((cycle.key, name), "not run")
                table.add(label, name, *["n/a"] * (len(COLUMNS) - 3), "—")
                table.notes.append(f"{name}, {cycle.key}: n/a: {reason.splitlines()[0][:300]}")
                data[name] = {"error": reason}
                continue
            per_s = Spread.of(r.per_second for r in reps)
            rel = Spread.of(ratio(a.per_second, b.per_second) for a, b in zip(reps, base))
            ms = Spread.of(1000 * counts.short_concurrency / r.per_second if r.per_second else None for r in reps)
            errors = sum(r.errors for r in reps)
            first = next((r.first_error for r in reps if r.first_error), "")
            if first:
                table.notes.append(f"{name}, {cycle.key}: {errors} failed session(s), the first: {first}")
            cpu = {
                part: Spread.of(r.cpu.per(r.sessions, part) if r.cpu else None for r in reps)
                for part in ("bridge", "server", "engine")
            }
            client = Spread.of(100 * r.cpu.client / r.seconds if r.cpu and r.seconds else None for r in reps)
            table.add(
                label,
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
        cycles_data[cycle.key] = {"label": cycle.label, "targets": data}
    table.notes += [
        "each session: a new connection that does what its cycle says and goes away; ×bridge = the "
        "target's rate ÷ this bridge's in the same cycle, per run",
        f"{LIST.key}: this bridge answers initialize and tools/list from its cache (the server was "
        "initialized and listed once, when served), so its sessions never reach the server; "
        f"{CALL.key} and {MODERN.key}: tools/call reaches the server through every target",
        f"{MODERN.key}: a 'session' is one new connection with one {MODERN_VERSION} POST "
        "(params._meta protocolVersion and clientCapabilities, MCP-Protocol-Version, Mcp-Method and "
        "Mcp-Name headers): no initialize, no Mcp-Session-Id, no DELETE",
        "direct stdio: a new `docker run -i --rm IMAGE` per session (initialize, tools/list, close stdin): "
        "what a client without a bridge pays",
        "supergateway (--stateful) starts a container per session, and one per 2026-07-28 request; "
        "both mcp-proxy programs share one child",
        "CPU per session: bridge = its process and children, server = the shared server container "
        "(— where each session has its own), engine = dockerd, containerd and the shared container's shim",
    ]
    client = cycles_data[LIST.key]["targets"].get(BRIDGE, {}).get("load_generator_cpu_pct")
    if client is not None and client.known:
        table.notes.append(
            f"the load generator (one Python process) used {client.fmt(0)} % of a core during this bridge's "
            f"{LIST.key} runs"
        )
    out.tables.append(table)
    out.data = {
        "cycles": cycles_data,
        "concurrency": counts.short_concurrency,
        "seconds": counts.short_seconds,
        "repeats": counts.repeats,
    }
    rates = measured.rates
    base = rates.get((LIST.key, BRIDGE), [])
    best_per_rep = []
    for i, b in enumerate(base):
        peers = [rates[(LIST.key, p)][i].per_second for p in PEERS if i < len(rates.get((LIST.key, p), []))]
        peers = [p for p in peers if p]
        best_per_rep.append(ratio(b.per_second, max(peers)) if peers else None)
    x = Spread.of(best_per_rep)
    out.goals.append(
        Goal(
            "2",
            f"short sessions/s ({PROTOCOL_VERSION}, tools/list), this bridge ÷ the best peer",
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
    out = summarize(ctx, asyncio.run(measure(ctx)))
    if profile or any(g.met is False for g in out.goals):
        ctx.say("profiling the bridge under short sessions (a goal was missed or profiling was asked for)")
        try:
            out.data["profile"] = asyncio.run(
                profile_bridge(
                    ctx,
                    f"short sessions ({LIST.key}), {ctx.counts.short_concurrency} clients",
                    lambda target: _sessions_workload(ctx, target),
                )
            )
        except Exception as exc:
            out.data["profile"] = f"profiling failed: {exc}"
    return out
