"""`mcp-orchestrator run`: the four processes as children, for manual use.

Each process runs as `python -m services.<package>` with the same settings and
configuration files (passed as options and as $MCP_ORCHESTRATOR_SETTINGS /
$MCP_ORCHESTRATOR_CONFIG). A process whose socket already answers (a systemd unit, an
earlier `run`) is used as it is and not started again. The children's logs go to this
terminal. A child that dies is reported and started again with a back-off (1 s
doubling up to 30 s; systemd's Restart= does the same in production). Ctrl-C or
SIGTERM stops the children this launcher started, the scheduler first, and waits for
them; the MCP server containers keep running (the next container-agent adopts them).

`--one-shot` starts what is missing (never the dashboard), asks the scheduler for a
full reconcile, waits for convergence within a deadline, prints the outcome, stops
what it started and exits 0 only if everything converged.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence, TextIO

import zmq

from common.process import die_with_parent
from common.protocol import CodedError, to_plain
from common.reqrep import ReqClient
from common.settings import Settings

from .control import ControlClient, SchedulerUnavailable
from .fdstore import LauncherFdStore
from .status_view import judge, render_status

ROOT = Path(__file__).resolve().parents[2]
RESTART_BACKOFF = (1.0, 30.0)
# The exit status of a process that refused its arguments or settings.
USAGE_ERROR = 2
# A child that ran this long before dying starts again without delay.
STABLE_SECONDS = 60.0
STOP_TIMEOUT = 20.0
ONE_SHOT_TIMEOUT = 180.0
# The child whose listening sockets the launcher keeps across its restarts (the bridges').
SOCKET_KEEPER = "container-agent"


@dataclass(frozen=True)
class ChildSpec:
    name: str
    module: str
    args: tuple[str, ...] = ()
    endpoint: Optional[str] = None  # a REP socket that answers `ping` when it runs

    def argv(self, python: str = sys.executable) -> list[str]:
        """The command line that starts it."""
        return [python, "-m", self.module, *self.args]


@dataclass
class Child:
    spec: ChildSpec
    proc: Optional[subprocess.Popen] = None
    started_at: float = 0.0
    failures: int = 0
    next_start: float = 0.0
    adopted: bool = False  # found running: not ours to start or stop
    gave_up: bool = False  # exited with a usage error: starting it again cannot help


def module_for(package: str) -> Optional[str]:
    """`services.<package>` when it can be run with -m, else its main module, else None."""
    base = ROOT / "services" / package
    if (base / "__main__.py").exists():
        return f"services.{package}"
    if (base / "main.py").exists():
        return f"services.{package}.main"
    return None


def child_specs(
    settings: Settings,
    config: Path,
    settings_path: Optional[Path],
    *,
    dashboard: bool,
    container_labels: Sequence[str] = (),
) -> list[ChildSpec]:
    """The processes in start order (agents first: the scheduler talks to them)."""
    files = ("--settings", str(settings_path)) if settings_path else ()
    with_config = files + ("--config", str(config))
    z = settings.zmq
    labels = tuple(a for label in container_labels for a in ("--label", label))
    specs = [
        ChildSpec(
            "container-agent",
            module_for("container_agent") or "services.container_agent",
            with_config + labels,
            z.containers,
        ),
        ChildSpec("alb-agent", module_for("alb_agent") or "services.alb_agent", files, z.routes),
        ChildSpec("scheduler", module_for("scheduler") or "services.scheduler", with_config, z.scheduler_control),
    ]
    if dashboard:
        module = module_for("dashboard")
        if module is not None and module.endswith("dashboard"):
            specs.append(ChildSpec("dashboard", module, files))
    return specs


class Launcher:
    def __init__(
        self,
        specs: Sequence[ChildSpec],
        *,
        env: Optional[dict] = None,
        python: str = sys.executable,
        out: TextIO = sys.stderr,
        clock: Callable[[], float] = time.monotonic,
        store_dir: Optional[Path] = None,
    ) -> None:
        """`store_dir`: where the notify socket goes through which the container-agent
        hands its listening sockets to the launcher, to get them back when it is started
        again (None: it keeps none)."""
        self.children = [Child(spec) for spec in specs]
        self.fd_store = LauncherFdStore(store_dir) if store_dir is not None else None
        self.env = dict(os.environ if env is None else env)
        self.python = python
        self.out = out
        self.clock = clock
        self._stop: Optional[str] = None
        self._ctx = zmq.Context()

    def say(self, text: str) -> None:
        print(f"mcp-orchestrator: {text}", file=self.out, flush=True)

    # --- starting -------------------------------------------------------------------

    def answers(self, endpoint: Optional[str], timeout_ms: int = 300) -> bool:
        if endpoint is None:
            return False
        with ReqClient(self._ctx, endpoint, timeout_ms=timeout_ms, retries=0, src="launcher") as client:
            try:
                client.call("ping")
                return True
            except CodedError:
                return False

    def start_all(self) -> None:
        for child in self.children:
            if self.answers(child.spec.endpoint):
                child.adopted = True
                self.say(f"{child.spec.name} already runs at {child.spec.endpoint}: using it")
                continue
            self.spawn(child)

    def spawn(self, child: Child) -> None:
        if self.fd_store is not None and child.spec.name == SOCKET_KEEPER:
            self.fd_store.poll()  # what the previous run handed over before it died
            place = self.fd_store.prepare_child()

            def prepare() -> None:
                die_with_parent()
                place()

            child.proc = subprocess.Popen(
                child.spec.argv(self.python),
                env={**self.env, **self.fd_store.child_environment()},
                start_new_session=True,
                preexec_fn=prepare,
                close_fds=False,  # the launcher's own descriptors are close-on-exec
            )
        else:
            child.proc = subprocess.Popen(
                child.spec.argv(self.python), env=self.env, start_new_session=True, preexec_fn=die_with_parent
            )
        child.started_at = self.clock()
        self.say(f"started {child.spec.name} (pid {child.proc.pid})")

    # --- supervising ------------------------------------------------------------------

    def request_stop(self, reason: str) -> None:
        self._stop = self._stop or reason

    @property
    def stopping(self) -> bool:
        return self._stop is not None

    def check_children(self) -> None:
        """Report children that died; start them again when their back-off is over."""
        now = self.clock()
        for child in self.children:
            if child.adopted or child.gave_up or self.stopping:
                continue
            if child.proc is not None and child.proc.poll() is not None:
                code = child.proc.returncode
                ran = now - child.started_at
                if code == USAGE_ERROR:
                    self.say(
                        f"{child.spec.name} (pid {child.proc.pid}) refused its settings or "
                        f"arguments (status {code}); not started again: see its messages"
                    )
                    child.gave_up = True
                    child.proc = None
                    continue
                child.failures = 0 if ran >= STABLE_SECONDS else child.failures + 1
                delay = (
                    0.0
                    if child.failures == 0
                    else min(RESTART_BACKOFF[0] * 2 ** (child.failures - 1), RESTART_BACKOFF[1])
                )
                how = f"signal {-code}" if code < 0 else f"status {code}"
                self.say(
                    f"{child.spec.name} (pid {child.proc.pid}) exited with {how} after "
                    f"{ran:.0f} s; starting it again in {delay:.0f} s"
                )
                child.proc = None
                child.next_start = now + delay
            if child.proc is None and now >= child.next_start:
                self.spawn(child)

    def given_up(self) -> list[str]:
        return [c.spec.name for c in self.children if c.gave_up]

    def wait(self, seconds: float) -> None:
        deadline = self.clock() + seconds
        while not self.stopping and self.clock() < deadline:
            time.sleep(min(0.2, max(deadline - self.clock(), 0)))

    def supervise(self) -> None:
        while not self.stopping:
            if self.fd_store is not None:
                self.fd_store.poll()
            self.check_children()
            if self.given_up() and not any(c.proc is not None for c in self.children):
                self.request_stop("every process gave up")
            self.wait(0.5)

    def stop_all(self) -> list[str]:
        """Stop the children we started, last started first; the ones that needed a kill."""
        killed = []
        running = [c for c in reversed(self.children) if c.proc is not None and c.proc.poll() is None]
        for child in running:
            self.say(f"stopping {child.spec.name} (pid {child.proc.pid})")
            child.proc.send_signal(signal.SIGTERM)
            # One at a time: the scheduler lets go of the agents before they stop.
            try:
                child.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.say(f"{child.spec.name} did not stop in {STOP_TIMEOUT:.0f} s: killing it")
                child.proc.kill()
                child.proc.wait(5)
                killed.append(child.spec.name)
        if self.fd_store is not None:
            self.fd_store.close()
        self._ctx.destroy(linger=0)
        return killed


# --- the two modes ----------------------------------------------------------------------


def install_signals(launcher: Launcher) -> None:
    def handler(signum: int, frame: object) -> None:
        launcher.request_stop(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def run_forever(launcher: Launcher) -> int:
    install_signals(launcher)
    launcher.start_all()
    launcher.say("running; Ctrl-C stops the processes started here (the MCP server containers keep running)")
    try:
        launcher.supervise()
    finally:
        launcher.stop_all()
    launcher.say(f"stopped ({launcher._stop})")
    return 0


def run_one_shot(
    launcher: Launcher, settings: Settings, *, timeout: float = ONE_SHOT_TIMEOUT, out: TextIO = sys.stdout
) -> int:
    install_signals(launcher)
    launcher.start_all()
    deadline = time.monotonic() + timeout
    verdict = None
    state = None
    try:
        with ControlClient(settings, timeout_ms=1000) as client:
            while not launcher.stopping and time.monotonic() < deadline:
                launcher.check_children()
                if launcher.given_up():
                    return _one_shot_end(launcher, None, f"{', '.join(launcher.given_up())} could not start", out)
                try:
                    client.action("sync")
                    baseline = int(client.status().reconciles)
                    break
                except SchedulerUnavailable:
                    launcher.wait(0.5)
            else:
                return _one_shot_end(launcher, None, "the scheduler did not answer", out)
            while not launcher.stopping and time.monotonic() < deadline:
                launcher.check_children()
                if launcher.given_up():
                    break
                try:
                    state = to_plain(client.status())
                except SchedulerUnavailable:
                    launcher.wait(0.5)
                    continue
                verdict = judge(state, baseline)
                if verdict.done:
                    break
                launcher.wait(0.5)
    finally:
        launcher.stop_all()
    if state is not None:
        out.write(render_status(state, time.time()))
    if verdict is not None and verdict.done and verdict.converged:
        print("one-shot: converged", file=out)
        return 0
    why = (
        "interrupted"
        if launcher.stopping
        else (
            f"{', '.join(launcher.given_up())} could not start"
            if launcher.given_up()
            else "failed"
            if verdict is not None and verdict.done
            else f"not converged after {timeout:.0f} s"
        )
    )
    return _one_shot_end(launcher, verdict, why, out)


def _one_shot_end(launcher: Launcher, verdict, why: str, out: TextIO) -> int:
    print(f"one-shot: {why}", file=out)
    for reason in verdict.reasons if verdict is not None else []:
        print(f"  {reason}", file=out)
    print(
        "  (containers that were started keep running; they are served again when the container-agent runs)", file=out
    )
    return 1
