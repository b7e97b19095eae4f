"""A private orchestrator: the container-agent, alb-agent, scheduler (and dashboard) as
real processes, started from the launcher's specs, on settings of their own.

Its own directory (ipc:// endpoints under `run/`: keep the path short, a Unix socket
path holds about 107 bytes), its own cluster name (so its agents touch no other
container), a port range nothing else uses, and labels on every container it makes.
Each start of a process writes a new log file `<name>.<n>.log` in the directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import zmq

from common import container_labels as container_labels
from common.protocol import ControlAction, to_plain
from common.reqrep import ReqClient
from services.cli.fdstore import LauncherFdStore
from services.cli.launcher import SOCKET_KEEPER

from .files import Sections, write_atomically, write_config, write_settings
from .ports import free_port
from .processes import STOP_TIMEOUT, Process, clean_env, specs_for
from .waiting import wait_for


class Cluster:
    REQUEST_TIMEOUT_MS = 2000

    def __init__(
        self,
        directory: Path,
        name: str,
        *,
        port_range: tuple[int, int],
        labels: Mapping[str, str],
        interval: int = 30,
        settings: Optional[Sections] = None,
        env: Optional[Mapping[str, str]] = None,
        docker: Any = None,
        keep_sockets: bool = False,
        prefix: Sequence[str] = (),
    ) -> None:
        """`settings`: sections and keys to add to (or replace in) the defaults; `env`:
        the processes' environment (default: this one without the orchestrator's
        variables); `docker`: a docker.DockerClient, to look at the containers;
        `keep_sockets`: keep the container-agent's listening sockets across its restarts,
        as `mcp-orchestrator run` and systemd do; `prefix`: words every process is run
        with (a Swarm node's network namespace)."""
        self.prefix = tuple(prefix)
        self.dir = directory
        self.cluster = name
        self.port_range = port_range
        self.docker = docker
        self.dashboard_port = free_port()
        (self.dir / "run").mkdir(parents=True, exist_ok=True, mode=0o700)
        self.settings = write_settings(
            self.dir / "settings.conf",
            {
                "aws": {"cluster_name": name},
                "service": {
                    "reconciliation_interval_seconds": interval,
                    "port_range_start": port_range[0],
                    "port_range_end": port_range[1],
                    "bridge_host": "127.0.0.1",
                },
                "dashboard": {"host": "127.0.0.1", "port": self.dashboard_port},
                "zmq": {"runtime_dir": self.dir / "run"},
                "logging": {"level": "INFO"},
            },
            settings or {},
        )
        self.config = self.dir / "mcp.config.json"
        self.write_config({})
        self.env = clean_env() if env is None else dict(env)
        self.specs = specs_for(self.settings, self.config, labels=labels, env=self.env)
        self.procs: dict[str, Process] = {}
        self.fd_store = LauncherFdStore(self.dir / "run") if keep_sockets else None
        self.starts: dict[str, int] = {}
        self.zmq = zmq.Context()

    # --- files and processes -----------------------------------------------------------

    def write_config(self, servers: Mapping[str, Any]) -> None:
        write_config(self.config, servers)

    def write_raw_config(self, text: str) -> None:
        write_atomically(self.config, text)

    def start(self, name: str, *extra_args: str) -> Process:
        """Start `name` (again): container-agent, alb-agent, scheduler or dashboard."""
        self.starts[name] = self.starts.get(name, 0) + 1
        log = self.dir / f"{name}.{self.starts[name]}.log"
        if self.fd_store is not None and name == SOCKET_KEEPER:
            self.fd_store.poll()
            self.procs[name] = Process.of(
                self.specs[name],
                log,
                *extra_args,
                env={**self.env, **self.fd_store.child_environment()},
                before_exec=self.fd_store.prepare_child(),
                close_fds=False,
            )
        else:
            self.procs[name] = Process.of(self.specs[name], log, *extra_args, env=self.env, prefix=self.prefix)
        return self.procs[name]

    def start_all(self, dashboard: bool = False) -> None:
        """The agents first: the scheduler talks to them."""
        for name in self.specs:
            if name != "dashboard" or dashboard:
                self.start(name)

    def stop(self, name: str, timeout: float = STOP_TIMEOUT) -> Optional[int]:
        proc = self.procs.get(name)
        return None if proc is None else proc.stop(timeout)

    def kill9(self, name: str) -> None:
        self.procs[name].kill9()

    def pid(self, name: str) -> Optional[int]:
        proc = self.procs.get(name)
        return proc.pid if proc is not None and proc.alive() else None

    def dead(self) -> list[str]:
        return [name for name, proc in self.procs.items() if not proc.alive()]

    def output(self, name: str, lines: Optional[int] = None) -> str:
        """The log of its latest start."""
        return self.procs[name].output(lines)

    def close(self) -> None:
        # Last started first, as the launcher does: the scheduler lets go of the agents
        # before they stop.
        for name in reversed(list(self.procs)):
            try:
                self.stop(name)
            except Exception:
                pass
        self.zmq.destroy(linger=0)
        if self.fd_store is not None:
            self.fd_store.close()

    # --- the scheduler -------------------------------------------------------------------

    @property
    def control_endpoint(self) -> str:
        return self.specs["scheduler"].endpoint

    def request(self, type: str, body: Any = None, timeout_ms: Optional[int] = None) -> Any:
        timeout_ms = timeout_ms or self.REQUEST_TIMEOUT_MS
        with ReqClient(self.zmq, self.control_endpoint, timeout_ms=timeout_ms, retries=0, src="harness") as client:
            return client.call(type, body)

    def status(self) -> Optional[dict]:
        """The scheduler's control.status as plain data; None when it does not answer."""
        try:
            return to_plain(self.request("control.status"))
        except Exception:
            return None

    def action(self, action: str, server_id: Optional[str] = None) -> Any:
        return self.request("control.action", ControlAction(action=action, server_id=server_id))

    @staticmethod
    def servers_of(state: Optional[dict]) -> dict[str, dict]:
        return {s["server_id"]: s for s in (state or {}).get("servers", [])}

    def servers(self) -> dict[str, dict]:
        return self.servers_of(self.status())

    def converged(self, wanted: set[str], absent: frozenset[str] = frozenset()) -> Optional[dict]:
        """The servers when the config in force is the file's, every wanted server runs,
        is served and routed, and the absent ones have neither a container nor a route;
        None before that."""
        state = self.status()
        if not state or state.get("config", {}).get("kept_last_good"):
            return None
        if set(state.get("agents", {}).values()) != {"available"}:
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
        if absent and set(absent) & set(self.container_ids()):
            return None
        return servers

    def wait_converged(self, wanted: set[str], absent: frozenset[str] = frozenset(), timeout: float = 90) -> dict:
        return wait_for(
            lambda: self.converged(wanted, absent),
            timeout,
            f"{sorted(wanted)} running and routed, {sorted(absent)} gone",
            interval=0.1,
            explain=self.diagnosis,
        )

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
        for name, proc in self.procs.items():
            lines.append(f"--- {name} ---")
            lines.append(proc.output(12))
        return "\n".join(lines)

    # --- Docker ---------------------------------------------------------------------------

    def container_ids(self) -> dict[str, str]:
        """server id -> container id, for this cluster's containers in any state."""
        found = self.docker.api.containers(all=True, filters={"label": f"{container_labels.CLUSTER}={self.cluster}"})
        return {c["Labels"].get(container_labels.SERVER_ID, ""): c["Id"] for c in found}

    def remove_containers(self) -> None:
        for container_id in self.container_ids().values():
            try:
                self.docker.api.remove_container(container_id, force=True)
            except Exception:
                pass
