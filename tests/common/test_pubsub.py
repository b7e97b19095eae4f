"""Publisher, Subscriber and StateMirror over real ZeroMQ sockets: late joiners, lost
messages, publisher restarts and silence."""

from __future__ import annotations

import queue
import socket
import threading
import time
from typing import Any, Callable, Optional

import pytest
import zmq

from common import protocol as p
from common.protocol import ErrorCode, ProtocolError
from common.pubsub import Publisher, StateMirror, Subscriber
from common.reqrep import RepServer
from common.secrets import Secret
from common.service import Service, bind_endpoint
from tests.harness.waiting import wait_for

WAIT_S = 10.0
HEARTBEAT_S = 0.05
CANARY = "canary-9e2f-pubsub-secret"


@pytest.fixture
def ctx():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def free_tcp_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


ANY_PORT = "tcp://127.0.0.1:*"


@pytest.fixture(params=["tcp", "ipc"])
def endpoints(request, tmp_path) -> tuple[str, str]:
    """(PUB, REP) endpoints for a StatePublisher; its `bound` says where it listens."""
    if request.param == "tcp":
        return ANY_PORT, ANY_PORT
    return f"ipc://{tmp_path}/rt/state.sock", f"ipc://{tmp_path}/rt/control.sock"


class StatePublisher:
    """Stands in for the scheduler: a state map, its PUB stream and `snapshot.get`,
    served by a Service loop on its own thread. Changes run inside that loop."""

    def __init__(self, pub_endpoint: str, rep_endpoint: str, initial: Optional[dict] = None) -> None:
        self.bound = (pub_endpoint, rep_endpoint)
        self.state: dict = dict(initial or {})
        self.pub: Optional[Publisher] = None
        self.service: Optional[Service] = None
        self.error: Optional[BaseException] = None
        self.ready = threading.Event()
        self._work: queue.Queue = queue.Queue()
        self._kick: Optional[zmq.Socket] = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        svc = self.service = Service("state-publisher", max_poll_ms=50)
        try:
            self.pub = svc.attach(Publisher(svc.ctx, self.bound[0], "scheduler", heartbeat_interval=HEARTBEAT_S))
            rep = svc.attach(
                RepServer(
                    svc.ctx,
                    self.bound[1],
                    {"snapshot.get": lambda msg: self.pub.snapshot(dict(self.state))},
                    src="scheduler",
                )
            )
            self.bound = (self.pub.endpoint, rep.endpoint)
            inbox = svc.ctx.socket(zmq.PAIR)
            svc.on_close(lambda: inbox.close(linger=0))
            inbox.bind(f"inproc://work-{id(self)}")
            svc.add_reader(inbox, lambda: self._do(inbox))
        except BaseException as exc:
            self.error = exc
            svc.close()
            return
        finally:
            self.ready.set()
        svc.run()

    def _do(self, inbox: zmq.Socket) -> None:
        inbox.recv()
        fn, done = self._work.get()
        fn()
        done.set()

    def call(self, fn: Callable[[], Any]) -> None:
        """Run `fn` in the publisher's loop (where its state and sockets live)."""
        done = threading.Event()
        self._work.put((fn, done))
        self._kick.send(b"")
        assert done.wait(WAIT_S), "publisher loop did not run the change"

    def set(self, server_id: str, status: str) -> None:
        def change():
            self.state[server_id] = status
            self.pub.publish("state.server", p.ServerState(server_id, status=status))

        self.call(change)

    def remove(self, server_id: str) -> None:
        def change():
            self.state.pop(server_id, None)
            self.pub.publish("state.server", p.ServerState(server_id, removed=True))

        self.call(change)

    def lose(self, server_id: str, status: str) -> None:
        """Change the state as if its event had been lost on the way."""

        def change():
            self.state[server_id] = status
            self.pub._seq += 1

        self.call(change)

    def event(self, text: str) -> None:
        self.call(lambda: self.pub.publish("state.event", p.StateEvent(message=text)))

    def __enter__(self) -> "StatePublisher":
        self.thread.start()
        assert self.ready.wait(WAIT_S)
        if self.error is not None:
            raise self.error
        self._kick = self.service.ctx.socket(zmq.PAIR)
        self._kick.connect(f"inproc://work-{id(self)}")
        return self

    def __exit__(self, *exc) -> None:
        if self._kick.closed:
            return
        self._kick.close(linger=0)
        self.service.stop()
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive()


def apply_server(state: dict, msg: p.Message) -> None:
    if msg.type == "state.server":
        if msg.body.removed:
            state.pop(msg.body.server_id, None)
        else:
            state[msg.body.server_id] = msg.body.status


def make_mirror(ctx, endpoints, apply=apply_server, **kw) -> StateMirror:
    return StateMirror(ctx, endpoints[0], endpoints[1], apply, src="dashboard", heartbeat_interval=HEARTBEAT_S, **kw)


def converge(mirror: StateMirror, expected: Callable[[], dict]) -> None:
    pump_until(
        lambda: mirror.synced and mirror.copy_state() == expected(),
        lambda: mirror.poll(20),
        explain=lambda: f"{mirror.copy_state()} != {expected()}",
    )


def pump_until(
    condition: Callable[[], bool], step: Callable[[], Any], explain: Optional[Callable[[], str]] = None
) -> None:
    """Call `step` (it pumps a socket) until `condition` holds, for WAIT_S seconds at most."""

    def pumped() -> bool:
        step()
        return condition()

    wait_for(pumped, WAIT_S, "the condition", interval=0, explain=explain)


# -------------------------------------------------------------------- StateMirror


def test_late_joiner_converges_and_follows(ctx, endpoints) -> None:
    with StatePublisher(*endpoints) as pub:
        for i in range(30):
            pub.set(f"server-{i}", "running")
        with make_mirror(ctx, pub.bound) as mirror:
            assert not mirror.synced
            converge(mirror, lambda: pub.state)
            assert mirror.available and mirror.epoch == pub.pub.epoch
            for i in range(25, 40):
                pub.set(f"server-{i}", "starting")
            for i in range(5):
                pub.remove(f"server-{i}")
            converge(mirror, lambda: pub.state)
            assert len(mirror.state) == 35
            assert mirror.snapshots == 1  # followed by events alone
            assert mirror.seq == pub.pub.current_seq


def test_a_lost_event_triggers_a_fresh_snapshot(ctx, endpoints) -> None:
    with StatePublisher(*endpoints, initial={"a": "running"}) as pub, make_mirror(ctx, pub.bound) as mirror:
        converge(mirror, lambda: pub.state)
        pub.lose("a", "crash-looping")  # the mirror never sees this event
        pub.set("b", "running")  # ... and this one reveals the gap
        converge(mirror, lambda: pub.state)
        assert mirror.state == {"a": "crash-looping", "b": "running"}
        assert mirror.snapshots == 2


def test_a_lost_last_event_is_noticed_by_the_heartbeat(ctx, endpoints) -> None:
    with StatePublisher(*endpoints, initial={"a": "running"}) as pub, make_mirror(ctx, pub.bound) as mirror:
        converge(mirror, lambda: pub.state)
        pub.lose("a", "stopped")  # nothing follows but heartbeats
        converge(mirror, lambda: pub.state)
        assert mirror.snapshots == 2


def test_publisher_restart_with_a_new_epoch_resyncs(ctx, endpoints) -> None:
    with StatePublisher(*endpoints, initial={"old": "running"}) as first, make_mirror(ctx, first.bound) as mirror:
        converge(mirror, lambda: first.state)
        first.set("old2", "running")
        converge(mirror, lambda: first.state)
        old_epoch = mirror.epoch
        first.__exit__(None, None, None)  # the process dies; a new one binds the same endpoints
        with StatePublisher(*first.bound, initial={"new": "pending"}) as second:
            converge(mirror, lambda: {"new": "pending"})
            assert mirror.epoch == second.pub.epoch != old_epoch
            second.set("new", "running")
            converge(mirror, lambda: second.state)


def test_heartbeat_silence_is_detected_and_recovery_follows(ctx, endpoints) -> None:
    with (
        StatePublisher(*endpoints, initial={"a": "running"}) as pub,
        make_mirror(ctx, pub.bound, silence_intervals=3) as mirror,
    ):
        converge(mirror, lambda: pub.state)
        assert mirror.available and not mirror.silent()
        pub.__exit__(None, None, None)
        pump_until(mirror.silent, lambda: mirror.poll(20))
        assert not mirror.available
        assert mirror.copy_state() == {"a": "running"}  # last known state stays readable
        with StatePublisher(*pub.bound, initial={"a": "running", "b": "pending"}) as again:
            converge(mirror, lambda: again.state)
            assert mirror.available


def test_mirror_without_a_publisher_stays_unsynced_and_goes_silent(ctx) -> None:
    with make_mirror(ctx, (free_tcp_endpoint(), free_tcp_endpoint())) as mirror:
        pump_until(mirror.silent, lambda: mirror.poll(20))
        assert not mirror.synced and not mirror.available and mirror.snapshots == 0


def test_topics_outside_the_filter_advance_seq_without_being_applied(ctx, endpoints) -> None:
    seen: list = []

    def apply(state, msg):
        seen.append(msg.type)
        apply_server(state, msg)

    with (
        StatePublisher(*endpoints) as pub,
        make_mirror(ctx, pub.bound, apply=apply, topics=("state.server",)) as mirror,
    ):
        converge(mirror, lambda: pub.state)
        pub.event("config reloaded")
        pub.set("a", "running")
        pub.event("something else")
        converge(mirror, lambda: pub.state)
        pump_until(lambda: mirror.seq == pub.pub.current_seq, lambda: mirror.poll(20))
        assert seen == ["state.server"] and mirror.snapshots == 1


def test_a_failing_apply_resyncs(ctx, endpoints) -> None:
    changes: list = []

    def apply(state, msg):
        if msg.body.status == "invalid":  # the status this test poisons
            state["half"] = "updated"
            raise KeyError("boom")
        apply_server(state, msg)

    with (
        StatePublisher(*endpoints) as pub,
        make_mirror(ctx, pub.bound, apply=apply, on_change=changes.append) as mirror,
    ):
        converge(mirror, lambda: pub.state)
        pub.set("y", "invalid")
        converge(mirror, lambda: pub.state)
        assert "half" not in mirror.state and mirror.snapshots == 2
        assert changes and changes[0] is None  # None: a snapshot replaced the state


# --------------------------------------------------------------------- Publisher


def test_publisher_stamps_seq_and_epoch(ctx) -> None:
    with Publisher(ctx, ANY_PORT, "scheduler") as pub, Publisher(ctx, ANY_PORT, "scheduler") as other:
        assert pub.epoch != other.epoch and pub.current_seq == 0
        first = pub.publish("state.server", p.ServerState("a"))
        pub.heartbeat()  # carries seq, does not take one
        second = pub.publish("route.created", p.RouteEvent("a"))
        assert (first.seq, second.seq) == (1, 2) and pub.current_seq == 2
        assert first.epoch == second.epoch == pub.epoch
        assert pub.snapshot({"a": 1}) == p.Snapshot(pub.epoch, 2, {"a": 1})
        with pytest.raises(ProtocolError):
            pub.publish("ping", p.Empty())  # not an event type


def raw_sub(ctx, endpoint: str) -> zmq.Socket:
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(endpoint)
    return sock


def until_subscribed(pub: Publisher, received: Callable[[], bool]) -> None:
    """Heartbeat until the subscriber gets one: SUB connections take a moment."""
    pump_until(received, lambda: (pub.heartbeat(), time.sleep(0.01)))


def test_a_secret_is_never_published(ctx) -> None:
    with Publisher(ctx, ANY_PORT, "scheduler") as pub:
        sub = raw_sub(ctx, pub.endpoint)
        got: list = []

        def take() -> None:
            while sub.poll(10):
                got.append(sub.recv_multipart())

        until_subscribed(pub, lambda: take() or bool(got))
        pub.publish("state.server", p.ServerState("a"))
        with pytest.raises(ProtocolError) as info:
            pub.publish("state.event", p.StateEvent(message="x", code=Secret(CANARY)))  # type: ignore[arg-type]
        assert info.value.code is ErrorCode.INVALID_BODY and CANARY not in str(info.value)
        after = pub.publish("state.server", p.ServerState("b"))
        assert after.seq == 2  # the refused event took no seq: subscribers see no gap
        pump_until(lambda: [f[0] for f in got].count(b"state.server") == 2, take)
        assert all(CANARY.encode() not in part for frames in got for part in frames)
        assert b"state.event" not in [f[0] for f in got]
        sub.close()


# -------------------------------------------------------------------- Subscriber


def test_subscriber_filters_topics_and_always_gets_heartbeats(ctx) -> None:
    with (
        Publisher(ctx, ANY_PORT, "container-agent", heartbeat_interval=0.5) as pub,
        Subscriber(ctx, pub.endpoint, topics=("container.",)) as sub,
    ):
        got: list = []

        def take():
            msg = sub.receive()
            if msg is not None:
                got.append(msg)

        until_subscribed(pub, lambda: take() or bool(got))
        assert got[0].type == "heartbeat" and got[0].epoch == pub.epoch
        assert sub.heartbeat_interval == 0.5  # learnt from the publisher
        got.clear()
        pub.publish("state.server", p.ServerState("a"))
        pub.publish("container.exited", p.ContainerEvent("a", exit_code=137))
        pub.publish("route.created", p.RouteEvent("a"))
        pub.publish("container.started", p.ContainerEvent("a"))
        pump_until(lambda: len([m for m in got if m.type != "heartbeat"]) >= 2, lambda: (sub.socket.poll(20), take()))
        events = [m for m in got if m.type != "heartbeat"]
        assert [(m.type, m.seq) for m in events] == [("container.exited", 2), ("container.started", 4)]
        assert events[0].body == p.ContainerEvent("a", exit_code=137)


def test_subscriber_skips_malformed_messages(ctx) -> None:
    raw_pub = ctx.socket(zmq.PUB)
    raw_pub.setsockopt(zmq.LINGER, 0)
    endpoint = bind_endpoint(raw_pub, ANY_PORT)
    good = p.published("container.oom", p.ContainerEvent("a"), src="x", seq=1, epoch="e")
    with Subscriber(ctx, endpoint, topics=("",)) as sub:
        got: list = []

        def step():
            raw_pub.send_multipart(p.encode_published(good))
            sub.socket.poll(20)
            msg = sub.receive()
            if msg is not None:
                got.append(msg)

        pump_until(lambda: bool(got), step)  # subscribed now
        got.clear()
        raw_pub.send_multipart([b"container.oom", b"\xc1 garbage"])
        raw_pub.send_multipart([b"container.oom"])
        raw_pub.send_multipart([b"container.started", p.encode_published(good)[1]])  # wrong topic
        raw_pub.send_multipart([b"ping", p.encode(p.request("ping"))])
        raw_pub.send_multipart(p.encode_published(good))
        pump_until(
            lambda: bool(got), lambda: (sub.socket.poll(20), got.extend(m for m in [sub.receive()] if m is not None))
        )
        assert got == [good]
    raw_pub.close()


def test_subscriber_silence_follows_its_clock(ctx) -> None:
    now = [100.0]
    with Subscriber(ctx, free_tcp_endpoint(), heartbeat_interval=1.0, silence_intervals=3, clock=lambda: now[0]) as sub:
        assert not sub.silent()
        now[0] += 2.9
        assert not sub.silent()
        now[0] += 0.2
        assert sub.silent()
