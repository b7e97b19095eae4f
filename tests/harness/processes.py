"""A child process with its output in a log file, and the launcher's specs of the
orchestrator's processes (so their command lines are spelled once, in the product)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from signal import SIGKILL, SIGTERM
from typing import Callable, Mapping, Optional, Sequence

from common.settings import Settings, load_settings
from services.cli.launcher import STOP_TIMEOUT, ChildSpec, child_specs, die_with_parent

ROOT = Path(__file__).resolve().parents[2]
KILL_TIMEOUT = 5.0


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without the orchestrator's own variables (settings come from the
    file only) or a supervisor's (systemd's notify socket), plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MCP_ORCHESTRATOR_") and k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def specs_for(
    settings_path: Path,
    config_path: Optional[Path] = None,
    *,
    labels: Optional[Mapping[str, str]] = None,
    env: Optional[Mapping[str, str]] = None,
    read: bool = True,
) -> dict[str, ChildSpec]:
    """name -> the launcher's spec of each process for these files (the dashboard too);
    `labels` go on every container the container-agent makes. The settings file is read
    for the endpoints; `read=False` for a file the process is meant to refuse (the
    endpoints are then the defaults)."""
    settings = load_settings(settings_path, environ=clean_env() if env is None else env) if read else Settings()
    specs = child_specs(
        settings,
        config_path or settings_path.with_name("mcp.config.json"),
        settings_path,
        dashboard=True,
        container_labels=[f"{key}={value}" for key, value in (labels or {}).items()],
    )
    return {spec.name: spec for spec in specs}


class Process:
    """A child process, its stdout and stderr in `log_path`; `stop()` ends it.

    It runs in a session of its own (Ctrl-C of the parent does not reach it) and gets
    SIGTERM when the parent dies, as the launcher's children do.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Optional[Mapping[str, str]] = None,
        cwd: Path = ROOT,
        before_exec: Optional[Callable[[], None]] = None,
        whole_group: bool = False,
        close_fds: bool = True,
    ) -> None:
        """`before_exec` runs in the child (a resource limit); `whole_group`: signals go to
        the process's group, its own children too; `close_fds=False`: descriptors that
        `before_exec` made inheritable pass to the child (the parent's own are
        close-on-exec)."""
        self.name = name
        self.log_path = log_path
        self.whole_group = whole_group

        def prepare() -> None:
            die_with_parent()
            if before_exec is not None:
                before_exec()

        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(clean_env() if env is None else env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=prepare,
                close_fds=close_fds,
            )

    @classmethod
    def of(cls, spec: ChildSpec, log_path: Path, *extra_args: str, prefix: Sequence[str] = (), **kwargs) -> "Process":
        """One of the orchestrator's processes, as the launcher starts it (plus `extra_args`);
        `prefix`: words that exec it (`nsenter --net=...`: a Swarm node's namespace)."""
        return cls(spec.name, [*prefix, *spec.argv(sys.executable), *extra_args], log_path, **kwargs)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> Optional[int]:
        return self.proc.poll()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self, lines: Optional[int] = None) -> str:
        """What it wrote so far (the last `lines` lines)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return text if lines is None else "\n".join(text.splitlines()[-lines:])

    def signal(self, sig: int) -> None:
        if self.alive():
            if self.whole_group:
                os.killpg(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def kill9(self) -> None:
        self.signal(SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = STOP_TIMEOUT, sig: int = SIGTERM) -> Optional[int]:
        """`sig`, then SIGKILL after `timeout` seconds; its exit status."""
        if self.alive():
            self.signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(SIGKILL)
                self.proc.wait(KILL_TIMEOUT)
        return self.proc.returncode
