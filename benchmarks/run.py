"""Runs the benchmarks, prints a table per benchmark and a Markdown summary, writes JSON.

    python -m benchmarks [--quick] [--only KEYS] [--out DIR] [--profile] [--label KEY=VALUE]

KEYS: comma-separated, by name or number: bridge (1), sessions (2), healing (3),
alb (4), scale (5); default all. BENCH_QUICK=1 is --quick: fewer runs and smaller
counts, for a fast pass. Results go to DIR (default bench-results/): bench-<time>.json
and .md, and latest.json / latest.md. Exit status 0 when every benchmark ran (goals
missed included: they are reported, not failed), 1 when one broke, 2 for a usage error.

Needs a Docker engine, the images mcp-orchestrator/mcp-server-time:latest and
mcp-orchestrator/busybox:test, and the peers from scripts/ensure-bench-tools.sh
(`make bench` sets all of that up first).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Callable, Optional, Sequence

from . import bench_alb, bench_bridge, bench_healing, bench_scale, bench_sessions
from .context import ROOT, Context, Counts
from .outcome import Outcome
from .report import Table, machine, write_results

BENCHMARKS: dict[str, tuple[str, Callable[[Context, bool], Outcome]]] = {
    "bridge": ("1", lambda ctx, profile: bench_bridge.run(ctx, profile)),
    "sessions": ("2", lambda ctx, profile: bench_sessions.run(ctx, profile)),
    "healing": ("3", lambda ctx, profile: bench_healing.run(ctx)),
    "alb": ("4", lambda ctx, profile: bench_alb.run(ctx)),
    "scale": ("5", lambda ctx, profile: bench_scale.run(ctx)),
}
TITLES = {
    "bridge": bench_bridge.TITLE,
    "sessions": bench_sessions.TITLE,
    "healing": bench_healing.TITLE,
    "alb": bench_alb.TITLE,
    "scale": bench_scale.TITLE,
}


def select(only: str) -> list[str]:
    """Benchmark keys from 'bridge,3,...'; ValueError naming an unknown one."""
    if not only:
        return list(BENCHMARKS)
    by_number = {num: key for key, (num, _) in BENCHMARKS.items()}
    keys = []
    for item in (i.strip() for i in only.split(",") if i.strip()):
        key = by_number.get(item, item)
        if key not in BENCHMARKS:
            raise ValueError(
                f"unknown benchmark {item!r}; known: " + ", ".join(f"{k} ({n})" for k, (n, _) in BENCHMARKS.items())
            )
        if key not in keys:
            keys.append(key)
    return keys


def ensure_images(ctx: Context) -> None:
    """Build the two images when missing (scripts/build-images.sh knows how)."""
    import docker.errors

    missing = []
    for tag in (ctx.time_image, ctx.busybox_image):
        try:
            ctx.docker.images.get(tag)
        except docker.errors.ImageNotFound:
            missing.append(tag)
    if missing:
        ctx.say(f"building {', '.join(missing)}")
        subprocess.run(["bash", str(ROOT / "scripts" / "build-images.sh"), *missing], check=True)


def summary_markdown(outcomes: list[Outcome], info: dict, quick: bool) -> str:
    goals = Table("Goals", ["#", "what", "goal", "measured", "verdict"], text_columns=5)
    for outcome in outcomes:
        if not outcome.available or (not outcome.goals and outcome.reason):
            goals.add(
                outcome.key,
                outcome.title,
                "",
                outcome.reason.splitlines()[0][:120] if outcome.reason else "not run",
                "n/a",
            )
        for g in outcome.goals:
            goals.add(g.benchmark, g.what, g.goal, g.measured, g.verdict)
    head = [
        f"### Benchmarks (`make bench`{', BENCH_QUICK=1' if quick else ''})",
        "",
        f"Measured {info['date']} on {info['cpus']} CPU(s) ({info['cpu'] or 'unknown CPU'}), "
        f"{info['memory_gib']} GiB, Linux {info['kernel']}, Python {info['python']}; load average "
        f"{info['load_before']} before, {info['load_after']} after (other work shares the machine). "
        f"Medians over repeated runs, the range in parentheses.",
        "",
        goals.markdown(),
    ]
    for outcome in outcomes:
        for table in outcome.tables:
            head += ["", table.markdown()]
    return "\n".join(head)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("BENCH_QUICK", "") not in ("", "0"),
        help="fewer runs and smaller counts (also BENCH_QUICK=1)",
    )
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # the smoke test's counts
    parser.add_argument(
        "--only",
        default=os.environ.get("BENCH_ONLY", ""),
        metavar="KEYS",
        help="bridge,sessions,healing,alb,scale (or 1-5), comma-separated",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results", metavar="DIR")
    parser.add_argument("--profile", action="store_true", help="profile the bridge even when its goals are met")
    parser.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra label on every container the run starts",
    )
    args = parser.parse_args(argv)
    try:
        keys = select(args.only)
    except ValueError as exc:
        parser.error(str(exc))
    labels = {}
    for item in args.label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--label {item!r}: write KEY=VALUE")
        labels[key] = value
    counts = Counts.tiny() if args.tiny else Counts.quick() if args.quick else Counts()
    ctx = Context(counts, args.out, extra_labels=labels)
    # SIGTERM ends the run like Ctrl-C: the clean-up below still runs.
    signal.signal(signal.SIGTERM, _interrupt)
    info = machine()
    info["load_before"] = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    outcomes: list[Outcome] = []
    broke = False
    try:
        ensure_images(ctx)
        for key in keys:
            num, fn = BENCHMARKS[key]
            ctx.say(f"--- benchmark {num}: {TITLES[key]}")
            t0 = time.monotonic()
            try:
                outcome = fn(ctx, args.profile)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                traceback.print_exc()
                outcome = Outcome(key, TITLES[key], available=False, reason=f"failed: {exc}")
                broke = True
            outcome.seconds = time.monotonic() - t0
            outcomes.append(outcome)
            print_outcome(outcome)
            removed = ctx.remove_containers()
            if removed:
                ctx.say(f"removed {removed} container(s) left by benchmark {num}")
    except KeyboardInterrupt:
        ctx.say("interrupted: cleaning up")
        broke = True
    finally:
        ctx.close()
    info["load_after"] = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    summary = summary_markdown(outcomes, info, args.quick)
    results = {
        "machine": info,
        "quick": args.quick,
        "tiny": args.tiny,
        "counts": counts.__dict__,
        "benchmarks": {o.key: o.to_dict() for o in outcomes},
    }
    path = write_results(args.out, results, summary)
    print("\n" + summary + "\n", flush=True)
    ctx.say(f"results: {path} (and {args.out / 'latest.md'})")
    return 1 if broke else 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def print_outcome(outcome: Outcome) -> None:
    print(flush=True)
    if not outcome.available:
        print(f"{outcome.title}: {outcome.reason}", flush=True)
    for table in outcome.tables:
        print(table.text(), flush=True)
        print(flush=True)
    profile = outcome.data.get("profile")
    if profile:
        print(profile, flush=True)
        print(flush=True)
    if outcome.goals:
        for g in outcome.goals:
            print(f"  goal {g.benchmark}: {g.what}: {g.measured} (goal {g.goal}): {g.verdict}", flush=True)
    print(f"  ({outcome.seconds:.0f} s)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
