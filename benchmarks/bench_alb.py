"""Benchmark 4: ALB API calls per reconcile (AlbRouter against moto over HTTP).

For each size: every server routed from nothing; the same routes again (the no-op a
periodic reconcile is); the same no-op from a freshly started router (it knows no tags
yet); then one change at a time: a server added, a port changed, a server removed.
Reads are Describe* calls, writes are everything else. Wall times are moto's more
than ours and are only indicative.
"""

from __future__ import annotations

import time
from typing import Any

from services.alb_agent.aws_client import ApiCallCounter

from .aws_world import Moto
from .context import Context
from .outcome import Goal, Outcome
from .report import Table

KEY = "alb"
TITLE = "4. ALB API calls per reconcile (moto server)"
FIRST_PORT = 8000


def _routes(ports: dict[str, int]) -> dict[str, Any]:
    from services.alb_agent.model import DesiredRoute

    return {sid: DesiredRoute(port) for sid, port in ports.items()}


def measure_size(moto: Moto, n: int) -> dict[str, dict]:
    from common.settings import AwsSettings
    from services.alb_agent.router import AlbRouter

    world = moto.world()
    config = AwsSettings(
        region="us-east-1",
        alb_arn=world.alb_arn,
        listener_arn=world.listener_arn,
        vpc_id=world.vpc_id,
        endpoint_url=world.url,
        instance_id=world.instance_id,
        imds_endpoint=world.url,
        api_max_attempts=2,
    )
    ports = {f"srv-{i:03d}": FIRST_PORT + i for i in range(n)}
    router = AlbRouter(config)
    counter = ApiCallCounter(router.client)
    steps: dict[str, dict] = {}

    def step(name: str, router_: Any, counter_: ApiCallCounter, desired: dict[str, int]) -> None:
        t0 = time.perf_counter()
        result = router_.apply(_routes(desired))
        seconds = time.perf_counter() - t0
        reads, writes, calls = counter_.take()
        steps[name] = {
            "reads": reads,
            "writes": writes,
            "calls": calls,
            "seconds": round(seconds, 3),
            "ok": bool(result.ok),
            "actions": len(result.plan.actions),
        }

    step("from nothing", router, counter, ports)
    step("no-op", router, counter, ports)
    fresh = AlbRouter(config)
    step("no-op, new router", fresh, ApiCallCounter(fresh.client), ports)
    # Removed first: at 100 servers the ALB's default quotas (100 rules, 100 target groups)
    # are full, and an added server would rightly be refused.
    del ports[f"srv-{n - 1:03d}"]
    step("one server removed", router, counter, ports)
    ports[f"srv-{n:03d}"] = FIRST_PORT + n
    step("one server added", router, counter, ports)
    first = next(iter(ports))
    ports[first] = FIRST_PORT + 500
    step("one port changed", router, counter, ports)
    routed = {p for p in world.rule_paths() if p.startswith("/mcp/")}
    expected = {f"/mcp/{sid}" for sid in ports} | {f"/mcp/{sid}/*" for sid in ports}
    steps["check"] = {"routes_match": routed == expected}
    return steps


def run(ctx: Context) -> Outcome:
    out = Outcome(KEY, TITLE)
    moto = Moto().start()
    sizes: dict[int, dict[str, dict]] = {}
    try:
        for n in ctx.counts.alb_sizes:
            t0 = time.perf_counter()
            sizes[n] = measure_size(moto, n)
            ctx.say(f"ALB calls at {n} servers measured in {time.perf_counter() - t0:.1f} s")
    finally:
        moto.stop()
    names = ["from nothing", "no-op", "no-op, new router", "one server removed", "one server added", "one port changed"]
    table = Table(TITLE, ["servers", *[f"{s} (r/w)" for s in names]])
    for n, steps in sizes.items():
        table.add(
            n, *[f"{steps[s]['reads']}/{steps[s]['writes']}" + ("" if steps[s]["ok"] else " FAILED") for s in names]
        )
    table.notes += [
        "r/w = Describe* calls / all other calls, counted on the router's boto3 client",
        "the no-op is what a periodic reconcile costs; a new router (an agent restart) reads the tags once",
        "moto pages describe_rules at 50 (AWS at 100 by default): more rule pages than AWS would need",
        "one change, in this order: a server removed, one added, a port changed (100 servers fill the "
        "ALB's default quotas of 100 rules and 100 target groups)",
    ]
    for n, steps in sizes.items():
        noop = steps["no-op"]
        table.notes.append(f"{n} servers, no-op calls: " + ", ".join(f"{k}={v}" for k, v in noop["calls"].items()))
        if not steps["check"]["routes_match"]:
            table.notes.append(f"{n} servers: the rules in moto do not match the routes asked for")
    out.tables.append(table)
    out.data = {"sizes": {str(n): s for n, s in sizes.items()}}
    biggest = max(sizes) if sizes else None
    if biggest is not None:
        s = sizes[biggest]
        noop = s["no-op"]
        out.goals.append(
            Goal(
                "4",
                f"no-op reconcile at {biggest} servers",
                "≤ 5 reads, 0 writes",
                f"{noop['reads']} reads, {noop['writes']} writes",
                noop["reads"] <= 5 and noop["writes"] == 0,
            )
        )
        changes = ("one server removed", "one server added", "one port changed")
        worst = max(s[k]["writes"] for k in changes)
        failed = [k for k in changes if not s[k]["ok"]]
        out.goals.append(
            Goal(
                "4",
                f"one change at {biggest} servers (remove, add, port)",
                "≤ 5 writes",
                f"at most {worst} writes" + (f"; failed: {', '.join(failed)}" if failed else ""),
                worst <= 5 and not failed,
            )
        )
    return out
