"""Publish/subscribe over ZeroMQ with sequence numbers, epochs and heartbeats.

A Publisher sends events as two frames [topic, payload]; the topic is the event's
message type (e.g. `container.exited`), so subscribers filter by dotted prefix
(`container.`). Every event carries the publisher's `epoch` (random, new at each
process start) and a `seq` that grows by one per event across all topics. Heartbeats
(topic `heartbeat`) carry the current seq without consuming one, so a subscriber also
notices a lost last event while the stream is quiet.

A StateMirror keeps a copy of a publisher's state (the Clone pattern): it subscribes
first, then fetches a snapshot `{epoch, seq, state}` over REQ (`snapshot.get`) and then
applies only events newer than the snapshot; events that arrived during the fetch wait
in the SUB socket's queue and are sorted out by seq. A gap in seq, a new epoch or a
failed apply means the copy is stale: it fetches a snapshot again. No message from the
publisher for `silence_intervals` heartbeat intervals marks it silent, so callers can
show it as unavailable.

Gap detection needs the whole stream, so a StateMirror subscribes to every topic and
filters by its `topics` prefixes itself: events outside them advance seq but are not
applied. A plain Subscriber (events only, no state) filters on the socket instead and
cannot see gaps.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from typing import Any, Callable, Iterable, Optional

import zmq

from common import protocol
from common.protocol import DEFAULT_MAX_BYTES, Heartbeat, Message, ProtocolError, Snapshot
from common.reqrep import ReqClient
from common.service import close_socket, new_socket, remove_socket_file, socket_file_id

log = logging.getLogger(__name__)

HEARTBEAT_TOPIC = "heartbeat"
HEARTBEAT_INTERVAL = 1.0
SILENCE_INTERVALS = 3
# Pause between failed snapshot fetches: doubling from the first value to the second.
RESYNC_BACKOFF = (0.2, 5.0)
# Messages handled per `on_readable` call, so that a flood cannot starve a service loop.
MAX_BATCH = 1000

ApplyFn = Callable[[dict, Message], None]


def new_epoch() -> str:
    return os.urandom(8).hex()


class Publisher:
    """A PUB socket that stamps seq and epoch on every event it sends."""

    def __init__(
        self,
        ctx: zmq.Context,
        endpoint: str,
        src: str,
        *,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.src = src
        self.epoch = new_epoch()
        self.heartbeat_interval = heartbeat_interval
        self.max_bytes = max_bytes
        self._seq = 0
        self.socket, self.endpoint = new_socket(ctx, zmq.PUB, bind=endpoint)
        self._file_id = socket_file_id(self.endpoint)

    @property
    def current_seq(self) -> int:
        """The seq of the last event sent (0 before the first)."""
        return self._seq

    def attach(self, service: Any) -> None:
        service.every(self.heartbeat_interval, self.heartbeat, immediately=True)
        service.on_close(self.close)

    def publish(self, topic: str, body: Any) -> Message:
        """Send event `topic` (a registered event type) with `body`; returns it.

        Raises ProtocolError if it cannot be encoded (e.g. it holds a Secret); then
        nothing is sent and seq does not move. Never blocks: when a subscriber is too
        slow, ZeroMQ drops for it, and its mirror sees the gap.
        """
        msg = protocol.published(topic, body, src=self.src, seq=self._seq + 1, epoch=self.epoch)
        frames = protocol.encode_published(msg, self.max_bytes)
        self._seq += 1
        self._send(frames)
        return msg

    def heartbeat(self) -> None:
        msg = protocol.published(
            HEARTBEAT_TOPIC, Heartbeat(self.heartbeat_interval), src=self.src, seq=self._seq, epoch=self.epoch
        )
        self._send(protocol.encode_published(msg, self.max_bytes))

    def snapshot(self, state: dict) -> Snapshot:
        """The reply body for `snapshot.get`: `state` as of the last event sent.

        Call it from the thread that publishes, with the state all sent events built.
        """
        return Snapshot(epoch=self.epoch, seq=self._seq, state=state)

    def _send(self, frames: list[bytes]) -> None:
        try:
            self.socket.send_multipart(frames, flags=zmq.NOBLOCK)
        except zmq.Again:  # PUB drops rather than blocks; this is only a safety net
            log.warning("%s: event dropped (send buffer full)", self.src)

    def close(self) -> None:
        close_socket(self.socket)
        remove_socket_file(self.endpoint, self._file_id)

    def __enter__(self) -> "Publisher":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Subscriber:
    """A SUB socket for one publisher: decodes events and tracks whether it is alive.

    `topics` are prefixes; heartbeats are always received. Malformed messages are
    logged and skipped.
    """

    def __init__(
        self,
        ctx: zmq.Context,
        endpoint: str,
        *,
        topics: Iterable[str] = ("",),
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        silence_intervals: int = SILENCE_INTERVALS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint
        self.topics = tuple(topics)
        self.heartbeat_interval = heartbeat_interval
        self.silence_intervals = silence_intervals
        self.max_bytes = max_bytes
        self._clock = clock
        self.last_heard = clock()  # grace period from the start before calling it silent
        prefixes = set(self.topics)
        if not any(HEARTBEAT_TOPIC.startswith(p) for p in prefixes):
            prefixes.add(HEARTBEAT_TOPIC)
        # A cap far above the limit: a peer sending more is dropped, not buffered.
        options = {zmq.MAXMSGSIZE: max(4 * max_bytes, 64 * 1024)}
        self.socket, _ = new_socket(ctx, zmq.SUB, connect=endpoint, options=options)
        for prefix in sorted(prefixes):
            self.socket.setsockopt(zmq.SUBSCRIBE, prefix.encode())

    def receive(self) -> Optional[Message]:
        """The next message (events and heartbeats) without waiting; None if none is ready."""
        while True:
            try:
                frames = self.socket.recv_multipart(flags=zmq.NOBLOCK)
            except zmq.Again:
                return None
            try:
                msg = protocol.decode_published(frames, self.max_bytes)
            except ProtocolError as exc:
                log.warning("skipped a message from %s: %s", self.endpoint, exc)
                continue
            self.last_heard = self._clock()
            if msg.type == HEARTBEAT_TOPIC:
                # The publisher says how often it beats; keep it within sane bounds.
                self.heartbeat_interval = min(max(msg.body.interval, 0.01), 3600.0)
            return msg

    def silent(self) -> bool:
        """True when nothing came from the publisher for `silence_intervals` heartbeats."""
        return self._clock() - self.last_heard > self.silence_intervals * self.heartbeat_interval

    def close(self) -> None:
        close_socket(self.socket)

    def __enter__(self) -> "Subscriber":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class StateMirror:
    """A live copy of a publisher's state: snapshot over REQ, then its events.

    `apply(state, message)` updates `state` (a dict) for one event. `state` is replaced
    by each snapshot. Read it from other threads with `copy_state()`.
    """

    def __init__(
        self,
        ctx: zmq.Context,
        pub_endpoint: str,
        req_endpoint: str,
        apply: ApplyFn,
        *,
        topics: Iterable[str] = ("",),
        src: str = "",
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        silence_intervals: int = SILENCE_INTERVALS,
        snapshot_timeout_ms: int = 1000,
        snapshot_retries: int = 0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        on_change: Optional[Callable[[Optional[Message]], None]] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.apply = apply
        self.topics = tuple(topics)
        self.on_change = on_change
        self._clock = clock
        self._sub = Subscriber(
            ctx,
            pub_endpoint,
            topics=("",),
            heartbeat_interval=heartbeat_interval,
            silence_intervals=silence_intervals,
            max_bytes=max_bytes,
            clock=clock,
        )
        self._req = ReqClient(
            ctx, req_endpoint, timeout_ms=snapshot_timeout_ms, retries=snapshot_retries, src=src, max_bytes=max_bytes
        )
        self.lock = threading.RLock()
        self.state: dict = {}
        self.epoch: Optional[str] = None
        self.seq = 0
        self.synced = False
        self.snapshots = 0  # snapshots taken so far
        self.last_error: Optional[str] = None
        self._failures = 0
        self._next_attempt = 0.0

    @property
    def socket(self) -> zmq.Socket:
        return self._sub.socket

    def attach(self, service: Any) -> None:
        service.add_reader(self.socket, self.on_readable)
        service.on_close(self.close)

    @property
    def available(self) -> bool:
        """Synced and hearing from the publisher."""
        return self.synced and not self._sub.silent()

    def silent(self) -> bool:
        return self._sub.silent()

    def copy_state(self) -> dict:
        with self.lock:
            return copy.deepcopy(self.state)

    def poll(self, timeout_ms: int) -> int:
        """Wait up to `timeout_ms` for events and handle them (for a loop of its own)."""
        if self.socket.poll(timeout_ms, zmq.POLLIN):
            return self.on_readable()
        return 0

    def on_readable(self) -> int:
        """Handle the messages waiting on the SUB socket; returns how many."""
        count = 0
        while count < MAX_BATCH:
            msg = self._sub.receive()
            if msg is None:
                break
            count += 1
            self._handle(msg)
        return count

    def sync(self) -> bool:
        """Fetch a snapshot now (bounded by the REQ deadline); True on success."""
        try:
            body = self._req.call("snapshot.get")
        except protocol.CodedError as exc:
            self._failures += 1
            pause = min(RESYNC_BACKOFF[0] * 2 ** (self._failures - 1), RESYNC_BACKOFF[1])
            self._next_attempt = self._clock() + pause
            self.last_error = str(exc)
            log.warning("snapshot from %s failed (%s); next try in %.1fs", self._req.endpoint, exc, pause)
            return False
        with self.lock:
            self.state = dict(body.state)
            self.epoch, self.seq = body.epoch, body.seq
            self.synced = True
        self.snapshots += 1
        self._failures = 0
        self.last_error = None
        log.info("synced with %s: epoch %s seq %d", self._req.endpoint, body.epoch, body.seq)
        self._changed(None)
        return True

    def _handle(self, msg: Message) -> None:
        # At most one fresh snapshot per message: if the stream still does not fit it,
        # wait for the next message rather than loop.
        for _ in range(2):
            if not self.synced:
                if self._clock() < self._next_attempt or not self.sync():
                    return
            verdict = self._place(msg)
            if verdict == "old":
                return
            if verdict == "next":
                self._apply(msg)
                return
            log.info("stream from %s moved on (%s); fetching a snapshot", self._sub.endpoint, verdict)
            self.synced = False
            self._next_attempt = 0.0

    def _place(self, msg: Message) -> str:
        """Where `msg` stands against our copy: old, next, or why we need a snapshot."""
        if msg.epoch != self.epoch:
            return "new epoch"
        if msg.type == HEARTBEAT_TOPIC:
            return "old" if msg.seq == self.seq else "missed events"
        if msg.seq <= self.seq:
            return "old"
        if msg.seq == self.seq + 1:
            return "next"
        return "gap in seq"

    def _apply(self, msg: Message) -> None:
        wanted = any(msg.type.startswith(p) for p in self.topics)
        try:
            with self.lock:
                if wanted:
                    self.apply(self.state, msg)
                self.seq = msg.seq
        except Exception as exc:
            # The copy may be half updated: start over from a snapshot.
            log.error(
                "applying %s from %s failed (%s); fetching a snapshot", msg.type, self._sub.endpoint, type(exc).__name__
            )
            self.synced = False
            self._next_attempt = 0.0
            return
        if wanted:
            self._changed(msg)

    def _changed(self, msg: Optional[Message]) -> None:
        if self.on_change is not None:
            try:
                self.on_change(msg)
            except Exception as exc:
                log.error("on_change callback failed: %s", type(exc).__name__)

    def close(self) -> None:
        self._sub.close()
        self._req.close()

    def __enter__(self) -> "StateMirror":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
