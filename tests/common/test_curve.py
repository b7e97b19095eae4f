"""CurveZMQ between hosts (common/curve.py), with real sockets: the cluster key pair is
made owner-only and never replaced, peers holding it talk, a peer with another key or
none gets nothing through, and a plain tcp:// link beyond this host is refused unless
allowed."""

from __future__ import annotations

import stat
import subprocess
import sys

import pytest
import zmq

from common import curve
from common.service import new_socket
from common.settings import Settings, ZmqSettings
from tests.harness.ports import free_port
from tests.harness.processes import clean_env


@pytest.fixture
def contexts():
    made: list[zmq.Context] = []

    def make() -> zmq.Context:
        ctx = zmq.Context()
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        curve.release(ctx)
        ctx.destroy(linger=0)


def armed(make, keys_dir) -> zmq.Context:
    ctx = make()
    curve.secure(ctx, curve.load_keys(keys_dir))
    return ctx


def ask(client_ctx: zmq.Context, endpoint: str, server: zmq.Socket, timeout_ms: int = 1500) -> bytes | None:
    """A request through a REQ socket of `client_ctx`; the reply, or None when none came."""
    req, _ = new_socket(client_ctx, zmq.REQ, connect=endpoint)
    try:
        req.send(b"ping")
        if not server.poll(timeout_ms):
            return None
        server.send(server.recv() + b" pong")
        return req.recv() if req.poll(timeout_ms) else None
    finally:
        req.close(linger=0)


def test_the_key_pair_is_made_once_and_owner_only(tmp_path):
    directory = tmp_path / "keys"
    secret, made = curve.create_keys(directory)
    assert made and secret.name == "cluster.key_secret"
    for path in (directory, *curve.key_files(directory)):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    before = secret.read_bytes()
    assert curve.create_keys(directory) == (secret, False) and secret.read_bytes() == before
    keys = curve.load_keys(directory)
    assert keys.secret and keys.secret.decode() not in repr(keys)
    with pytest.raises(curve.CurveError, match="run `mcp-orchestrator keys`"):
        curve.load_keys(tmp_path / "none")


def test_peers_with_the_cluster_key_talk_and_others_get_nothing(tmp_path, contexts):
    curve.create_keys(tmp_path / "ours")
    curve.create_keys(tmp_path / "theirs")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    server, _ = new_socket(armed(contexts, tmp_path / "ours"), zmq.REP, bind=endpoint)
    try:
        assert ask(armed(contexts, tmp_path / "ours"), endpoint, server) == b"ping pong"
        # Another key pair: the handshake fails, nothing reaches the server.
        assert ask(armed(contexts, tmp_path / "theirs"), endpoint, server) is None
        # No key at all (a plain client on loopback): nothing either.
        assert ask(contexts(), endpoint, server) is None
        # The server still serves its own.
        assert ask(armed(contexts, tmp_path / "ours"), endpoint, server) == b"ping pong"
    finally:
        server.close(linger=0)


def test_a_plain_link_beyond_this_host_is_refused_unless_allowed(contexts):
    ctx = contexts()
    with pytest.raises(curve.CurveError, match="plain tcp:// link beyond this host is refused"):
        new_socket(ctx, zmq.REQ, connect="tcp://10.231.0.99:7451")
    with pytest.raises(curve.CurveError):
        new_socket(ctx, zmq.REP, bind="tcp://0.0.0.0:*")
    sock, _ = new_socket(ctx, zmq.REQ, connect="tcp://127.0.0.1:7451")  # loopback stays plain
    sock.close(linger=0)
    curve.allow_plain(ctx)
    sock, _ = new_socket(ctx, zmq.REQ, connect="tcp://10.231.0.99:7451")
    sock.close(linger=0)


def test_which_settings_need_links_between_hosts():
    assert not Settings().links_between_hosts  # ipc:// on one host
    assert not Settings(zmq=ZmqSettings(routes="tcp://127.0.0.1:7001")).links_between_hosts
    assert Settings(zmq=ZmqSettings(routes="tcp://10.0.0.5:7001")).links_between_hosts
    from common.settings import ClusterSettings

    assert Settings(cluster=ClusterSettings(engine="swarm")).links_between_hosts


def test_a_process_of_a_swarm_without_the_cluster_key_does_not_start(tmp_path):
    settings = tmp_path / "settings.conf"
    settings.write_text(f"[cluster]\nengine = swarm\nkeys_dir = {tmp_path / 'keys'}\n[zmq]\nruntime_dir = {tmp_path}\n")
    done = subprocess.run(
        [sys.executable, "-m", "services.alb_agent.main", "--settings", str(settings)],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert done.returncode != 0
    assert "no cluster key in" in done.stderr and "mcp-orchestrator keys" in done.stderr, done.stderr
