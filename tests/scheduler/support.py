"""The orchestrator's processes for end-to-end tests, and ways to look at the result.

`Orchestrator` runs the real container-agent, alb-agent and scheduler as processes on
ipc:// endpoints in a short temporary directory, with a cluster name of their own (so
they touch no other container) and a free port range. Every container the agent makes
carries the test label. The alb-agent works against its own moto stand-in; `rules()`
reads the listener rules back from it with plain boto3 calls.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Optional

import zmq

from common.protocol import ControlAction, to_plain
from common.reqrep import ReqClient

ROOT = Path(__file__).resolve().parents[2]
TEST_LABEL = "mcp-orchestrator.test"
PYTHON = sys.executable

# A stdio MCP server in busybox sh: answers initialize, tools/list, and every
# tools/call with the value of $NAME (so a test sees which spec answers).
ECHO_SERVER = r"""
while IFS= read -r line; do
  id=$(echo "$line" | sed -n 's/.*"id":\([0-9][0-9]*\).*/\1/p')
  case "$line" in
    *'"method":"initialize"'*)
      echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{\"tools\":{}},\"serverInfo\":{\"name\":\"echo\",\"version\":\"1\"}}}" ;;
    *'"method":"tools/call"'*)
      echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"$NAME\"}]}}" ;;
    *'"method":"notifications/'*) ;;
    *)
      [ -n "$id" ] && echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{\"tools\":[]}}" ;;
  esac
done
"""


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def free_port_range(size: int) -> tuple[int, int]:
    """`size` consecutive ports nothing listens on (checked by binding each)."""
    for _ in range(50):
        start = random.randrange(20000, 40000 - size)
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
    raise RuntimeError("no free port range found")


def docker_server(image: str, *args: str, env: Optional[dict] = None, disabled: bool = False) -> dict:
    entry: dict = {"command": "docker", "args": ["run", "-i", "--rm", image, *args], "disabled": disabled}
    if env:
        names = []
        for name in env:
            names += ["-e", name]
        entry["args"] = ["run", "-i", "--rm", *names, image, *args]
        entry["env"] = dict(env)
    return entry


def echo_server(busybox: str, name: str, **kw: Any) -> dict:
    entry = docker_server(busybox, "sh", "-c", ECHO_SERVER, env={"NAME": name}, **kw)
    entry["args"].insert(1, "--init")  # sh as PID 1 would ignore SIGTERM: stops take 10 s
    return entry


class Orchestrator:
    PROCESSES = {
        "container-agent": ("services.container_agent", True),
        "alb-agent": ("services.alb_agent", False),
        "scheduler": ("services.scheduler", True),
    }

    def __init__(
        self,
        docker_client: Any,
        *,
        port_range: Optional[tuple[int, int]] = None,
        interval: int = 30,
        extra_settings: str = "",
    ) -> None:
        self.docker = docker_client
        self.cluster = "t" + uuid.uuid4().hex[:8]
        # ipc paths must stay short (Unix socket paths take about 107 bytes).
        self.dir = Path(tempfile.mkdtemp(prefix="sch-", dir="/tmp"))
        self.port_range = port_range or free_port_range(12)
        self.settings = self.dir / "settings.conf"
        self.config = self.dir / "mcp.config.json"
        self.settings.write_text(
            f"[aws]\ncluster_name = {self.cluster}\n"
            f"[service]\nreconciliation_interval_seconds = {interval}\n"
            f"port_range_start = {self.port_range[0]}\nport_range_end = {self.port_range[1]}\n"
            f"bridge_host = 127.0.0.1\n"
            f"[dashboard]\nport = {self.port_range[0] - 1}\n"
            f"[zmq]\nruntime_dir = {self.dir}/run\nheartbeat_interval_seconds = 0.3\n"
            f"request_timeout_ms = 2000\nrequest_retries = 2\n"
            f"[logging]\nlevel = INFO\n{extra_settings}"
        )
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Any] = {}
        self.starts: dict[str, int] = {}
        self.ctx = zmq.Context()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_ORCHESTRATOR_")}

    @property
    def control_endpoint(self) -> str:
        return f"ipc://{self.dir}/run/scheduler-control.sock"

    # --- files and processes -----------------------------------------------------------

    def write_config(self, servers: dict) -> None:
        # Written next to the file and renamed: the watchers never see half a file.
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text(json.dumps({"mcpServers": servers}, indent=2))
        os.replace(tmp, self.config)

    def write_raw_config(self, text: str) -> None:
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.config)

    def start(self, name: str) -> subprocess.Popen:
        module, takes_config = self.PROCESSES[name]
        args = [PYTHON, "-m", module, "--settings", str(self.settings)]
        if takes_config:
            args += ["--config", str(self.config)]
        if name == "container-agent":
            args += ["--label", f"{TEST_LABEL}=1"]
        n = self.starts.get(name, 0) + 1
        self.starts[name] = n
        log = open(self.dir / f"{name}.{n}.log", "w+")
        self.logs[name] = log
        self.procs[name] = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return self.procs[name]

    def start_all(self) -> None:
        for name in self.PROCESSES:
            self.start(name)

    def kill9(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop(self, name: str) -> Optional[int]:
        proc = self.procs.get(name)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        return proc.returncode

    def output(self, name: str) -> str:
        log = self.logs[name]
        log.flush()
        log.seek(0)
        return log.read()

    def close(self) -> None:
        for name in reversed(list(self.procs)):
            self.stop(name)
        for log in self.logs.values():
            log.close()
        self.ctx.destroy(linger=0)
        for container in self.docker.containers.list(
            all=True, filters={"label": f"mcp-orchestrator.cluster={self.cluster}"}
        ):
            try:
                container.remove(force=True)
            except Exception:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- the scheduler -----------------------------------------------------------------

    def request(self, type: str, body: Any = None, timeout_ms: int = 2000) -> Any:
        with ReqClient(self.ctx, self.control_endpoint, timeout_ms=timeout_ms, retries=0, src="test") as client:
            return client.call(type, body)

    def status(self) -> Optional[dict]:
        try:
            return to_plain(self.request("control.status"))
        except Exception:
            return None

    def servers(self) -> dict[str, dict]:
        state = self.status() or {}
        return {s["server_id"]: s for s in state.get("servers", [])}

    def action(self, action: str, server_id: Optional[str] = None) -> Any:
        return self.request("control.action", ControlAction(action=action, server_id=server_id))

    def converged(self, wanted: set[str], absent: set[str] = frozenset()) -> Optional[dict]:
        """The servers, when every wanted one runs, is served and routed, and the absent
        ones have neither container nor route."""
        state = self.status()
        if not state or state["config"].get("kept_last_good"):
            return None
        if set(state["agents"].values()) != {"available"}:
            return None
        servers = {s["server_id"]: s for s in state["servers"]}
        for sid in wanted:
            s = servers.get(sid)
            if not s or s["status"] != "running" or s["bridge"] != "ready" or s["route"] != "routed":
                return None
        for sid in absent:
            s = servers.get(sid)
            if s and (s.get("container_id") or s.get("route") not in ("none", None)):
                return None
        if absent & set(self.container_ids()):
            return None
        return servers

    def wait_converged(self, wanted: set[str], absent: set[str] = frozenset(), timeout: float = 90) -> dict:
        try:
            return wait_for(
                lambda: self.converged(wanted, absent),
                timeout,
                f"{sorted(wanted)} running and routed, {sorted(absent)} gone",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.diagnosis()}") from None

    def diagnosis(self) -> str:
        """The scheduler's view and the end of each log, for a failed wait."""
        state = self.status() or {}
        lines = [
            f"agents: {state.get('agents')} {state.get('agent_errors')}",
            f"config: ok={state.get('config', {}).get('ok')}",
        ]
        for s in state.get("servers", []):
            lines.append(
                f"  {s['server_id']}: {s['status']} bridge={s.get('bridge')} "
                f"route={s.get('route')} port={s.get('host_port')} "
                f"error={s.get('last_error')}"
            )
        for name in self.logs:
            tail = self.output(name).splitlines()[-12:]
            lines.append(f"--- {name} ---")
            lines.extend(tail)
        return "\n".join(lines)

    # --- Docker and the AWS stand-in -----------------------------------------------------

    def containers(self) -> dict[str, Any]:
        """server id -> container of this cluster (any state)."""
        out = {}
        for c in self.docker.containers.list(all=True, filters={"label": f"mcp-orchestrator.cluster={self.cluster}"}):
            out[c.labels["mcp-orchestrator.server-id"]] = c
        return out

    def container_ids(self) -> dict[str, str]:
        return {sid: c.id for sid, c in self.containers().items()}

    def standin_url(self) -> str:
        found = re.findall(r"local stand-in at (http://127\.0\.0\.1:\d+)", self.output("alb-agent"))
        assert found, self.output("alb-agent")
        return found[-1]

    def rules(self) -> dict[str, tuple[str, int, tuple[str, ...]]]:
        """path pattern -> (rule ARN, priority, forward target groups) on the stand-in."""
        import boto3

        session = boto3.session.Session(
            aws_access_key_id="standin", aws_secret_access_key="standin", region_name="us-west-2"
        )
        elbv2 = session.client("elbv2", endpoint_url=self.standin_url())
        out = {}
        for lb in elbv2.describe_load_balancers()["LoadBalancers"]:
            for listener in elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]:
                for rule in elbv2.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]:
                    if rule["IsDefault"]:
                        continue
                    forwards = tuple(a["TargetGroupArn"] for a in rule["Actions"] if a.get("TargetGroupArn"))
                    for cond in rule["Conditions"]:
                        for path in cond.get("PathPatternConfig", {}).get("Values", []):
                            out[path] = (rule["RuleArn"], int(rule["Priority"]), forwards)
        return out
