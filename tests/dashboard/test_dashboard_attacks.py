"""Attacks on the real dashboard process (waitress, real sockets): slowloris, connection
floods from one address, deep JSON, forged X-Forwarded-For; and the warning every page
carries when MCP requests are not authenticated by the orchestrator."""

from __future__ import annotations

import http.client
import socket
import time
from typing import Optional

import pytest
import requests

from tests.dashboard.processes import PASSWORD, DashboardUser, World, wait_for_http
from tests.harness.files import Sections

HALF_REQUEST = b"GET /monitor/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"  # no blank line: unfinished
OTHER_ADDRESS = "127.0.0.2"


@pytest.fixture
def worlds():
    made: list[World] = []

    def make(settings: Optional[Sections] = None) -> World:
        made.append(World(settings))
        return made[-1]

    yield make
    for world in made:
        world.close()


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    return sock


def get(port: int, path: str, source: str = "127.0.0.1") -> tuple[int, float]:
    """(status, seconds) of a plain GET from `source`."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=(source, 0))
    try:
        conn.request("GET", path)
        return conn.getresponse().status, time.monotonic() - started
    finally:
        conn.close()


class Connections:
    """Client sockets, with what the server sent on each and whether it closed them."""

    def __init__(self, socks: list[socket.socket]) -> None:
        self.socks = socks
        self.data = {s: b"" for s in socks}
        self.closed: set[socket.socket] = set()
        for s in socks:
            s.setblocking(False)

    def poll(self) -> int:
        """Read what has arrived; the number of connections the server has closed."""
        for s in self.socks:
            while s not in self.closed:
                try:
                    chunk = s.recv(4096)
                except BlockingIOError:
                    break
                except OSError:
                    self.closed.add(s)
                    break
                if not chunk:
                    self.closed.add(s)
                self.data[s] += chunk
        return len(self.closed)

    def answers(self, prefix: bytes) -> int:
        return sum(1 for s in self.socks if self.data[s].startswith(prefix))

    def close(self) -> None:
        for s in self.socks:
            s.close()


def first_bytes(sock: socket.socket) -> bytes:
    with sock:
        return sock.recv(200)


def test_slowloris_leaves_others_served_and_is_closed_after_the_header_timeout(worlds):
    world = worlds({"dashboard": {"header_timeout_seconds": 3, "max_connections_per_address": 1000}})
    dash = world.dashboard()
    attack = Connections([connect(world.port) for _ in range(150)])  # waitress stopped at 100
    try:
        for s in attack.socks:
            s.send(HALF_REQUEST)
        started = time.monotonic()
        status, seconds = get(world.port, "/monitor/login")
        assert status == 200 and seconds < 2, (status, seconds)
        DashboardUser(world.port).login()
        if time.monotonic() - started < 2.5:
            assert attack.poll() == 0  # nobody is cut off before the deadline

        dripping = attack.socks[:50]  # a header line now and then does not buy more time

        def all_closed() -> bool:
            for s in dripping:
                try:
                    s.send(b"X-Drip: 1\r\n")
                except OSError:
                    pass
            return attack.poll() == len(attack.socks)

        wait_for_http(all_closed, 3 + 5, f"every half-sent request to be closed\n{dash.output()}", interval=0.5)
        assert time.monotonic() - started >= 2.5
        silent = attack.socks[50:]
        assert sum(attack.data[s].startswith(b"HTTP/1.1 408 ") for s in silent) == len(silent)
    finally:
        attack.close()
    assert get(world.port, "/monitor/login")[0] == 200
    output = dash.output()
    assert "the request did not arrive in time" in output
    assert "Traceback" not in output


def test_one_address_over_its_cap_leaves_other_addresses_served(worlds):
    world = worlds({"dashboard": {"max_connections_per_address": 20, "header_timeout_seconds": 60}})
    dash = world.dashboard()
    attack = Connections([connect(world.port) for _ in range(150)])
    try:
        wait_for_http(lambda: attack.poll() >= 130, 10, f"connections over the cap to be turned away\n{dash.output()}")
        status, seconds = get(world.port, "/monitor/login", source=OTHER_ADDRESS)
        assert status == 200 and seconds < 2, (status, seconds)
        assert first_bytes(connect(world.port)).startswith(b"HTTP/1.1 429 Too Many Requests")
        # Those within the cap (less any other connection of ours) are still open.
        still_open = len(attack.socks) - attack.poll()
        assert 15 <= still_open <= 20
        assert attack.answers(b"HTTP/1.1 429 Too Many Requests\r\n") == 150 - still_open
    finally:
        attack.close()
    wait_for_http(
        lambda: get(world.port, "/monitor/login")[0] == 200,
        5,
        "the address to be served again once its connections are closed",
    )
    assert "too many open connections from your address" in dash.output()


def test_over_the_total_limit_a_client_gets_503_until_connections_close(worlds):
    world = worlds({"dashboard": {"max_connections": 16, "header_timeout_seconds": 60}})
    world.dashboard()
    attack = Connections([connect(world.port) for _ in range(16)])
    try:
        refused = first_bytes(connect(world.port, source=OTHER_ADDRESS))
        assert refused.startswith(b"HTTP/1.1 503 Service Unavailable"), refused
    finally:
        attack.close()
    wait_for_http(
        lambda: get(world.port, "/monitor/login", source=OTHER_ADDRESS)[0] == 200,
        5,
        "a client to be served once the connections are closed",
    )


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_deep_or_malformed_json_is_a_400_and_leaves_no_traceback_or_password(worlds):
    world = worlds()
    dash = world.dashboard()
    tried = "deep-json-password-7c1e9a"
    base = f"http://127.0.0.1:{world.port}/monitor"
    as_json = {"Content-Type": "application/json"}
    for body in (
        '{"username": "admin", "password": "' + tried + '", "x": ' + deep(30000) + "}",
        '{"password": "' + tried + '", "a": ' + '{"a": ' * 9000 + "1" + "}" * 9001,
    ):
        answer = requests.post(f"{base}/api/login", data=body, headers=as_json, timeout=10)
        assert answer.status_code == 400, answer.text
        assert answer.json()["title"] == "Malformed JSON"
        assert "nested too deeply" in answer.json()["description"]
    user = DashboardUser(world.port).login()
    for body in (deep(30000), '{"action": "sync"', "\xff"):
        answer = user.http.post(
            f"{base}/api/actions",
            data=body.encode("latin-1"),
            timeout=10,
            headers={**as_json, "X-CSRF-Token": user.csrf},
        )
        assert answer.status_code == 400, answer.text
        assert answer.json()["title"] == "Malformed JSON"
    assert user.act("sync").status_code == 503  # still serving (no scheduler here)
    output = dash.output()
    assert "Traceback" not in output and "[FALCON]" not in output
    assert tried not in output and PASSWORD not in output


def wrong_login(base: str, forwarded_for: Optional[str]) -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return requests.post(
        f"{base}/api/login", json={"username": "admin", "password": "wrong"}, headers=headers, timeout=5
    ).status_code


def right_login(base: str, forwarded_for: Optional[str]) -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return requests.post(
        f"{base}/api/login", json={"username": "admin", "password": PASSWORD}, headers=headers, timeout=5
    ).status_code


CLIENT_A, CLIENT_B = "203.0.113.7", "198.51.100.9"


def test_behind_a_trusted_proxy_failed_logins_lock_out_only_that_client(worlds):
    world = worlds({"service": {"trusted_proxies": "127.0.0.1"}})
    dash = world.dashboard()
    base = f"http://127.0.0.1:{world.port}/monitor"
    assert [wrong_login(base, CLIENT_A) for _ in range(5)] == [401] * 5
    assert wrong_login(base, CLIENT_A) == 429
    assert right_login(base, f"{CLIENT_A}, 127.0.0.1") == 429  # the same client, another hop
    assert right_login(base, CLIENT_B) == 200
    assert f"failed login from {CLIENT_A}" in dash.output()


def test_without_trusted_proxies_a_forged_x_forwarded_for_changes_nothing(worlds):
    world = worlds()
    world.dashboard()
    base = f"http://127.0.0.1:{world.port}/monitor"
    assert [wrong_login(base, f"10.9.8.{n}") for n in range(5)] == [401] * 5
    assert right_login(base, CLIENT_B) == 429  # every attempt counted against the peer
    assert right_login(base, None) == 429


def test_every_page_warns_when_mcp_is_not_authenticated_by_the_orchestrator(worlds):
    world = worlds({"bridge": {"auth": "none"}})
    world.dashboard()
    user = DashboardUser(world.port).login()
    for path in ("/", "/routing", "/litellm", "/servers/nope"):
        page = user.get(path)
        assert page.status_code == 200
        assert "MCP endpoints are not authenticated by the orchestrator" in page.text, path
        assert "[bridge] auth = none" in page.text
    warning = user.api("overview")["mcp_auth_warning"]
    assert warning["level"] == "danger" and "auth = none" in warning["message"]
