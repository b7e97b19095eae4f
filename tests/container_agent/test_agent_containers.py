"""The container-agent as a real process: real Docker engine, real ZeroMQ, real HTTP.

Each test gets its own cluster name (so agents of parallel runs never see each
other's containers), ipc:// endpoints in a temporary directory, a free port range and
an mcp.config.json it rewrites at will. Every container made carries the test label;
the fixture removes them all and stops every agent it started.
"""

from __future__ import annotations

import http.client
import json
import os
import resource
import shutil
import signal
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

zmq = pytest.importorskip("zmq")
docker = pytest.importorskip("docker")

from common import container_labels as agent_labels  # noqa: E402
from common.config import load_config  # noqa: E402
from common.protocol import (  # noqa: E402
    ContainerEnsure,
    ContainerRef,
    ContainerStatusQuery,
    ErrorCode,
    Message,
)
from common.pubsub import Subscriber  # noqa: E402
from common.reqrep import RemoteError, ReqClient  # noqa: E402
from tests.harness.files import write_config, write_settings  # noqa: E402
from tests.harness.labels import TEST_LABEL  # noqa: E402
from tests.harness.ports import free_port_range  # noqa: E402
from tests.harness.processes import Process, specs_for  # noqa: E402
from tests.harness.waiting import wait_for  # noqa: E402

pytestmark = pytest.mark.docker

# A stdio MCP server in busybox sh: says something on stderr (its token too, which the
# agent must mask), answers initialize and every request with an empty result.
FAKE_SERVER = r"""
echo "fake server: starting" >&2
echo "fake server: token $TOKEN" >&2
while IFS= read -r line; do
  id=$(echo "$line" | sed -n 's/.*"id":\([0-9][0-9]*\).*/\1/p')
  case "$line" in
    *'"method":"initialize"'*)
      echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{\"tools\":{}},\"serverInfo\":{\"name\":\"fake\",\"version\":\"1\"}}}" ;;
    *'"method":"notifications/'*) ;;
    *) [ -n "$id" ] && echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{}}" ;;
  esac
done
"""


# --- HTTP ------------------------------------------------------------------------------


def http_call(
    port: int, method: str, path: str, body: Any = None, headers: Optional[dict] = None
) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def health(port: int, server_id: str) -> Optional[int]:
    """The status of /mcp/{id}/health, None when nothing listens."""
    try:
        return http_call(port, "GET", f"/mcp/{server_id}/health")[0]
    except OSError:
        return None


def mcp_call(port: int, server_id: str, message: dict, session: Optional[str] = None) -> tuple[dict, dict]:
    """One JSON-RPC request over Streamable HTTP: (response message, headers)."""
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if session:
        headers["Mcp-Session-Id"] = session
    status, got, body = http_call(port, "POST", f"/mcp/{server_id}/mcp", message, headers)
    assert status == 200, (status, body)
    if got.get("content-type", "").startswith("text/event-stream"):
        for line in body.decode().splitlines():
            if line.startswith("data:"):
                data = json.loads(line[5:])
                if data.get("id") == message["id"]:
                    return data, got
        raise AssertionError(f"no response in the stream: {body!r}")
    return json.loads(body), got


def mcp_session(port: int, server_id: str) -> str:
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "agent-test", "version": "1"},
        },
    }
    answer, headers = mcp_call(port, server_id, init)
    assert "result" in answer, answer
    session = headers["mcp-session-id"]
    status, _, _ = http_call(
        port,
        "POST",
        f"/mcp/{server_id}/mcp",
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "Mcp-Session-Id": session,
        },
    )
    assert status == 202
    return session


# --- the agent process -----------------------------------------------------------------


class Agent:
    def __init__(self, world: "World", reply_wait: float, nofile: Optional[int] = None) -> None:
        self.world = world
        self.log_path = world.dir / f"agent-{len(world.agents)}.log"
        self.started_at = time.monotonic()
        self.process = Process.of(
            specs_for(world.settings, world.config, labels={TEST_LABEL: world.tag})["container-agent"],
            self.log_path,
            "--reply-wait",
            str(reply_wait),
            # As a unit's LimitNOFILE= would set it (soft = hard).
            before_exec=(lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))) if nofile else None,
        )
        self.ctx = zmq.Context()
        self.sub = Subscriber(self.ctx, world.events, topics=("container.",))
        self.seen: list[Message] = []
        self.heartbeats = 0
        wait_for(self.answers, 20, "the agent to answer ping")
        # PUB/SUB joins late: events sent before the subscription is live are lost.
        wait_for(lambda: self.drain() is not None and self.heartbeats, 10, "a heartbeat")

    def client(self, timeout_ms: int = 10000) -> ReqClient:
        return ReqClient(self.ctx, self.world.containers, timeout_ms=timeout_ms, retries=0, src="test")

    def answers(self) -> bool:
        assert self.process.alive(), self.output()
        with self.client(timeout_ms=300) as c:
            try:
                c.request("ping")
                return True
            except Exception:
                return False

    def call(self, type: str, body: Any = None) -> Any:
        with self.client() as c:
            return c.call(type, body)

    def error(self, type: str, body: Any = None) -> RemoteError:
        with pytest.raises(RemoteError) as exc:
            self.call(type, body)
        return exc.value

    def drain(self) -> list[Message]:
        while True:
            msg = self.sub.receive()
            if msg is None:
                return self.seen
            if msg.type == "heartbeat":
                self.heartbeats += 1
            else:
                self.seen.append(msg)

    def event(
        self, topic: str, server_id: str, timeout: float = 20, where: Callable[[Message], bool] = lambda m: True
    ) -> Message:
        def find() -> Optional[Message]:
            for msg in self.drain():
                if msg.type == topic and msg.body.server_id == server_id and where(msg):
                    return msg
            return None

        return wait_for(find, timeout, f"{topic} for {server_id}")

    def forget_events(self) -> None:
        self.drain()
        self.seen.clear()

    def output(self) -> str:
        return self.process.output()

    def stop(self, sig: int = signal.SIGTERM) -> Optional[int]:
        code = self.process.stop(sig=sig)
        self.sub.close()
        self.ctx.destroy(linger=0)
        return code


class World:
    def __init__(self, docker_client: Any, busybox: str, time_server: str) -> None:
        self.docker = docker_client
        self.busybox = busybox
        self.time_server = time_server
        self.tag = uuid.uuid4().hex[:10]
        self.cluster = f"test-{self.tag}"
        # ipc paths must stay short (Unix socket paths hold about 107 bytes).
        self.dir = Path(tempfile.mkdtemp(prefix="ca-", dir="/tmp"))
        os.chmod(self.dir, 0o700)
        self.containers = f"ipc://{self.dir}/containers.sock"
        self.events = f"ipc://{self.dir}/events.sock"
        self.port_range = free_port_range(10)
        self.ports = list(range(self.port_range[0], self.port_range[1] + 1))
        self.settings = write_settings(
            self.dir / "settings.conf",
            {
                "aws": {"cluster_name": self.cluster},
                "service": {
                    "port_range_start": self.port_range[0],
                    "port_range_end": self.port_range[1],
                    "bridge_host": "127.0.0.1",
                },
                "zmq": {
                    "containers": self.containers,
                    "container_events": self.events,
                    "heartbeat_interval_seconds": 0.2,
                },
                "logging": {"level": "INFO"},
            },
        )
        self.config = self.dir / "mcp.config.json"
        self.servers: dict[str, dict] = {}
        self.write_config()
        self.agents: list[Agent] = []
        self.secret = "tok-" + uuid.uuid4().hex  # an env value: must never leak

    def write_config(self) -> None:
        write_config(self.config, self.servers)

    def fake(self, server_id: str, *flags: str) -> None:
        """The busybox fake server, with `flags` before the image (default: --init)."""
        self.servers[server_id] = {
            "command": "docker",
            "args": [
                "run",
                "-i",
                "--rm",
                *(flags or ("--init",)),
                "-e",
                "TOKEN",
                self.busybox,
                "sh",
                "-c",
                FAKE_SERVER,
            ],
            "env": {"TOKEN": self.secret},
        }
        self.write_config()

    def time(self, server_id: str) -> None:
        self.servers[server_id] = {
            "command": "docker",
            "args": ["run", "-i", "--rm", "--init", "-e", "TZ", "-e", "TOKEN", self.time_server],
            "env": {"TZ": "UTC", "TOKEN": self.secret},
        }
        self.write_config()

    def sid(self, name: str) -> str:
        """A server id no other run uses (container names are global to the engine)."""
        return f"{name}-{self.tag[:6]}"

    def spec_hash(self, server_id: str) -> str:
        config = load_config(self.config, port_range=self.port_range, environ={})
        return config.servers[server_id].spec_hash

    def ensure_body(self, server_id: str, port: int) -> ContainerEnsure:
        return ContainerEnsure(server_id, port, self.spec_hash(server_id))

    def agent(self, reply_wait: float = 5.0, nofile: Optional[int] = None) -> Agent:
        agent = Agent(self, reply_wait, nofile)
        self.agents.append(agent)
        return agent

    def inspect(self, ref: str) -> Optional[dict]:
        try:
            return self.docker.api.inspect_container(ref)
        except docker.errors.NotFound:
            return None

    def foreign(self, name: str) -> Any:
        """A container that is not ours (no orchestrator labels)."""
        return self.docker.containers.run(
            self.busybox, ["sleep", "600"], name=name, detach=True, labels={TEST_LABEL: self.tag}
        )

    def leaked(self) -> list[str]:
        """Agent output and published messages that hold the secret value."""
        found = []
        for agent in self.agents:
            if self.secret in agent.output():
                found.append(f"log {agent.log_path.name}")
            for msg in agent.seen:
                if self.secret in repr(msg):
                    found.append(f"event {msg.type}")
        return found

    def close(self) -> None:
        for agent in self.agents:
            agent.stop(signal.SIGKILL)
        for filters in ({"label": f"{TEST_LABEL}={self.tag}"}, {"label": f"{agent_labels.CLUSTER}={self.cluster}"}):
            for container in self.docker.containers.list(all=True, filters=filters):
                try:
                    container.remove(force=True, v=True)
                except docker.errors.NotFound:
                    pass
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def world(docker_client, busybox_image, time_server_image):
    made = World(docker_client, busybox_image, time_server_image)
    yield made
    for agent in made.agents:  # pytest shows this output only when the test failed
        print(f"--- {agent.log_path.name}\n{agent.output()}")
    made.close()


def labels_of(world: World, ref: str) -> dict:
    return world.inspect(ref)["Config"]["Labels"]


# --- tests -----------------------------------------------------------------------------


def test_ensure_runs_and_serves_the_time_server(world):
    sid = world.sid("clock")
    world.time(sid)
    agent = world.agent()
    port = world.ports[1]
    info = agent.call("container.ensure", world.ensure_body(sid, port))
    assert info.state == "running" and info.host_port == port and info.name == f"mcp-{sid}"
    assert info.spec_hash == world.spec_hash(sid) and info.pending is None and not info.error

    labels = labels_of(world, f"mcp-{sid}")
    assert labels[agent_labels.MANAGED] == "true"
    assert labels[agent_labels.SERVER_ID] == sid
    assert labels[agent_labels.HOST_PORT] == str(port)
    assert labels[agent_labels.SPEC_HASH] == world.spec_hash(sid)
    assert labels[agent_labels.CLUSTER] == world.cluster
    assert labels[TEST_LABEL] == world.tag
    attrs = world.inspect(f"mcp-{sid}")
    assert attrs["Config"]["OpenStdin"] and not attrs["Config"]["StdinOnce"]
    assert not attrs["Config"]["Tty"] and not attrs["HostConfig"]["AutoRemove"]

    wait_for(lambda: health(port, sid) == 200, 30, "health 200")
    session = mcp_session(port, sid)
    answer, _ = mcp_call(
        port,
        sid,
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "get_current_time", "arguments": {"timezone": "UTC"}},
        },
        session,
    )
    assert not answer["result"].get("isError"), answer
    assert json.loads(answer["result"]["content"][0]["text"])["timezone"] == "UTC"

    assert agent.event("container.started", sid).body.container_id == info.container_id
    assert agent.event("container.bridge", sid).body.bridge == "up"
    # Ensuring again changes nothing.
    again = agent.call("container.ensure", world.ensure_body(sid, port))
    assert again.container_id == info.container_id and again.bridge == "ready"
    assert world.leaked() == []


def test_a_killed_container_is_published_at_once_and_its_crash_stays_visible(world):
    sid = world.sid("crash")
    world.fake(sid)
    agent = world.agent()
    port = world.ports[2]
    info = agent.call("container.ensure", world.ensure_body(sid, port))
    wait_for(lambda: health(port, sid) == 200, 30, "health 200")
    wait_for(
        lambda: (
            "fake server: starting"
            in "".join(world.docker.api.logs(info.container_id, stdout=False, stderr=True).decode())
        ),
        10,
        "the server's stderr",
    )
    agent.forget_events()

    killed_at = time.time()
    world.docker.api.kill(info.container_id)
    exited = agent.event("container.exited", sid, timeout=10)
    assert exited.ts - killed_at < 1.0, "the exit was not published within a second"
    assert exited.body.exit_code == 137 and exited.body.container_id == info.container_id
    assert not exited.body.requested  # a crash, not an exit the orchestrator asked for
    assert "fake server: starting" in exited.body.stderr_tail
    assert "fake server: token ***" in exited.body.stderr_tail  # the env value is masked

    wait_for(lambda: health(port, sid) == 503, 10, "health 503")
    status = agent.call("container.status", ContainerStatusQuery(sid)).containers[0]
    assert (status.state, status.exit_code, status.bridge) == ("exited", 137, "down")
    assert "fake server: starting" in status.stderr_tail
    assert world.leaked() == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_a_restarted_agent_adopts_the_running_container(world, sig):
    sid = world.sid("adopt")
    world.time(sid)
    port = world.ports[3]
    first = world.agent()
    info = first.call("container.ensure", world.ensure_body(sid, port))
    wait_for(lambda: health(port, sid) == 200, 30, "health 200")
    started = world.inspect(info.container_id)["State"]["StartedAt"]

    code = first.stop(sig)
    if sig == signal.SIGTERM:
        assert code == 0, first.output()
        assert "stopping (SIGTERM)" in first.output()
    assert world.inspect(info.container_id)["State"]["Status"] == "running"

    second = world.agent()
    deadline = second.started_at + 2.0
    while health(port, sid) != 200:
        assert time.monotonic() < deadline, "not served again within 2 s of the agent's start"
        time.sleep(0.02)
    status = second.call("container.status", ContainerStatusQuery(sid)).containers[0]
    assert status.container_id == info.container_id and status.bridge == "ready"
    attrs = world.inspect(info.container_id)
    assert attrs["State"]["StartedAt"] == started  # adopted, not restarted
    assert f"adopting 1 running container(s): {sid}" in second.output()
    session = mcp_session(port, sid)
    answer, _ = mcp_call(port, sid, {"jsonrpc": "2.0", "id": 5, "method": "tools/list"}, session)
    assert "get_current_time" in {tool["name"] for tool in answer["result"]["tools"]}
    # Ensure after adoption keeps it too.
    again = second.call("container.ensure", world.ensure_body(sid, port))
    assert again.container_id == info.container_id
    assert not [m for m in second.drain() if m.type == "container.started"]


def test_drift_recreates_sync_removes_and_foreign_containers_are_left_alone(world):
    alpha = world.sid("alpha")
    beta = world.sid("beta")
    bystander = world.foreign(f"bystander-{world.tag}")
    squatter = world.foreign(f"mcp-taken-{world.tag}")  # has the name a server would get
    world.fake(alpha)
    world.fake(beta)
    world.fake(f"taken-{world.tag}")
    agent = world.agent()
    pa, pb = world.ports[4], world.ports[5]
    first = agent.call("container.ensure", world.ensure_body(alpha, pa))
    agent.call("container.ensure", world.ensure_body(beta, pb))
    wait_for(lambda: health(pa, alpha) == 200, 30, "alpha health 200")

    conflict = agent.error("container.ensure", world.ensure_body(f"taken-{world.tag}", world.ports[6]))
    assert conflict.code is ErrorCode.CONFLICT and "not managed" in conflict.message

    # Change alpha's spec: it is recreated (new container, new hash), same port.
    world.fake(alpha, "--init", "-e", "MODE=second")
    second = agent.call("container.ensure", world.ensure_body(alpha, pa))
    assert second.container_id != first.container_id
    assert world.inspect(first.container_id) is None
    assert labels_of(world, second.container_id)[agent_labels.SPEC_HASH] == world.spec_hash(alpha)
    wait_for(lambda: health(pa, alpha) == 200, 30, "health 200 after the recreate")

    # The scheduler no longer wants alpha: removing it closes its port.
    removed = agent.call("container.remove", ContainerRef(alpha))
    assert removed.state == "missing" and removed.pending is None
    assert world.inspect(second.container_id) is None
    assert health(pa, alpha) is None
    everything = agent.call("container.status", ContainerStatusQuery()).containers
    assert {c.server_id: c.state for c in everything}[beta] == "running"
    wait_for(lambda: health(pb, beta) == 200, 30, "beta health 200")

    agent.call("container.remove", ContainerRef(beta))
    assert world.inspect(f"mcp-{beta}") is None
    for foreign in (bystander, squatter):
        foreign.reload()
        assert foreign.status == "running"
        assert world.inspect(foreign.id)["Id"] == foreign.id
    assert world.leaked() == []


def test_stop_start_restart_remove(world):
    sid = world.sid("cycle")
    world.fake(sid)
    agent = world.agent()
    port = world.ports[7]
    info = agent.call("container.ensure", world.ensure_body(sid, port))
    wait_for(lambda: health(port, sid) == 200, 30, "health 200")

    stopped = agent.call("container.stop", ContainerRef(sid))
    assert stopped.state == "exited" and stopped.exit_code == 143  # SIGTERM, through --init
    exited = agent.event("container.exited", sid).body
    assert exited.exit_code == 143 and exited.requested
    wait_for(lambda: health(port, sid) == 503, 10, "503 while stopped (the port stays)")

    started = agent.call("container.start", ContainerRef(sid))
    assert started.state == "running" and started.container_id == info.container_id
    assert started.exit_code is None
    wait_for(lambda: health(port, sid) == 200, 30, "health 200 after start")

    before = world.inspect(info.container_id)["State"]["StartedAt"]
    restarted = agent.call("container.restart", ContainerRef(sid))
    assert restarted.container_id == info.container_id and restarted.started_at != before
    wait_for(lambda: health(port, sid) == 200, 30, "health 200 after restart")
    session = mcp_session(port, sid)
    assert mcp_call(port, sid, {"jsonrpc": "2.0", "id": 9, "method": "ping"}, session)[0]["result"] == {}

    removed = agent.call("container.remove", ContainerRef(sid))
    assert removed.state == "missing" and removed.exit_code == 143
    assert world.inspect(info.container_id) is None
    assert health(port, sid) is None
    assert "fake server: starting" in removed.stderr_tail  # the last run's, kept after removal
    again = agent.call("container.remove", ContainerRef(sid))  # idempotent
    assert again.state == "missing"
    missing = agent.error("container.start", ContainerRef(sid))
    assert missing.code is ErrorCode.NOT_FOUND


def test_slow_operations_reply_pending_and_their_outcome_follows_as_events(world):
    slow = world.sid("slow")
    ghost = world.sid("ghost")
    # sh as PID 1 ignores SIGTERM: stop waits for --stop-timeout, then kills.
    world.fake(slow, "--stop-timeout", "2")
    world.servers[ghost] = {
        "command": "docker",
        "args": ["run", "-i", "--pull", "never", f"mcp-orchestrator/no-such-image:{world.tag}"],
    }
    world.write_config()
    agent = world.agent(reply_wait=0.0)
    port = world.ports[8]

    reply = agent.call("container.ensure", world.ensure_body(slow, port))
    assert reply.pending == "ensure"
    agent.event("container.started", slow)
    wait_for(lambda: health(port, slow) == 200, 30, "health 200")

    stopping = agent.call("container.stop", ContainerRef(slow))
    assert stopping.pending == "stop"
    exited = agent.event("container.exited", slow, timeout=30)
    assert exited.body.exit_code == 137

    failed = agent.call("container.ensure", world.ensure_body(ghost, world.ports[9]))
    assert failed.pending == "ensure"
    event = agent.event("container.exited", ghost)
    assert event.body.state == "failed" and "--pull=never" in event.body.message
    status = wait_for(
        lambda: [
            c
            for c in agent.call("container.status", ContainerStatusQuery()).containers
            if c.server_id == ghost and not c.pending
        ],
        10,
        "status",
    )
    assert "--pull=never" in status[0].error


def test_bad_requests_get_error_replies_and_the_agent_lives_on(world):
    sid = world.sid("known")
    world.fake(sid)
    agent = world.agent()

    sock = agent.ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(world.containers)
    try:
        for frames in ([b"", b"\x00garbage\xff"], [b"", b"a", b"b"], [b"", b"\x81\xa1v\x01"]):
            sock.send_multipart(frames)
            assert sock.poll(5000), "no answer to garbage"
            reply = sock.recv_multipart()
            import msgpack

            decoded = msgpack.unpackb(reply[-1], raw=False)
            assert decoded["ok"] is False and decoded["error"]["code"] == "bad_message"
    finally:
        sock.close()

    unknown = agent.error("container.ensure", ContainerEnsure("nope", world.ports[1], "h"))
    assert unknown.code is ErrorCode.NOT_FOUND
    outside = agent.error("container.ensure", ContainerEnsure(sid, 1, world.spec_hash(sid)))
    assert outside.code is ErrorCode.INVALID_ARGUMENT and "port range" in outside.message
    stale = agent.error("container.ensure", ContainerEnsure(sid, world.ports[1], "0" * 16))
    assert stale.code is ErrorCode.CONFLICT
    assert agent.error("container.restart", ContainerRef("nope")).code is ErrorCode.NOT_FOUND
    assert agent.call("container.stop", ContainerRef("nope")).state == "missing"
    for bad in ("", "x/../../images", "a b", "-x"):
        invalid = agent.error("container.stop", ContainerRef(bad))
        assert invalid.code is ErrorCode.INVALID_ARGUMENT, bad
    assert agent.answers() and agent.process.alive()
    snapshot = agent.call("snapshot.get")
    assert snapshot.seq >= 0 and isinstance(snapshot.state, dict)


STATIC_SITE = "mkdir -p /www && echo '{\"ok\":true}' > /www/mcp && exec httpd -f -p 8080 -h /www"


def test_a_server_that_speaks_http_is_reverse_proxied(world):
    sid = world.sid("web")
    # Published on an ephemeral loopback port: the agent reaches it there.
    world.servers[sid] = {
        "command": "docker",
        "args": ["run", "-i", "--rm", "--init", "-p", "127.0.0.1::8080", world.busybox, "sh", "-c", STATIC_SITE],
        "orchestrator": {"http": {"port": 8080, "path": "/"}},
    }
    world.write_config()
    agent = world.agent()
    port = world.ports[2]
    info = agent.call("container.ensure", world.ensure_body(sid, port))
    labels = labels_of(world, info.container_id)
    assert labels[agent_labels.TRANSPORT] == "http"
    assert labels[agent_labels.HTTP_PORT] == "8080"
    wait_for(lambda: health(port, sid) == 200, 30, "health 200")
    status, _, body = http_call(port, "GET", f"/mcp/{sid}/mcp")
    assert (status, json.loads(body)) == (200, {"ok": True})
    # The bridge knows which container it proxies to: a second ensure finds it served
    # and changes nothing (it used to be re-adopted on every ensure).
    assert agent.call("container.ensure", world.ensure_body(sid, port)).container_id == info.container_id
    assert agent.output().count(f"server {sid}: adopt") == 0, agent.output()

    world.docker.api.kill(info.container_id)
    assert agent.event("container.exited", sid).body.exit_code == 137
    wait_for(lambda: health(port, sid) == 503, 10, "health 503")

    agent.call("container.start", ContainerRef(sid))  # a new ephemeral port
    wait_for(lambda: health(port, sid) == 200, 30, "health 200 after the start")
    assert http_call(port, "GET", f"/mcp/{sid}/mcp")[0] == 200


def test_a_server_that_crashes_at_once_shows_its_exit_code_and_stderr(world):
    sid = world.sid("boom")
    world.servers[sid] = {
        "command": "docker",
        "args": ["run", "-i", "--rm", world.busybox, "sh", "-c", "echo 'boom: missing API key' >&2; exit 3"],
    }
    world.write_config()
    agent = world.agent()
    port = world.ports[1]
    try:
        agent.call("container.ensure", world.ensure_body(sid, port))
    except RemoteError as exc:  # it may die before the agent sees it running
        assert exc.code is ErrorCode.FAILED and "exited at once with code 3" in exc.message
    exited = agent.event("container.exited", sid)
    assert exited.body.exit_code == 3 and not exited.body.requested
    assert exited.body.stderr_tail == ["boom: missing API key"]
    status = agent.call("container.status", ContainerStatusQuery(sid)).containers[0]
    assert (status.state, status.exit_code) == ("exited", 3)
    assert status.stderr_tail == ["boom: missing API key"]
    assert health(port, sid) in (None, 503)  # never healthy
    # --rm in the args does not take the evidence away: the container is still there.
    assert world.inspect(f"mcp-{sid}")["State"]["ExitCode"] == 3


def test_a_secret_straddling_the_stderr_cut_shows_nowhere_even_in_part(world):
    sid = world.sid("straddle")
    # The secret starts 10 characters before the 2,000-character cut of a stderr line.
    script = 'pad=$(printf "%01990d" 0); echo "${pad}${TOKEN} and more" >&2; echo "second line ${TOKEN}" >&2; exit 3'
    world.servers[sid] = {
        "command": "docker",
        "args": ["run", "-i", "--rm", "-e", "TOKEN", world.busybox, "sh", "-c", script],
        "env": {"TOKEN": world.secret},
    }
    world.write_config()
    agent = world.agent()
    try:
        agent.call("container.ensure", world.ensure_body(sid, world.ports[3]))
    except RemoteError:
        pass  # it may die before the agent sees it running
    exited = agent.event("container.exited", sid)
    status = agent.call("container.status", ContainerStatusQuery(sid)).containers[0]
    shown = repr(exited.body) + repr(status) + agent.output()
    assert "second line ***" in shown
    prefix = world.secret[:6]
    assert prefix not in shown, "a part of the secret escaped"
