"""What every benchmark shares: the run's id and labels, images, peer tools, counts, cleanup.

Every container a benchmark starts (directly, through a peer's `docker run`, or through
the container-agent) carries the label `mcp-orchestrator.bench=<run id>` (plus any
extra labels, e.g. the tests' label), so that one filter finds them all at the end,
however the run ended.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from tests.harness.waiting import WaitTimeout, wait_for

ROOT = Path(__file__).resolve().parent.parent
BENCH_LABEL = "mcp-orchestrator.bench"
TARGET_LABEL = "mcp-orchestrator.bench.target"
TIME_IMAGE = "mcp-orchestrator/mcp-server-time:latest"
BUSYBOX_IMAGE = "mcp-orchestrator/busybox:test"
# The peers, as scripts/ensure-bench-tools.sh installs them: two different programs
# are both called mcp-proxy, the Python one from PyPI and the TypeScript one from npm.
MCP_PROXY_PYPI = ROOT / ".cache" / "bench" / "mcp-proxy-venv" / "bin" / "mcp-proxy"
MCP_PROXY_NPM = ROOT / ".cache" / "bench" / "node" / "node_modules" / ".bin" / "mcp-proxy"
SUPERGATEWAY = ROOT / ".cache" / "bench" / "node" / "node_modules" / ".bin" / "supergateway"
DOCKER_API_VERSION = "1.41"


@dataclass(frozen=True)
class Counts:
    """How much each benchmark does; `quick()` for BENCH_QUICK=1, `tiny()` for the smoke test."""

    repeats: int = 5
    levels: tuple[int, ...] = (1, 8, 32)
    calls: dict = field(default_factory=lambda: {1: 300, 8: 60, 32: 25})  # per session, per level
    # Concurrent clients of the 2026-07-28 (stateless) workload; calls each as `calls`.
    modern_levels: tuple[int, ...] = (8, 32)
    warmup_calls: int = 20
    short_seconds: float = 4.0
    short_concurrency: int = 4
    healing_repeats: int = 5
    # Add/remove as users write the server (no --init: each removal waits out docker stop).
    healing_without_init: bool = True
    alb_sizes: tuple[int, ...] = (10, 50, 100)
    scale_servers: int = 200
    scale_repeats: int = 5

    @classmethod
    def quick(cls) -> "Counts":
        return cls(
            repeats=1,
            levels=(1, 8, 32),
            calls={1: 100, 8: 20, 32: 8},
            warmup_calls=5,
            short_seconds=2.0,
            healing_repeats=2,
            alb_sizes=(10, 100),
            scale_servers=40,
            scale_repeats=2,
        )

    @classmethod
    def tiny(cls) -> "Counts":
        return cls(
            repeats=1,
            levels=(1, 2),
            calls={1: 3, 2: 2},
            modern_levels=(2,),
            warmup_calls=1,
            short_seconds=0.5,
            short_concurrency=2,
            healing_repeats=1,
            healing_without_init=False,
            alb_sizes=(3,),
            scale_servers=3,
            scale_repeats=1,
        )

    def calls_for(self, level: int) -> int:
        if level in self.calls:
            return self.calls[level]
        return max(2, 300 // level)


@dataclass
class Context:
    counts: Counts
    out_dir: Path
    extra_labels: dict[str, str] = field(default_factory=dict)
    time_image: str = TIME_IMAGE
    busybox_image: str = BUSYBOX_IMAGE
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    verbose: bool = True
    _docker: Any = None
    _work: Optional[Path] = None

    # --- labels and containers ---------------------------------------------------------

    @property
    def labels(self) -> dict[str, str]:
        return {BENCH_LABEL: self.run_id, **self.extra_labels}

    def target_labels(self, target: str) -> dict[str, str]:
        """The run's labels plus the target's, to find (and meter) its containers."""
        return {**self.labels, TARGET_LABEL: target}

    def docker_run_argv(self, target: str, image: Optional[str] = None) -> list[str]:
        """The stdio server every bridge wraps: `docker run -i --rm IMAGE` (labelled)."""
        labels = []
        for key, value in self.target_labels(target).items():
            labels += ["--label", f"{key}={value}"]
        return ["docker", "run", "-i", "--rm", *labels, image or self.time_image]

    def container_ids(self, target: str, running_only: bool = True) -> list[str]:
        found = self.docker.api.containers(
            all=not running_only, filters={"label": [f"{BENCH_LABEL}={self.run_id}", f"{TARGET_LABEL}={target}"]}
        )
        return [c["Id"] for c in found]

    @property
    def docker(self) -> Any:
        if self._docker is None:
            import docker

            self._docker = docker.from_env(version=DOCKER_API_VERSION, timeout=120)
        return self._docker

    def our_containers(self) -> list[str]:
        """Ids of this run's containers, in any state (low-level: a container that goes
        away while listed is no error)."""
        found = self.docker.api.containers(all=True, filters={"label": f"{BENCH_LABEL}={self.run_id}"})
        return [c["Id"] for c in found]

    def remove_containers(self) -> int:
        """Remove every container of this run (a few threads: there may be hundreds)."""
        import concurrent.futures

        import docker.errors

        found = self.our_containers()

        def remove(container_id: str) -> None:
            try:
                self.docker.api.remove_container(container_id, force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                if "already in progress" not in str(exc):
                    self.say(f"could not remove container {container_id[:12]}: {exc}")

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(remove, found))
        return len(found)

    # --- files -------------------------------------------------------------------------

    @property
    def work(self) -> Path:
        """A short temporary directory (ipc:// socket paths must stay short)."""
        if self._work is None:
            self._work = Path(tempfile.mkdtemp(prefix=f"bench-{self.run_id}-", dir="/tmp"))
        return self._work

    def log_file(self, name: str) -> Path:
        logs = self.work / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        return logs / name

    def close(self) -> None:
        removed = self.remove_containers() if self._docker is not None else 0
        if removed:
            self.say(f"removed {removed} container(s) left by the run")
        if self._docker is not None:
            self._docker.close()
            self._docker = None
        if self._work is not None:
            shutil.rmtree(self._work, ignore_errors=True)
            self._work = None

    def say(self, text: str) -> None:
        if self.verbose:
            print(f"[bench] {text}", file=sys.stderr, flush=True)


def wait_port(host: str, port: int, timeout: float, proc: Optional[subprocess.Popen] = None) -> None:
    """Until something accepts TCP connections on host:port; RuntimeError when the deadline
    passes or `proc` exits first."""

    def listening() -> bool:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the process exited with status {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            return False

    try:
        wait_for(listening, timeout, f"something to listen on {host}:{port}")
    except WaitTimeout as exc:
        raise RuntimeError(str(exc)) from None


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
