"""The orchestrator's real processes for the control-plane benchmarks.

The container-agent, the alb-agent, the scheduler (and the dashboard when asked)
run as `python -m services.<package>`, as systemd runs them, with settings of their
own: ipc:// endpoints in the run's temporary directory, a cluster name of their own
(so they touch no other container), a free port range on 127.0.0.1, and the ALB in
the benchmark's moto server. Every container the agent creates carries the run's labels.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

from .aws_world import CREDENTIALS, World
from .context import ROOT, Context, die_with_parent, free_port, tail
from .mcp_client import HttpSession

SERVER_ID_LABEL = "mcp-orchestrator.server-id"
CLUSTER_LABEL = "mcp-orchestrator.cluster"
TIME_ARGS = {"timezone": "UTC"}

# A stdio MCP server in busybox sh: answers initialize, tools/list and tools/call (a
# "server" costs about a megabyte, so hundreds fit on a small machine).
ECHO_SERVER = r"""
while IFS= read -r line; do
  id=$(echo "$line" | sed -n 's/.*"id":\([0-9][0-9]*\).*/\1/p')
  case "$line" in
    *'"method":"initialize"'*)
      echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{\"tools\":{}},\"serverInfo\":{\"name\":\"echo\",\"version\":\"1\"}}}" ;;
    *'"method":"tools/call"'*)
      echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"echo\"}]}}" ;;
    *'"method":"notifications/'*) ;;
    *)
      [ -n "$id" ] && echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{\"tools\":[]}}" ;;
  esac
done
"""


def time_server(image: str, init: bool = False) -> dict:
    return {"command": "docker", "args": ["run", "-i", "--rm", *(["--init"] if init else []), image]}


def echo_server(busybox: str) -> dict:
    # --init: sh as PID 1 ignores SIGTERM, and every stop would wait out its timeout.
    return {"command": "docker", "args": ["run", "-i", "--rm", "--init", busybox, "sh", "-c", ECHO_SERVER]}


def free_port_range(size: int) -> tuple[int, int]:
    """`size` consecutive ports nothing listens on (each checked by binding it)."""
    for _ in range(100):
        start = random.randrange(20000, 45000 - size)
        ok = True
        for port in range(start, start + size):
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return start, start + size - 1
    raise RuntimeError(f"no {size} free consecutive ports found")


class Orchestra:
    PROCESSES = {  # name -> (module, takes --config)
        "container-agent": ("services.container_agent", True),
        "alb-agent": ("services.alb_agent", False),
        "scheduler": ("services.scheduler", True),
        "dashboard": ("services.dashboard", False),
    }

    def __init__(
        self, ctx: Context, world: World, *, ports: int, interval: int = 60, log_level: str = "INFO", name: str = "orch"
    ) -> None:
        import zmq

        self.ctx = ctx
        self.world = world
        self.cluster = f"b{ctx.run_id}{name[:4]}"
        self.dir = ctx.work / name
        (self.dir / "run").mkdir(parents=True, exist_ok=True, mode=0o700)
        self.port_range = free_port_range(ports)
        self.dashboard_port = free_port()
        self.settings = self.dir / "settings.conf"
        self.config = self.dir / "mcp.config.json"
        self.settings.write_text(
            f"[aws]\ncluster_name = {self.cluster}\n{world.settings_lines()}"
            f"[service]\nreconciliation_interval_seconds = {interval}\n"
            f"port_range_start = {self.port_range[0]}\nport_range_end = {self.port_range[1]}\n"
            f"bridge_host = 127.0.0.1\n"
            f"[dashboard]\nhost = 127.0.0.1\nport = {self.dashboard_port}\npassword = bench-{ctx.run_id}\n"
            f"[zmq]\nruntime_dir = {self.dir}/run\n"
            f"[logging]\nlevel = {log_level}\n"
        )
        self.write_config({})
        self.procs: dict[str, subprocess.Popen] = {}
        self.starts: dict[str, int] = {}
        self.zmq = zmq.Context()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_ORCHESTRATOR_")}
        self.env.update(CREDENTIALS)

    # --- files and processes -----------------------------------------------------------

    def write_config(self, servers: dict) -> None:
        # Written beside and renamed: the file watch never sees half a file.
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text(json.dumps({"mcpServers": servers}, indent=2))
        os.replace(tmp, self.config)

    def log_path(self, name: str) -> Path:
        return self.dir / f"{name}.{self.starts.get(name, 0)}.log"

    def start(self, name: str) -> subprocess.Popen:
        module, takes_config = self.PROCESSES[name]
        args = [sys.executable, "-m", module, "--settings", str(self.settings)]
        if takes_config:
            args += ["--config", str(self.config)]
        if name == "container-agent":
            for key, value in self.ctx.labels.items():
                args += ["--label", f"{key}={value}"]
        self.starts[name] = self.starts.get(name, 0) + 1
        with open(self.log_path(name), "wb") as log:
            self.procs[name] = subprocess.Popen(
                args,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        return self.procs[name]

    def start_all(self, dashboard: bool = False) -> None:
        for name in self.PROCESSES:
            if name != "dashboard" or dashboard:
                self.start(name)

    def stop(self, name: str, timeout: float = 30.0) -> Optional[int]:
        proc = self.procs.get(name)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        return proc.returncode

    def pid(self, name: str) -> Optional[int]:
        proc = self.procs.get(name)
        return proc.pid if proc is not None and proc.poll() is None else None

    def dead(self) -> list[str]:
        return [n for n, p in self.procs.items() if p.poll() is not None]

    def output(self, name: str, lines: int = 20) -> str:
        return tail(self.log_path(name), lines)

    def close(self) -> None:
        # The scheduler first: it lets go of the agents before they stop.
        for name in ("scheduler", "dashboard", "alb-agent", "container-agent"):
            try:
                self.stop(name)
            except Exception:
                pass
        self.zmq.destroy(linger=0)

    # --- the scheduler -------------------------------------------------------------------

    @property
    def control_endpoint(self) -> str:
        return f"ipc://{self.dir}/run/scheduler-control.sock"

    def request(self, type: str, body: Any = None, timeout_ms: int = 5000) -> Any:
        from common.reqrep import ReqClient

        with ReqClient(self.zmq, self.control_endpoint, timeout_ms=timeout_ms, retries=0, src="bench") as client:
            return client.call(type, body)

    def status(self) -> Optional[dict]:
        from common.protocol import to_plain

        try:
            return to_plain(self.request("control.status"))
        except Exception:
            return None

    def action(self, action: str, server_id: Optional[str] = None) -> Any:
        from common.protocol import ControlAction

        return self.request("control.action", ControlAction(action=action, server_id=server_id))

    @staticmethod
    def servers_of(state: Optional[dict]) -> dict[str, dict]:
        return {s["server_id"]: s for s in (state or {}).get("servers", [])}

    def converged(self, wanted: set[str], absent: frozenset[str] = frozenset()) -> Optional[dict]:
        """The servers when every wanted one runs, is served and routed, and the absent ones
        have neither a container nor a route; None before that."""
        state = self.status()
        if not state or set(state.get("agents", {}).values()) != {"available"}:
            return None
        servers = self.servers_of(state)
        for sid in wanted:
            s = servers.get(sid)
            if not s or s.get("status") != "running" or s.get("bridge") != "ready" or s.get("route") != "routed":
                return None
        for sid in absent:
            s = servers.get(sid)
            if s and (s.get("container_id") or s.get("route") not in ("none", None)):
                return None
        if absent and absent & set(self.container_ids()):
            return None
        return servers

    def counts(self, wanted: set[str]) -> str:
        """How far the wanted servers are: running / served / routed (for progress lines)."""
        servers = self.servers_of(self.status())
        got = [servers.get(sid, {}) for sid in wanted]
        return (
            f"{sum(s.get('status') == 'running' for s in got)} running, "
            f"{sum(s.get('bridge') == 'ready' for s in got)} served, "
            f"{sum(s.get('route') == 'routed' for s in got)} routed of {len(wanted)}"
        )

    # --- Docker ---------------------------------------------------------------------------

    def container_ids(self) -> dict[str, str]:
        """server id -> container id, for this cluster's containers in any state."""
        found = self.ctx.docker.api.containers(all=True, filters={"label": f"{CLUSTER_LABEL}={self.cluster}"})
        return {c["Labels"].get(SERVER_ID_LABEL, ""): c["Id"] for c in found}

    def run_of(self, server_id: str) -> Optional[tuple[str, str]]:
        """(container id, StartedAt) of the server's running container; None if none runs."""
        import docker.errors

        cid = self.container_ids().get(server_id)
        if cid is None:
            return None
        try:
            state = self.ctx.docker.api.inspect_container(cid)["State"]
        except docker.errors.NotFound:
            return None
        return (cid, state.get("StartedAt", "")) if state.get("Running") else None


def wait_until(condition: Callable[[], Any], timeout: float, interval: float = 0.05) -> tuple[Any, float]:
    """(the first truthy value of `condition`, seconds it took); (None, seconds) on timeout."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        value = condition()
        now = time.monotonic()
        if value:
            return value, now - start
        if now > deadline:
            return None, now - start
        time.sleep(interval)


async def _call(port: int, server_id: str, tool: str, arguments: dict, timeout: float) -> bool:
    session = HttpSession("127.0.0.1", port, f"/mcp/{server_id}/mcp", timeout=timeout)
    try:
        await session.initialize()
        await session.call_tool(tool, arguments)
        await session.delete()
        return True
    finally:
        session.close()


def answers(
    port: Optional[int],
    server_id: str,
    tool: str = "get_current_time",
    arguments: Optional[dict] = None,
    timeout: float = 5.0,
) -> bool:
    """A whole MCP session through the bridge at `port` works right now."""
    if not port:
        return False
    try:
        return asyncio.run(_call(port, server_id, tool, TIME_ARGS if arguments is None else arguments, timeout))
    except Exception:
        return False
