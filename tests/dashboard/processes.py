"""Real processes for the dashboard tests: settings files, process handles, an HTTP user."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import requests

ROOT = Path(__file__).resolve().parents[2]
FAKE_SCHEDULER = Path(__file__).resolve().parent / "fake_scheduler.py"
PASSWORD = "process-test-password"


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """The first truthy value of condition() within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Optional[BaseException] = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except (requests.RequestException, AssertionError, KeyError) as exc:
            last_error = exc
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout} s waiting for {what}" + (f" (last error: {last_error})" if last_error else "")
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def short_tmp_dir(prefix: str) -> Path:
    # ipc:// paths must stay short (a Unix socket path holds about 107 bytes).
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def write_settings(
    directory: Path,
    *,
    dashboard_port: int,
    extra: str = "",
    port_range: tuple[int, int] = (18000, 18999),
    service: str = "",
    dashboard: str = "",
) -> Path:
    """`service` and `dashboard` are more lines for those sections, `extra` more sections."""
    path = directory / "settings.conf"
    path.write_text(
        f"[service]\nport_range_start = {port_range[0]}\nport_range_end = {port_range[1]}\n"
        "reconciliation_interval_seconds = 5\n"
        + service
        + f"[dashboard]\nhost = 127.0.0.1\nport = {dashboard_port}\npassword = {PASSWORD}\n"
        "threads = 4\n" + dashboard + f"[zmq]\nruntime_dir = {directory}/run\nheartbeat_interval_seconds = 0.2\n"
        "request_timeout_ms = 1000\nrequest_retries = 1\n"
        "[logging]\nlevel = INFO\n" + extra
    )
    return path


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MCP_ORCHESTRATOR_") and k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class Proc:
    """A child process with its output in a file; killed at `stop()` if still alive."""

    def __init__(self, name: str, args: Sequence[str], directory: Path, env: Optional[dict[str, str]] = None) -> None:
        self.name = name
        self.log_path = directory / f"{name}.log"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=env or clean_env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.proc.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.proc.wait(timeout)
        self._log.close()
        return self.proc.returncode


def start_dashboard(
    directory: Path, settings: Path, name: str = "dashboard", env: Optional[dict[str, str]] = None
) -> Proc:
    return Proc(name, ["-m", "services.dashboard", "--settings", str(settings)], directory, env)


def start_fake_scheduler(directory: Path, settings: Path, servers: int = 3, name: str = "fake-scheduler") -> Proc:
    return Proc(name, [str(FAKE_SCHEDULER), "--settings", str(settings), "--servers", str(servers)], directory)


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

    def __init__(self, **settings: str) -> None:
        self.dir = short_tmp_dir("dash-")
        self.port = free_port()
        self.settings = write_settings(self.dir, dashboard_port=self.port, **settings)
        self.procs: list[Proc] = []

    def start(self, proc: Proc) -> Proc:
        self.procs.append(proc)
        return proc

    def scheduler(self, servers: int = 3, name: str = "fake-scheduler") -> Proc:
        return self.start(start_fake_scheduler(self.dir, self.settings, servers, name))

    def dashboard(self, name: str = "dashboard", **env: str) -> Proc:
        proc = self.start(start_dashboard(self.dir, self.settings, name, clean_env(**env) if env else None))
        user = DashboardUser(self.port)
        wait_for(
            lambda: user.answers() or (not proc.alive() and _dead(proc)),
            20,
            f"the dashboard to answer\n{proc.output()}",
        )
        return proc

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.output()[-4000:]}" for p in self.procs)

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _dead(proc: Proc) -> bool:
    raise AssertionError(f"{proc.name} exited with {proc.proc.returncode}:\n{proc.output()}")
