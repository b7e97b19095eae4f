"""Real processes for the dashboard tests: settings files, the dashboard and a stand-in
scheduler as processes, an HTTP user."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import requests

from tests.harness.files import Sections, write_settings
from tests.harness.ports import free_port
from tests.harness.processes import Process, clean_env, specs_for
from tests.harness.waiting import wait_for

FAKE_SCHEDULER = Path(__file__).resolve().parent / "fake_scheduler.py"
PASSWORD = "process-test-password"
# Over HTTP, an error or a page without the data yet (a KeyError, a failed assert)
# means "not yet".
NOT_YET = (requests.RequestException, AssertionError, KeyError)

T = TypeVar("T")


def wait_for_http(
    condition: Callable[[], T],
    timeout: float,
    what: str,
    interval: float = 0.05,
    explain: Optional[Callable[[], str]] = None,
) -> T:
    """wait_for, with NOT_YET errors counting as "not yet" (the last one is reported)."""
    return wait_for(condition, timeout, what, interval, ignoring=NOT_YET, explain=explain)


def short_tmp_dir(prefix: str) -> Path:
    # ipc:// paths must stay short (a Unix socket path holds about 107 bytes).
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def dashboard_settings(
    directory: Path,
    *,
    dashboard_port: int,
    settings: Optional[Sections] = None,
    port_range: tuple[int, int] = (18000, 18999),
) -> Path:
    """settings.conf for a dashboard and a stand-in scheduler; `settings` adds sections
    and keys."""
    return write_settings(
        directory / "settings.conf",
        {
            "service": {
                "port_range_start": port_range[0],
                "port_range_end": port_range[1],
                "reconciliation_interval_seconds": 5,
            },
            "dashboard": {"host": "127.0.0.1", "port": dashboard_port, "password": PASSWORD, "threads": 4},
            "zmq": {
                "runtime_dir": f"{directory}/run",
                "heartbeat_interval_seconds": 0.2,
                "request_timeout_ms": 1000,
                "request_retries": 1,
            },
            "logging": {"level": "INFO"},
        },
        settings or {},
    )


def start_dashboard(
    directory: Path, settings: Path, name: str = "dashboard", env: Optional[dict[str, str]] = None, read: bool = True
) -> Process:
    """`read=False` for a settings file the dashboard is meant to refuse."""
    spec = specs_for(settings, env=env, read=read)["dashboard"]
    return Process.of(spec, directory / f"{name}.log", env=env)


def start_fake_scheduler(directory: Path, settings: Path, servers: int = 3, name: str = "fake-scheduler") -> Process:
    argv = [sys.executable, str(FAKE_SCHEDULER), "--settings", str(settings), "--servers", str(servers)]
    return Process(name, argv, directory / f"{name}.log")


class DashboardUser:
    """Logs in over the JSON API and reads the JSON twins, like a script would."""

    def __init__(self, port: int, prefix: str = "/monitor") -> None:
        self.base = f"http://127.0.0.1:{port}{prefix}"
        self.http = requests.Session()
        self.csrf: Optional[str] = None

    def login(self, password: str = PASSWORD) -> "DashboardUser":
        result = self.http.post(f"{self.base}/api/login", timeout=5, json={"username": "admin", "password": password})
        result.raise_for_status()
        self.csrf = result.json()["csrf_token"]
        return self

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.base + path, timeout=5, allow_redirects=False)

    def api(self, path: str) -> Any:
        result = self.get(f"/api/{path}")
        result.raise_for_status()
        return result.json()

    def act(self, action: str, server_id: Optional[str] = None) -> requests.Response:
        body = {"action": action, **({"server_id": server_id} if server_id else {})}
        return self.http.post(
            f"{self.base}/api/actions", json=body, timeout=10, headers={"X-CSRF-Token": self.csrf or ""}
        )

    def statuses(self) -> dict[str, Optional[str]]:
        return {s["server_id"]: s["status"] for s in self.api("overview")["servers"]}

    def answers(self) -> bool:
        try:
            return self.http.get(f"{self.base}/login", timeout=2).status_code == 200
        except requests.RequestException:
            return False


class World:
    """A directory with settings, and the processes started in it (stopped by close())."""

    def __init__(self, settings: Optional[Sections] = None) -> None:
        self.dir = short_tmp_dir("dash-")
        self.port = free_port()
        self.settings = dashboard_settings(self.dir, dashboard_port=self.port, settings=settings)
        self.procs: list[Process] = []

    def start(self, proc: Process) -> Process:
        self.procs.append(proc)
        return proc

    def scheduler(self, servers: int = 3, name: str = "fake-scheduler") -> Process:
        return self.start(start_fake_scheduler(self.dir, self.settings, servers, name))

    def dashboard(self, name: str = "dashboard", **env: str) -> Process:
        proc = self.start(start_dashboard(self.dir, self.settings, name, clean_env(**env) if env else None))
        wait_until_answers(proc, self.port, 20)
        return proc

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.output()[-4000:]}" for p in self.procs)

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_until_answers(proc: Process, port: int, timeout: float) -> None:
    """Until the dashboard at `port` serves its login page; fails at once if it exits."""
    user = DashboardUser(port)

    def answers() -> bool:
        assert proc.alive(), f"{proc.name} exited with {proc.returncode}:\n{proc.output()}"
        return user.answers()

    wait_for(answers, timeout, "the dashboard to answer", explain=proc.output)
