"""A real Docker Swarm of several nodes on this one machine, for the tests of `[cluster]
engine = swarm`.

Each node is an extra dockerd in a network namespace of its own (sw1, sw2, ...), on
a bridge `br-sw` with the project's test addresses 10.231.0.1N/24; node 1 initializes
the swarm and the others join it (as managers or workers). Images come from the host's
engine by `docker save | docker load`: no registry. The host's own engine and its swarm
state are never touched; everything is removed again by `close()`, and a rig left
behind by a crashed run is removed before a new one is built.

A process that belongs to a node (its container-agent) runs inside the node's namespace
(`prefix()` gives the `nsenter` words) with DOCKER_HOST set to the node's daemon.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from .waiting import wait_for

BRIDGE = "br-sw"
SUBNET_PREFIX = "10.231.0."
GATEWAY = SUBNET_PREFIX + "1"
DATA_ROOT = Path("/var/lib/mcp-test-swarm")
EXEC_ROOT = Path("/run/mcp-test-swarm")
ZONES = ("a", "b", "c", "a", "b", "c")
_FORWARD_RULE = ["DOCKER-USER", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"]


class RigUnavailable(Exception):
    """This machine cannot build the rig (not root, no dockerd, no network namespaces)."""


def _run(argv: Sequence[str], check: bool = True, **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), check=check, capture_output=True, text=True, **kw)


@dataclass
class Node:
    index: int  # 1-based
    proc: Optional[subprocess.Popen] = None
    node_id: str = ""
    zone: str = ""

    @property
    def name(self) -> str:
        return f"sw{self.index}"

    @property
    def address(self) -> str:
        return f"{SUBNET_PREFIX}1{self.index}"

    @property
    def netns(self) -> str:
        return f"/var/run/netns/{self.name}"

    @property
    def exec_root(self) -> Path:
        return EXEC_ROOT / self.name

    @property
    def socket(self) -> str:
        return f"unix://{self.exec_root}/docker.sock"

    def prefix(self) -> list[str]:
        """The words that run a command inside this node's network namespace."""
        return ["nsenter", f"--net={self.netns}"]

    def env(self, base: Optional[dict] = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env["DOCKER_HOST"] = self.socket
        return env

    def client(self, timeout: int = 60):
        import docker

        return docker.DockerClient(base_url=self.socket, timeout=timeout)

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return _run(["docker", "-H", self.socket, *args], check=check)


class SwarmRig:
    def __init__(self, nodes: int = 3, managers: int = 1, log_dir: Optional[Path] = None) -> None:
        self.nodes = [Node(i + 1, zone=ZONES[i]) for i in range(nodes)]
        self.managers = managers
        self.log_dir = log_dir or Path("/tmp/mcp-test-swarm-logs")

    # --- building ---------------------------------------------------------------

    @staticmethod
    def check_machine() -> None:
        if os.geteuid() != 0:
            raise RigUnavailable("the swarm rig needs root (network namespaces, extra dockerd daemons)")
        for tool in ("dockerd", "ip", "nsenter", "iptables"):
            if shutil.which(tool) is None:
                raise RigUnavailable(f"the swarm rig needs {tool}")

    def build(self, images: Sequence[str] = ()) -> "SwarmRig":
        self.check_machine()
        self.close()  # what a crashed run left
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._network()
            for node in self.nodes:
                self._start_daemon(node)
            for node in self.nodes:
                wait_for(lambda n=node: self._answers(n), 60, f"dockerd of {node.name} to answer")
            self._form_swarm()
            for image in images:
                self.load_image(image)
        except BaseException:
            self.close()
            raise
        return self

    def _network(self) -> None:
        _run(["ip", "link", "add", BRIDGE, "type", "bridge"])
        _run(["ip", "addr", "add", f"{GATEWAY}/24", "dev", BRIDGE])
        _run(["ip", "link", "set", BRIDGE, "up"])
        for node in self.nodes:
            host_end, node_end = f"vh{node.index}sw", f"vn{node.index}sw"
            _run(["ip", "netns", "add", node.name])
            _run(["ip", "link", "add", host_end, "type", "veth", "peer", "name", node_end])
            _run(["ip", "link", "set", host_end, "master", BRIDGE])
            _run(["ip", "link", "set", host_end, "up"])
            _run(["ip", "link", "set", node_end, "netns", node.name])
            _run(["ip", "netns", "exec", node.name, "ip", "addr", "add", f"{node.address}/24", "dev", node_end])
            _run(["ip", "netns", "exec", node.name, "ip", "link", "set", node_end, "up"])
            _run(["ip", "netns", "exec", node.name, "ip", "link", "set", "lo", "up"])
        # The host engine's FORWARD policy is DROP: let the nodes talk to each other.
        if _run(["iptables", "-C", *_FORWARD_RULE], check=False).returncode != 0:
            if _run(["iptables", "-L", "DOCKER-USER"], check=False).returncode == 0:
                _run(["iptables", "-I", *_FORWARD_RULE])

    def _start_daemon(self, node: Node) -> None:
        data = DATA_ROOT / node.name
        data.mkdir(parents=True, exist_ok=True)
        node.exec_root.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"dockerd-{node.name}.log", "ab")
        # nsenter --net, not `ip netns exec` (which remounts /sys: dockerd then finds no
        # devices cgroup). A UTS namespace of its own gives the node its name (sw1, ...):
        # Swarm names a node after its engine's host name. Both exec: the pid is dockerd's.
        node.proc = subprocess.Popen(
            [
                "unshare",
                "--uts",
                "--",
                "sh",
                "-c",
                'hostname "$0" && exec "$@"',
                node.name,
                *node.prefix(),
                "dockerd",
                "--data-root",
                str(data),
                "--exec-root",
                str(node.exec_root),
                "--pidfile",
                str(node.exec_root / "dockerd.pid"),
                "-H",
                node.socket,
                "--containerd-namespace",
                f"mcptest{node.name}",
                "--containerd-plugins-namespace",
                f"mcptest{node.name}p",
                "--iptables=false",
                "--ip-masq=false",
                "--bridge=none",
                "--log-level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Offline: a task's image is the one loaded, not looked up on a registry first
            # (Swarm's executor tries a pull before every task start, ~20 s of DNS timeouts).
            env={**os.environ, "DOCKER_SERVICE_PREFER_OFFLINE_IMAGE": "1"},
        )
        log.close()

    @staticmethod
    def _answers(node: Node) -> bool:
        if node.proc is not None and node.proc.poll() is not None:
            raise RigUnavailable(f"dockerd of {node.name} exited with {node.proc.returncode}")
        return node.docker("version", "--format", "{{.Server.Version}}", check=False).returncode == 0

    def _form_swarm(self) -> None:
        first = self.nodes[0]
        first.docker("swarm", "init", "--advertise-addr", first.address, "--listen-addr", f"{first.address}:2377")
        manager_token = first.docker("swarm", "join-token", "-q", "manager").stdout.strip()
        worker_token = first.docker("swarm", "join-token", "-q", "worker").stdout.strip()
        for node in self.nodes[1:]:
            token = manager_token if node.index <= self.managers else worker_token
            node.docker("swarm", "join", "--token", token, "--advertise-addr", node.address, f"{first.address}:2377")
        for node in self.nodes:
            node.node_id = node.docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()
            first.docker("node", "update", "--label-add", f"zone={node.zone}", node.node_id)
        wait_for(lambda: self._all_ready(), 60, "every swarm node to be ready")

    def _all_ready(self) -> bool:
        out = self.nodes[0].docker("node", "ls", "--format", "{{.Status}} {{.Availability}}", check=False).stdout
        lines = out.split()
        return out.count("Ready") == len(self.nodes) and "Down" not in lines

    def load_image(self, image: str) -> None:
        """The host engine's image, into every node (no registry)."""
        saved = subprocess.run(["docker", "save", image], check=True, capture_output=True).stdout
        for node in self.nodes:
            subprocess.run(["docker", "-H", node.socket, "load"], input=saved, check=True, capture_output=True)

    # --- using ------------------------------------------------------------------

    @property
    def manager(self) -> Node:
        return self.nodes[0]

    def node_by_id(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.node_id == node_id)

    def kill_daemon(self, node: Node) -> None:
        if node.proc is not None and node.proc.poll() is None:
            node.proc.send_signal(signal.SIGKILL)
            node.proc.wait(30)

    def restart_daemon(self, node: Node, timeout: float = 90) -> None:
        """Start a killed node's dockerd again, on its data: it rejoins the swarm."""
        self._start_daemon(node)
        wait_for(lambda: self._answers(node), timeout, f"dockerd of {node.name} to answer again")
        wait_for(lambda: self._all_ready(), timeout, "every swarm node to be ready again")

    # --- tearing down -------------------------------------------------------------

    def close(self) -> None:
        """Everything the rig made, also a crashed run's: daemons, their containers'
        processes, namespaces, links, the forward rule, data."""
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.terminate()
                try:
                    node.proc.wait(20)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait(10)
            node.proc = None
        for pidfile in EXEC_ROOT.glob("*/dockerd.pid") if EXEC_ROOT.exists() else ():
            _kill_pidfile(pidfile)
        _kill_leftovers()
        for node in self.nodes:
            _run(["ip", "link", "del", f"vh{node.index}sw"], check=False)
        for name in _run(["ip", "netns", "list"], check=False).stdout.split("\n"):
            if name.split(" ")[0].startswith("sw") and name.split(" ")[0][2:].isdigit():
                _run(["ip", "netns", "del", name.split(" ")[0]], check=False)
        _run(["ip", "link", "del", BRIDGE], check=False)
        while _run(["iptables", "-D", *_FORWARD_RULE], check=False).returncode == 0:
            pass
        for root in (EXEC_ROOT, DATA_ROOT):
            if root.exists():
                _unmount_under(root)
                shutil.rmtree(root, ignore_errors=True)


def _kill_pidfile(pidfile: Path) -> None:
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _kill_leftovers() -> None:
    """Processes of a rig that outlived it (a crashed run): each node's dockerd and the
    containerd and shims it started, found by the rig's paths on their command lines."""
    marks = (str(EXEC_ROOT).encode(), str(DATA_ROOT).encode())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if any(mark in cmdline for mark in marks):
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except OSError:
                pass


def _unmount_under(root: Path) -> None:
    prefix = str(root) + "/"
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines() if len(line.split()) > 1]
    for target in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        _run(["umount", "-l", target], check=False)
