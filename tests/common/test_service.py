"""The service base: a real child process stopped by signals, timers, readers, ipc
endpoints and sd_notify."""

from __future__ import annotations

import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import zmq

from common import protocol as p
from common.reqrep import RepServer, ReqClient
from common.service import Service, bind_endpoint, ipc_path, prepare_ipc_dir, sd_notify, watchdog_interval

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 10.0

CHILD = """
import logging, sys
from common.pubsub import Publisher
from common.reqrep import RepServer
from common.service import Service

logging.basicConfig(level=logging.INFO, stream=sys.stderr)
run_dir = sys.argv[1]
svc = Service("child")
svc.attach(RepServer(svc.ctx, f"ipc://{run_dir}/rep.sock", {}, src="child"))
svc.attach(Publisher(svc.ctx, f"ipc://{run_dir}/pub.sock", "child"))
svc.every(0.2, lambda: None)
sys.exit(svc.run())
"""


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    """A datagram socket standing in for systemd's notify socket."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def receive_until(sock: socket.socket, wanted: str) -> list[str]:
    """Notifications received until one contains `wanted` (within WAIT_S)."""
    seen: list[str] = []
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            seen.append(sock.recv(4096).decode())
        except socket.timeout:
            break
        if wanted in seen[-1]:
            return seen
    raise AssertionError(f"no {wanted!r} notification; got {seen}")


@pytest.fixture
def child(tmp_path, notify_socket):
    procs: list[subprocess.Popen] = []

    def start(run_dir: Path) -> subprocess.Popen:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(run_dir)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(WAIT_S)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_a_child_service_cleanly(tmp_path, notify_socket, child, sig) -> None:
    run_dir = tmp_path / "run" / "mcp"
    proc = child(run_dir)
    ready = receive_until(notify_socket, "READY=1")
    assert f"MAINPID={proc.pid}" in ready[-1]
    rep, pub = run_dir / "rep.sock", run_dir / "pub.sock"
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(rep.stat().st_mode) == 0o600 and pub.exists()
    ctx = zmq.Context()
    try:
        with ReqClient(ctx, f"ipc://{rep}", timeout_ms=5000) as client:
            assert client.request("ping").src == "child"
    finally:
        ctx.destroy(linger=0)

    proc.send_signal(sig)
    out, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0, err
    receive_until(notify_socket, "STOPPING=1")
    assert f"child stopping ({sig.name})" in err and "child closed" in err
    assert not rep.exists() and not pub.exists()  # socket files removed on close


def test_sockets_and_owned_context_are_closed() -> None:
    svc = Service("t")
    rep = svc.attach(RepServer(svc.ctx, "tcp://127.0.0.1:*", {}))
    svc.close()
    assert rep.socket.closed and svc.ctx.closed
    svc.close()  # idempotent

    shared = zmq.Context()
    svc = Service("t", ctx=shared)
    rep = svc.attach(RepServer(svc.ctx, "tcp://127.0.0.1:*", {}))
    svc.close()
    assert rep.socket.closed and not shared.closed
    shared.destroy(linger=0)


# --------------------------------------------------------------------------- loop


def test_timers_run_and_a_failing_timer_does_not_stop_the_loop(caplog) -> None:
    caplog.set_level(logging.ERROR)
    svc = Service("t", max_poll_ms=50)
    ticks: list[float] = []
    once: list[int] = []
    cancelled: list[int] = []

    def failing() -> None:
        raise RuntimeError("timer broke")

    svc.every(0.01, failing)
    svc.every(0.01, lambda: ticks.append(time.monotonic()))
    svc.after(0.02, lambda: once.append(1))
    svc.after(0.02, lambda: cancelled.append(1)).cancel()
    svc.every(0.01, lambda: len(ticks) >= 5 and svc.stop("enough"), immediately=True)
    before = signal.getsignal(signal.SIGTERM)
    assert svc.run() == 0
    assert len(ticks) >= 5 and once == [1] and cancelled == []
    assert "timer failed: RuntimeError: timer broke" in caplog.text
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored


def test_a_failing_reader_does_not_stop_the_loop() -> None:
    svc = Service("t", max_poll_ms=50)
    inbox = svc.ctx.socket(zmq.PAIR)
    inbox.bind("inproc://reader-test")
    outbox = svc.ctx.socket(zmq.PAIR)
    outbox.connect("inproc://reader-test")
    got: list[bytes] = []

    def read() -> None:
        data = inbox.recv()
        if data == b"bad":
            raise ValueError("reader broke")
        got.append(data)
        svc.stop()

    svc.add_reader(inbox, read)
    svc.on_close(lambda: (inbox.close(0), outbox.close(0)))
    outbox.send(b"bad")
    outbox.send(b"good")
    svc.after(WAIT_S, lambda: svc.stop("deadline"))
    svc.run()
    assert got == [b"good"] and svc.stopping


def run_in_thread(svc: Service) -> threading.Thread:
    thread = threading.Thread(target=svc.run, daemon=True)
    thread.start()
    return thread


def test_stop_from_another_thread_wakes_a_long_poll() -> None:
    svc = Service("t", max_poll_ms=60_000)  # only a wakeup can end this poll early
    started = threading.Event()
    svc.after(0, started.set)
    thread = run_in_thread(svc)
    assert started.wait(WAIT_S)
    begin = time.monotonic()
    svc.stop("test")
    thread.join(WAIT_S)
    assert not thread.is_alive() and time.monotonic() - begin < WAIT_S


def test_a_signal_ends_a_long_poll_in_the_main_thread() -> None:
    svc = Service("t", max_poll_ms=60_000)  # the wakeup fd must cut this poll short
    killer = threading.Thread(target=lambda: os.kill(os.getpid(), signal.SIGTERM))
    svc.after(0, killer.start)  # signal handlers are installed by then
    begin = time.monotonic()
    assert svc.run() == 0
    assert svc.stopping and time.monotonic() - begin < WAIT_S
    killer.join(WAIT_S)


def test_a_service_in_a_thread_does_not_touch_signal_handlers() -> None:
    before = signal.getsignal(signal.SIGTERM)
    svc = Service("t", max_poll_ms=50)
    seen: list = []
    svc.after(0, lambda: (seen.append(signal.getsignal(signal.SIGTERM)), svc.stop()))
    run_in_thread(svc).join(WAIT_S)
    assert seen == [before]


def test_timer_arguments_are_checked() -> None:
    with Service("t") as svc:
        with pytest.raises(ValueError):
            svc.every(0, lambda: None)


# ---------------------------------------------------------------------- endpoints


def test_ipc_directory_is_created_owner_only(tmp_path) -> None:
    old = os.umask(0)  # even with a permissive umask
    try:
        ctx = zmq.Context()
        sock = ctx.socket(zmq.ROUTER)
        bound = bind_endpoint(sock, f"ipc://{tmp_path}/a/b/x.sock")
        assert bound == f"ipc://{tmp_path}/a/b/x.sock"
        assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o700
        assert stat.S_IMODE((tmp_path / "a" / "b" / "x.sock").stat().st_mode) == 0o600
        sock.close(0)
        ctx.destroy(0)
    finally:
        os.umask(old)


def test_an_existing_open_directory_is_left_alone_with_a_warning(tmp_path, caplog) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    prepare_ipc_dir(f"ipc://{shared}/x.sock")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755
    assert "accessible by other users" in caplog.text


def test_closing_removes_only_its_own_socket_file(tmp_path) -> None:
    endpoint = f"ipc://{tmp_path}/r/rep.sock"
    ctx = zmq.Context()
    old = RepServer(ctx, endpoint, {})
    new = RepServer(ctx, endpoint, {})  # a restarted agent binds the same path
    old.close()
    assert (tmp_path / "r" / "rep.sock").exists()
    new.close()
    assert not (tmp_path / "r" / "rep.sock").exists()
    ctx.destroy(0)


def test_endpoint_helpers() -> None:
    assert ipc_path("ipc:///run/x/y.sock") == "/run/x/y.sock"
    assert ipc_path("ipc://@abstract") is None and ipc_path("tcp://127.0.0.1:5") is None
    with pytest.raises(ValueError, match="over the limit"):
        prepare_ipc_dir("ipc:///tmp/" + "x" * 120 + "/y.sock")
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUB)
    bound = bind_endpoint(sock, "tcp://127.0.0.1:*")
    assert bound.startswith("tcp://127.0.0.1:") and not bound.endswith("*")
    sock.close(0)
    ctx.destroy(0)


# ------------------------------------------------------------------------ systemd


def test_sd_notify_without_systemd_is_a_no_op(monkeypatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sd_notify("READY=1") is False


def test_sd_notify_to_a_path_and_to_the_abstract_namespace(notify_socket, monkeypatch) -> None:
    assert sd_notify("READY=1")
    assert notify_socket.recv(100) == b"READY=1"
    name = f"mcp-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as abstract:
        abstract.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sd_notify("WATCHDOG=1")
        assert abstract.recv(100) == b"WATCHDOG=1"
    monkeypatch.setenv("NOTIFY_SOCKET", "/nonexistent/notify.sock")
    assert sd_notify("READY=1") is False  # a warning, not a crash


def test_watchdog_pings(notify_socket, monkeypatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "100000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval() == pytest.approx(0.05)
    svc = Service("t", max_poll_ms=50)
    thread = run_in_thread(svc)
    receive_until(notify_socket, "READY=1")
    receive_until(notify_socket, "WATCHDOG=1")
    svc.stop()
    thread.join(WAIT_S)
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert watchdog_interval() is None  # meant for another process


def test_ping_is_built_in(tmp_path) -> None:
    svc = Service("t", max_poll_ms=50)
    rep = svc.attach(RepServer(svc.ctx, f"ipc://{tmp_path}/s/rep.sock", {}, src="t"))
    thread = run_in_thread(svc)
    ctx = zmq.Context()
    try:
        with ReqClient(ctx, rep.endpoint, timeout_ms=5000) as client:
            assert client.call("ping") == p.Empty()
    finally:
        ctx.destroy(linger=0)
        svc.stop()
        thread.join(WAIT_S)
