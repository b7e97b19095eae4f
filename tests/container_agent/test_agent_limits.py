"""One client cannot take every MCP server down: thousands of idle connections to a bridge
port of the real container-agent, started with its systemd unit's open-file limit (and once
with a low one), leave other clients' calls and Docker operations working and the log small."""

from __future__ import annotations

import re
import resource
import socket
from pathlib import Path

import pytest
from test_agent_containers import World, health, http_call, mcp_call, mcp_session, world  # noqa: F401

from tests.harness.waiting import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "mcp-orchestrator-container-agent.service"
ATTACK = 2000
HEADER_TIMEOUT = 3


def unit_nofile() -> int:
    wanted = int(re.search(r"^LimitNOFILE=(\d+)$", UNIT.read_text(), re.M).group(1))
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]  # a sandbox may cap it below
    return wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)


def idle_connections(port: int, count: int) -> list[socket.socket]:
    """`count` connections from 127.0.0.2 that never send a byte."""
    socks = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.2", 0))
        sock.connect(("127.0.0.1", port))
        socks.append(sock)
    return socks


def closed_by_server(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


@pytest.fixture(autouse=True)
def enough_files_for_the_attacker():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = ATTACK + 512
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"the test process may open only {hard} files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.parametrize("nofile", [unit_nofile(), 1024], ids=["unit-limit", "low-limit"])
def test_idle_connections_leave_everyone_else_served(world: World, nofile: int):
    world.settings.write_text(world.settings.read_text() + f"[bridge]\nheader_timeout_seconds = {HEADER_TIMEOUT}\n")
    sid, other = world.sid("clock"), world.sid("later")
    world.time(sid)
    agent = world.agent(nofile=nofile)
    port = world.ports[0]
    agent.call("container.ensure", world.ensure_body(sid, port))
    wait_for(lambda: health(port, sid) == 200, 60, "the server to be ready")
    log_before = agent.log_path.stat().st_size

    socks = idle_connections(port, ATTACK)
    try:
        refused = wait_for(
            lambda: sum(closed_by_server(s) for s in socks) or None, 10, "connections over the cap to be turned away"
        )
        # Another client is served while the attacker holds everything it was allowed.
        session = mcp_session(port, sid)
        answer, _ = mcp_call(
            port,
            sid,
            {
                "jsonrpc": "2.0",
                "id": 7,
                "method": "tools/call",
                "params": {"name": "get_current_time", "arguments": {"timezone": "Etc/UTC"}},
            },
            session,
        )
        assert answer["result"]["isError"] is False
        # Docker operations still have file descriptors: a second server starts and serves.
        world.time(other)
        agent.call("container.ensure", world.ensure_body(other, world.ports[1]))
        wait_for(lambda: health(world.ports[1], other) == 200, 60, "a second server")
        # Connections that never send a request are closed after the header timeout.
        wait_for(
            lambda: all(closed_by_server(s) for s in socks), HEADER_TIMEOUT + 15, "the idle connections to be closed"
        )
        print(
            f"LimitNOFILE={nofile}: {refused} of {ATTACK} turned away at once, the rest closed after {HEADER_TIMEOUT} s"
        )
    finally:
        for sock in socks:
            sock.close()
    grown = agent.log_path.stat().st_size - log_before
    print(f"the agent's log grew by {grown} bytes")
    assert grown < 20_000, agent.output()[-3000:]
    assert "Traceback" not in agent.output() and "Too many open files" not in agent.output()
