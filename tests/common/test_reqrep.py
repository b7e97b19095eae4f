"""ReqClient and RepServer over real ZeroMQ sockets (tcp on 127.0.0.1 and ipc)."""

from __future__ import annotations

import concurrent.futures
import logging
import socket
import threading
import time
from typing import Callable, Optional

import msgpack
import pytest
import zmq

from common import protocol as p
from common.protocol import ErrorCode, ProtocolError, ServiceError
from common.reqrep import Deferred, RemoteError, RepServer, ReqClient, RequestTimeout
from common.secrets import Secret
from common.service import Service, bind_endpoint

# Deadlines are generous: they check behaviour (a typed error comes back in bounded
# time), not speed, on a busy two-core machine.
MARGIN_S = 3.0
WAIT_S = 10.0
CANARY = "canary-4b1d-reqrep-secret"


@pytest.fixture
def ctx():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


ANY_PORT = "tcp://127.0.0.1:*"


def free_tcp_endpoint() -> str:
    """A port nothing listens on, for a client that starts before its server."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture(params=["tcp", "ipc"])
def endpoint(request, tmp_path) -> str:
    """Where a server binds first: any free port (the bound endpoint names it) or ipc."""
    if request.param == "tcp":
        return ANY_PORT
    return f"ipc://{tmp_path}/run/rep.sock"


@pytest.fixture(params=["tcp", "ipc"])
def unbound_endpoint(request, tmp_path) -> str:
    """Where a client connects before any server exists."""
    if request.param == "tcp":
        return free_tcp_endpoint()
    return f"ipc://{tmp_path}/run/rep.sock"


def handlers() -> dict:
    def status(msg):
        if msg.body.server_id == "missing":
            raise ServiceError(ErrorCode.NOT_FOUND, "no container for server 'missing'")
        return p.ContainerList([p.ContainerInfo(msg.body.server_id or "all", state="running")])

    return {"container.status": status}


class ServiceThread:
    """A RepServer in a Service loop on its own thread, like a real agent."""

    def __init__(self, endpoint: str, handler_map: Optional[dict] = None) -> None:
        self.endpoint = endpoint
        self.handler_map = handler_map if handler_map is not None else handlers()
        self.ready = threading.Event()
        self.error: Optional[BaseException] = None
        self.service: Optional[Service] = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.service = Service("test-rep", max_poll_ms=50)
        try:
            rep = self.service.attach(RepServer(self.service.ctx, self.endpoint, self.handler_map, src="test-rep"))
            self.endpoint = rep.endpoint
        except BaseException as exc:
            self.error = exc
            self.service.close()
            return
        finally:
            self.ready.set()
        self.service.run()

    def __enter__(self) -> "ServiceThread":
        self.thread.start()
        assert self.ready.wait(WAIT_S)
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc) -> None:
        self.service.stop()
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive()


class RawServer:
    """A ROUTER socket on a thread answering with whatever `respond(frames)` returns.

    It has a context of its own, terminated on exit: only then is the listening socket
    really closed, so that the next server can bind the same endpoint at once."""

    def __init__(self, endpoint: str, respond: Callable[[list], Optional[list]]) -> None:
        self.endpoint, self.respond = endpoint, respond
        self.bound = threading.Event()
        self.stopping = threading.Event()
        self.error: Optional[BaseException] = None
        self.received = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        ctx = zmq.Context()
        sock = ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            try:
                self.endpoint = bind_endpoint(sock, self.endpoint)
            except zmq.ZMQError as exc:
                self.error = exc
                return
            finally:
                self.bound.set()
            while not self.stopping.is_set():
                if sock.poll(20):
                    frames = sock.recv_multipart()
                    self.received += 1
                    for out in self.respond(frames) or []:
                        sock.send_multipart(out)
        finally:
            sock.close(linger=0)
            ctx.term()

    def __enter__(self) -> "RawServer":
        self.thread.start()
        assert self.bound.wait(WAIT_S)
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive()


def good_reply(frames: list) -> list:
    """A correct answer to the request in ROUTER `frames` ([identity, b"", payload])."""
    req = p.decode(frames[-1])
    reply = p.reply_ok(req, None if req.type == "ping" else p.ContainerList(), "raw")
    return frames[:-1] + [p.encode(reply)]


# --------------------------------------------------------------------- ReqClient


def test_request_reply_over_a_service_loop(ctx, endpoint) -> None:
    with ServiceThread(endpoint) as server, ReqClient(ctx, server.endpoint, timeout_ms=2000, src="t") as client:
        reply = client.request("container.status", p.ContainerStatusQuery("github"))
        assert reply.body == p.ContainerList([p.ContainerInfo("github", state="running")])
        assert reply.src == "test-rep" and reply.type == "container.list"
        assert client.call("ping") == p.Empty()
        with pytest.raises(RemoteError) as info:
            client.request("container.status", p.ContainerStatusQuery("missing"))
        assert info.value.code is ErrorCode.NOT_FOUND and info.value.src == "test-rep"
        assert "missing" in info.value.message
        with pytest.raises(RemoteError) as info:  # a type this server does not serve
            client.request("routes.status")
        assert info.value.code is ErrorCode.UNKNOWN_TYPE


def deferred_handlers(release: threading.Event, executor) -> dict:
    """container.status answered by a worker thread that waits for `release`: the
    server id says what the work and the deadline do."""

    def work(sid: str) -> list:
        if sid == "boom":
            raise ServiceError(ErrorCode.FAILED, "the engine said no")
        release.wait(WAIT_S)
        return [p.ContainerInfo(sid, state="running")]

    def at_deadline(sid: str):
        if sid == "late":
            raise ServiceError(ErrorCode.TIMEOUT, "no answer in time")
        return p.ContainerList([p.ContainerInfo(sid, state="pending-answer")])

    def status(msg):
        sid = msg.body.server_id
        future = executor.submit(work, sid)
        seconds = 0.3 if sid in ("slow", "late") else WAIT_S
        return Deferred(future, seconds, lambda: at_deadline(sid), then=lambda infos: p.ContainerList(infos))

    return {"container.status": status}


def test_deferred_replies_leave_the_loop_free_and_keep_each_envelope(ctx) -> None:
    release = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(8) as executor:
        with ServiceThread(ANY_PORT, deferred_handlers(release, executor)) as server:
            answers: dict = {}

            def ask(sid: str) -> None:
                with ReqClient(ctx, server.endpoint, timeout_ms=int(WAIT_S * 1000), retries=0, src=sid) as client:
                    try:
                        answers[sid] = client.call("container.status", p.ContainerStatusQuery(sid))
                    except RemoteError as exc:
                        answers[sid] = exc

            threads = [threading.Thread(target=ask, args=(sid,)) for sid in ("a", "b", "slow", "late", "boom")]
            for t in threads:
                t.start()
            # While two requests wait on their work, the loop answers others at once.
            with ReqClient(ctx, server.endpoint, timeout_ms=1000, retries=0, src="t") as client:
                asked = time.monotonic()
                assert client.call("ping") == p.Empty()
                assert time.monotonic() - asked < MARGIN_S
            deadline = time.monotonic() + WAIT_S
            while len(answers) < 3 and time.monotonic() < deadline:  # slow, late, boom
                time.sleep(0.02)
            assert answers["slow"].containers[0].state == "pending-answer"  # the deadline's body
            assert answers["late"].code is ErrorCode.TIMEOUT  # the deadline's error
            assert answers["boom"].code is ErrorCode.FAILED and "said no" in answers["boom"].message
            assert "a" not in answers and "b" not in answers
            release.set()
            for t in threads:
                t.join(WAIT_S)
            # Each reply went back to its own client; the ones past their deadline once.
            assert answers["a"].containers[0].server_id == "a" and answers["b"].containers[0].server_id == "b"
            with ReqClient(ctx, server.endpoint, timeout_ms=1000, retries=0, src="t") as client:
                assert client.call("ping") == p.Empty()


def test_call_soon_runs_on_the_loop_thread_at_once() -> None:
    service = Service("soon", max_poll_ms=1000)
    ran: list = []
    loop_thread = threading.current_thread()
    threading.Thread(target=lambda: service.call_soon(lambda: ran.append(threading.current_thread()))).start()
    deadline = time.monotonic() + WAIT_S
    while not ran and time.monotonic() < deadline:
        service.run_once()
    assert ran == [loop_thread]
    service.close()


def test_dead_endpoint_times_out_within_its_deadline_then_recovers(ctx, unbound_endpoint) -> None:
    endpoint = unbound_endpoint
    client = ReqClient(ctx, endpoint, timeout_ms=300, retries=2, backoff_ms=50)
    start = time.monotonic()
    with pytest.raises(RequestTimeout) as info:
        client.request("ping")
    elapsed = time.monotonic() - start
    assert info.value.code is ErrorCode.TIMEOUT and "3 attempt(s)" in info.value.message
    assert elapsed < client.max_wait_seconds() + MARGIN_S
    with ServiceThread(endpoint):  # the server comes (back) on the same endpoint
        assert client.request("ping").type == "pong"
    client.close()


def test_slow_server_times_out_then_recovers_when_it_answers_in_time(ctx) -> None:
    release = threading.Event()

    def respond(frames):
        release.wait(WAIT_S)  # hold every request until the client has given up
        return [good_reply(frames)]

    with RawServer(ANY_PORT, respond) as server:
        client = ReqClient(ctx, server.endpoint, timeout_ms=300, retries=1, backoff_ms=50)
        start = time.monotonic()
        with pytest.raises(RequestTimeout):
            client.request("ping")
        assert time.monotonic() - start < client.max_wait_seconds() + MARGIN_S
        release.set()
        # The late replies went to sockets the client has closed; the new request gets its own.
        assert client.request("ping", timeout_ms=5000).type == "pong"
        assert server.received >= 2
        client.close()


def test_garbage_answer_is_a_protocol_error_then_a_good_server_is_used(ctx, endpoint) -> None:
    garbage = [
        lambda f: [f[:-1] + [b"\xc1 not msgpack"]],
        lambda f: [[f[0], b"no delimiter"]],
        lambda f: [f[:-1] + [p.encode(p.request("ping"))]],  # a request, not a reply
        lambda f: [f[:-1] + [msgpack.packb({"v": 1})]],
    ]
    client = None
    for respond in garbage:  # each server comes back on the endpoint the first one bound
        with RawServer(endpoint, respond) as server:
            endpoint = server.endpoint
            client = client or ReqClient(ctx, endpoint, timeout_ms=2000, retries=2)
            start = time.monotonic()
            with pytest.raises(ProtocolError) as info:
                client.request("ping")
            assert info.value.code is ErrorCode.BAD_MESSAGE
            assert time.monotonic() - start < client.max_wait_seconds() + MARGIN_S
    with ServiceThread(endpoint):
        assert client.request("ping").type == "pong"
    client.close()


def test_reply_of_the_wrong_type_is_a_protocol_error(ctx) -> None:
    def respond(frames):
        req = p.decode(frames[-1])
        wrong = p.Message(type="pong", id=p.new_id(), src="raw", ts=0.0, body=p.Empty(), reply_to=req.id, ok=True)
        return [frames[:-1] + [p.encode(wrong)]]

    with RawServer(ANY_PORT, respond) as server, ReqClient(ctx, server.endpoint, timeout_ms=2000) as client:
        with pytest.raises(ProtocolError, match="expected a 'container.list' reply"):
            client.request("container.status")


def test_replies_to_other_requests_are_dropped(ctx) -> None:
    def respond(frames):
        p.decode(frames[-1])  # a well-formed request, answered with a stray reply
        stray = p.Message(
            type="pong", id=p.new_id(), src="raw", ts=0.0, body=p.Empty(), reply_to="someone-else", ok=True
        )
        return [frames[:-1] + [p.encode(stray)], good_reply(frames)]

    with RawServer(ANY_PORT, respond) as server, ReqClient(ctx, server.endpoint, timeout_ms=2000) as client:
        reply = client.request("ping")
        assert reply.type == "pong" and reply.src == "raw"


def test_client_works_with_a_plain_rep_socket(ctx) -> None:
    rep = ctx.socket(zmq.REP)
    rep.setsockopt(zmq.LINGER, 0)
    endpoint = bind_endpoint(rep, ANY_PORT)
    result = {}

    def serve():
        if rep.poll(WAIT_S * 1000):
            rep.send(p.encode(p.reply_ok(p.decode(rep.recv()), None, "rep")))

    thread = threading.Thread(target=serve)
    thread.start()
    with ReqClient(ctx, endpoint, timeout_ms=5000) as client:
        result["reply"] = client.request("ping")
    thread.join(WAIT_S)
    rep.close()
    assert result["reply"].src == "rep"


def test_request_too_large_is_refused_before_sending(ctx) -> None:
    with ReqClient(ctx, free_tcp_endpoint(), max_bytes=1000) as client:
        with pytest.raises(ProtocolError) as info:
            client.request("container.ensure", p.ContainerEnsure("a", 1, "h" * 2000))
        assert info.value.code is ErrorCode.TOO_LARGE


def test_a_secret_in_a_request_is_refused_without_showing_it(ctx) -> None:
    with ReqClient(ctx, free_tcp_endpoint()) as client:
        with pytest.raises(ProtocolError) as info:
            client.request("container.stop", p.ContainerRef(Secret(CANARY)))  # type: ignore[arg-type]
        assert CANARY not in str(info.value)


def test_client_belongs_to_one_thread(ctx) -> None:
    with ServiceThread(ANY_PORT) as server, ReqClient(ctx, server.endpoint, timeout_ms=2000) as client:
        client.request("ping")
        errors = []
        thread = threading.Thread(target=lambda: errors.append(_catch(lambda: client.request("ping"))))
        thread.start()
        thread.join(WAIT_S)
        assert isinstance(errors[0], RuntimeError)


def _catch(fn):
    try:
        fn()
    except Exception as exc:
        return exc
    return None


def test_max_wait_is_documented_by_the_client(ctx) -> None:
    client = ReqClient(ctx, "tcp://127.0.0.1:1", timeout_ms=1000, retries=2, backoff_ms=100)
    assert client.max_wait_seconds() == pytest.approx(3.0 + 0.1 + 0.2)
    assert client.max_wait_seconds(timeout_ms=500, retries=0) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        ReqClient(ctx, "tcp://127.0.0.1:1", timeout_ms=0)


# --------------------------------------------------------------------- RepServer


def exchange(server: RepServer, client: zmq.Socket, frames: list) -> list:
    """Send `frames` from `client`, let `server` work until the answer arrives."""
    client.send_multipart(frames)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        server.handle_ready()
        if client.poll(10):
            return client.recv_multipart()
    raise AssertionError("the server did not answer")


def error_of(frames: list) -> p.Message:
    reply = p.decode(frames[-1])
    assert reply.ok is False, reply
    return reply


@pytest.fixture
def server_and_dealer(ctx, endpoint):
    def boom(msg):
        raise RuntimeError(f"token {secret.reveal()} rejected by {msg.body!r}")

    def wrong_body(msg):
        return p.Empty()

    def leaky(msg):
        return p.ContainerList([p.ContainerInfo(msg.body.server_id, stderr_tail=[secret])])  # type: ignore[list-item]

    def huge(msg):
        return p.ContainerList([p.ContainerInfo(msg.body.server_id, stderr_tail=["x" * 100] * 100)])

    def status(msg):
        return {"leaky": leaky, "huge": huge}.get(msg.body.server_id, handlers()["container.status"])(msg)

    secret = Secret(CANARY)
    handler_map = {
        **handlers(),
        "container.restart": boom,
        "container.stop": wrong_body,
        "container.status": status,
    }
    server = RepServer(ctx, endpoint, handler_map, src="agent", max_bytes=4096)
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(server.endpoint)
    yield server, dealer
    dealer.close()
    server.close()


def ping_works(server: RepServer, dealer: zmq.Socket) -> None:
    req = p.request("ping", None, "t")
    reply = p.decode(exchange(server, dealer, [b"", p.encode(req)])[-1])
    assert reply.type == "pong" and reply.reply_to == req.id


def _envelope(**kw) -> bytes:
    env = {"v": 1, "type": "ping", "id": "req-1", "ts": 1.0, "src": "t", "body": {}}
    env.update(kw)
    return msgpack.packb(env, use_bin_type=True)


BAD_INPUTS = [
    ("garbage", [b"", b"\xc1\xc1\xc1"], ErrorCode.BAD_MESSAGE, ""),
    ("empty payload", [b"", b""], ErrorCode.BAD_MESSAGE, ""),
    ("two payload frames", [b"", _envelope(), _envelope()], ErrorCode.BAD_MESSAGE, ""),
    ("no payload frame", [b""], ErrorCode.BAD_MESSAGE, ""),
    ("not a map", [b"", msgpack.packb([1, 2, 3])], ErrorCode.BAD_MESSAGE, ""),
    ("unknown type", [b"", _envelope(type="container.explode")], ErrorCode.UNKNOWN_TYPE, "req-1"),
    ("a reply sent as request", [b"", _envelope(type="pong", reply_to="x", ok=True)], ErrorCode.UNKNOWN_TYPE, "req-1"),
    ("a type not served here", [b"", _envelope(type="routes.status")], ErrorCode.UNKNOWN_TYPE, "req-1"),
    ("newer protocol", [b"", _envelope(v=2)], ErrorCode.VERSION_MISMATCH, "req-1"),
    ("wrong body", [b"", _envelope(type="container.status", body={"server_id": 5})], ErrorCode.INVALID_BODY, "req-1"),
    ("oversized", [b"", _envelope(type="container.status", body={"pad": "x" * 5000})], ErrorCode.TOO_LARGE, "req-1"),
]


@pytest.mark.parametrize("name,frames,code,reply_to", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_server_answers_bad_input_and_keeps_serving(server_and_dealer, name, frames, code, reply_to) -> None:
    server, dealer = server_and_dealer
    err = error_of(exchange(server, dealer, frames))
    assert err.error.code is code and err.reply_to == reply_to and err.src == "agent"
    ping_works(server, dealer)


def test_handler_failures_are_answered_without_secrets(server_and_dealer, caplog) -> None:
    server, dealer = server_and_dealer
    caplog.set_level(logging.INFO)
    cases = [
        (p.request("container.restart", p.ContainerRef("github")), ErrorCode.INTERNAL),
        (p.request("container.stop", p.ContainerRef("github")), ErrorCode.INTERNAL),
        (p.request("container.status", p.ContainerStatusQuery("leaky")), ErrorCode.INVALID_BODY),
        (p.request("container.status", p.ContainerStatusQuery("huge")), ErrorCode.TOO_LARGE),
        (p.request("container.status", p.ContainerStatusQuery("missing")), ErrorCode.NOT_FOUND),
    ]
    for req, code in cases:
        err = error_of(exchange(server, dealer, [b"", p.encode(req)]))
        assert err.error.code is code and err.reply_to == req.id, (req.type, err)
        assert CANARY not in err.error.message and "ContainerRef(" not in err.error.message
        ping_works(server, dealer)
    assert "handler for container.restart failed: RuntimeError" in caplog.text
    assert CANARY not in caplog.text


def test_req_socket_and_dealer_without_delimiter_are_answered(ctx, endpoint) -> None:
    with RepServer(ctx, endpoint, {}, src="agent") as server:
        req_sock = ctx.socket(zmq.REQ)
        req_sock.setsockopt(zmq.LINGER, 0)
        req_sock.connect(server.endpoint)
        reply = exchange(server, req_sock, [p.encode(p.request("ping"))])
        assert len(reply) == 1 and p.decode(reply[0]).type == "pong"
        # A REQ socket sending two frames gets one error, and can go on.
        reply = exchange(server, req_sock, [b"a", b"b"])
        assert p.decode(reply[0]).error.code is ErrorCode.BAD_MESSAGE
        assert p.decode(exchange(server, req_sock, [p.encode(p.request("ping"))])[0]).ok
        req_sock.close()

        bare = ctx.socket(zmq.DEALER)
        bare.setsockopt(zmq.LINGER, 0)
        bare.connect(server.endpoint)
        reply = exchange(server, bare, [p.encode(p.request("ping"))])
        assert len(reply) == 1 and p.decode(reply[0]).type == "pong"
        reply = exchange(server, bare, [b"junk"])
        assert p.decode(reply[0]).error.code is ErrorCode.BAD_MESSAGE
        bare.close()


def test_server_survives_a_flood_of_garbage(server_and_dealer) -> None:
    server, dealer = server_and_dealer
    import random

    rng = random.Random(7)
    for i in range(200):
        payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))
        dealer.send_multipart([b"", payload] + ([b"x"] if i % 7 == 0 else []))
    answered = 0
    deadline = time.monotonic() + WAIT_S
    while answered < 200 and time.monotonic() < deadline:
        server.handle_ready()
        while dealer.poll(0):
            dealer.recv_multipart()
            answered += 1
    assert answered == 200
    ping_works(server, dealer)


def test_a_frame_far_over_the_limit_drops_that_peer_only(ctx, endpoint) -> None:
    with RepServer(ctx, endpoint, {}, max_bytes=1024) as server:
        abuser = ctx.socket(zmq.DEALER)
        abuser.setsockopt(zmq.LINGER, 0)
        abuser.connect(server.endpoint)
        abuser.send_multipart([b"", b"x" * (1024 * 1024)])
        server.handle_ready()
        good = ctx.socket(zmq.DEALER)
        good.setsockopt(zmq.LINGER, 0)
        good.connect(server.endpoint)
        ping_works(server, good)
        abuser.close()
        good.close()


def test_handlers_must_be_request_types(ctx) -> None:
    with pytest.raises(ProtocolError):
        RepServer(ctx, ANY_PORT, {"pong": lambda m: None})
    with pytest.raises(ProtocolError):
        RepServer(ctx, ANY_PORT, {"container.explode": lambda m: None})


def test_a_failed_bind_leaves_no_open_socket(ctx) -> None:
    with RepServer(ctx, ANY_PORT, {}) as first:
        with pytest.raises(zmq.ZMQError):
            RepServer(ctx, first.endpoint, {})  # address in use
        assert [s for s in ctx._sockets if not s.closed] == [first.socket]
