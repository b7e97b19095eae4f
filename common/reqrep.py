"""Request/reply over ZeroMQ: a Lazy Pirate client and a server that always answers.

ReqClient sends one request at a time and waits with a poll timeout. After a timeout it
closes the socket (LINGER=0) and opens a new one, because a socket whose peer vanished
may hold the request forever; it retries a bounded number of times with a short
back-off and then raises RequestTimeout. The longest a call can take is
`ReqClient.max_wait_seconds`: (retries + 1) * timeout plus the back-offs.

The client uses a DEALER socket that speaks the REQ envelope (an empty delimiter
frame, then one payload frame), so it works with REP and ROUTER servers alike and can
drop a stray reply (one whose `reply_to` is not its request) and keep waiting, which a
REQ socket cannot.

RepServer binds a ROUTER socket (REQ and DEALER clients both work) and answers every
request exactly once, whatever arrives: garbage, oversized or multi-frame payloads,
unknown types, failing handlers. It never raises out of `handle_ready`. A handler
whose answer needs a worker thread returns a `Deferred`: the routing envelope is kept,
the loop goes on serving other requests, and the reply goes out when the work ends
or, at the latest, when its deadline says what to answer instead ("pending").
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Union

import zmq

from common import protocol
from common.protocol import DEFAULT_MAX_BYTES, CodedError, ErrorCode, Kind, Message, ProtocolError
from common.service import close_socket, log_failure, new_socket, remove_socket_file, socket_file_id

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_MS = 2500
DEFAULT_RETRIES = 2
DEFAULT_BACKOFF_MS = 100
MAX_BACKOFF_MS = 1000
# Requests handled per `handle_ready` call, so that one busy socket cannot starve the
# other sockets and timers of a service loop.
MAX_BATCH = 100

Handler = Callable[[Message], Any]


@dataclass(frozen=True)
class Deferred:
    """A reply that comes later (returned by a handler instead of a body).

    The reply is `then(future.result())` (on the loop's thread) when the future ends
    within `seconds`, else `at_deadline()`: a "pending" body, or a CodedError raised
    (a timeout). Either may raise a CodedError to answer with an error."""

    future: "concurrent.futures.Future[Any]"
    seconds: float
    at_deadline: Callable[[], Any]
    then: Callable[[Any], Any] = lambda result: result


class RemoteError(CodedError):
    """The server answered with ok=False: `code` and `message` are its error."""

    def __init__(self, code: Union[str, ErrorCode], message: str, *, src: str = "") -> None:
        super().__init__(code, message)
        self.src = src


class RequestTimeout(CodedError):
    """No reply within the client's deadline (all attempts)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.TIMEOUT, message)


def _backoff_ms(attempt: int, base_ms: int) -> int:
    """Pause before retry number `attempt` (1-based): doubling, capped."""
    return min(base_ms * (2 ** (attempt - 1)), MAX_BACKOFF_MS)


class ReqClient:
    """A Lazy Pirate request client for one endpoint, used by one thread (the first
    that sends a request with it)."""

    def __init__(
        self,
        ctx: zmq.Context,
        endpoint: str,
        *,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        retries: int = DEFAULT_RETRIES,
        backoff_ms: int = DEFAULT_BACKOFF_MS,
        src: str = "",
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if timeout_ms <= 0 or retries < 0 or backoff_ms < 0:
            raise ValueError("timeout_ms must be positive, retries and backoff_ms not negative")
        self.ctx = ctx
        self.endpoint = endpoint
        self.timeout_ms = timeout_ms
        self.retries = retries
        self.backoff_ms = backoff_ms
        self.src = src
        self.max_bytes = max_bytes
        self._socket: Optional[zmq.Socket] = None
        self._thread: Optional[int] = None  # the thread of the first request owns it

    def max_wait_seconds(self, timeout_ms: Optional[int] = None, retries: Optional[int] = None) -> float:
        """The longest `request` can take before it raises RequestTimeout."""
        timeout_ms = self.timeout_ms if timeout_ms is None else timeout_ms
        retries = self.retries if retries is None else retries
        pauses = sum(_backoff_ms(a, self.backoff_ms) for a in range(1, retries + 1))
        return ((retries + 1) * timeout_ms + pauses) / 1000

    def call(self, type: str, body: Any = None, **kw: Any) -> Any:
        """`request(...)` returning only the reply body."""
        return self.request(type, body, **kw).body

    def request(
        self, type: str, body: Any = None, *, timeout_ms: Optional[int] = None, retries: Optional[int] = None
    ) -> Message:
        """Send a request and return its successful reply.

        Raises RemoteError (the server answered ok=False), ProtocolError (the request
        cannot be encoded, or the reply cannot be decoded or is of the wrong type) or
        RequestTimeout (no reply after all attempts). Retries resend the same message
        (same id), so handlers should be idempotent.
        """
        if self._thread is None:
            self._thread = threading.get_ident()
        elif threading.get_ident() != self._thread:
            raise RuntimeError("a ReqClient belongs to the thread that first used it")
        timeout_ms = self.timeout_ms if timeout_ms is None else timeout_ms
        retries = self.retries if retries is None else retries
        req = protocol.request(type, body, self.src)
        payload = protocol.encode(req, self.max_bytes)
        expected = protocol.MESSAGE_TYPES[type].reply
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(_backoff_ms(attempt, self.backoff_ms) / 1000)
            reply = self._attempt(req, payload, timeout_ms)
            if reply is not None:
                return self._result(reply, expected)
            log.debug("no reply to %s from %s (attempt %d of %d)", type, self.endpoint, attempt + 1, retries + 1)
        raise RequestTimeout(
            f"no reply to '{type}' from {self.endpoint} after {retries + 1} attempt(s) of {timeout_ms} ms"
        )

    def _attempt(self, req: Message, payload: bytes, timeout_ms: int) -> Optional[Message]:
        """One send and wait; None on timeout (the socket is then discarded)."""
        sock = self._ensure_socket()
        deadline = time.monotonic() + timeout_ms / 1000
        try:
            sock.send_multipart([b"", payload], flags=zmq.NOBLOCK)
        except zmq.Again:  # no peer can take it now: same as no answer
            self._reset()
            return None
        while (remaining_ms := int((deadline - time.monotonic()) * 1000)) > 0:
            if not sock.poll(remaining_ms, zmq.POLLIN):
                continue
            frames = sock.recv_multipart(flags=zmq.NOBLOCK)
            try:
                reply = self._parse(frames)
            except ProtocolError:
                self._reset()  # whatever else is queued on it is suspect too
                raise
            if reply.reply_to == req.id or (reply.reply_to == "" and reply.ok is False):
                # An error reply without reply_to: the server could not read our id.
                return reply
            log.debug("dropped a reply to another request from %s", self.endpoint)
        self._reset()
        return None

    def _parse(self, frames: list[bytes]) -> Message:
        if len(frames) != 2 or frames[0] != b"":
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE,
                f"reply from {self.endpoint} has {len(frames)} frame(s), expected a delimiter and one payload",
            )
        reply = protocol.decode(frames[1], self.max_bytes)
        if reply.kind is not Kind.REPLY:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"'{reply.type}' from {self.endpoint} is not a reply")
        return reply

    def _result(self, reply: Message, expected: Optional[str]) -> Message:
        if reply.ok is False:
            assert reply.error is not None
            raise RemoteError(reply.error.code, reply.error.message, src=reply.src)
        if reply.type != expected:
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE, f"expected a '{expected}' reply from {self.endpoint}, got '{reply.type}'"
            )
        return reply

    def _ensure_socket(self) -> zmq.Socket:
        if self._socket is None:
            self._socket, _ = new_socket(self.ctx, zmq.DEALER, connect=self.endpoint)
        return self._socket

    def _reset(self) -> None:
        close_socket(self._socket)
        self._socket = None

    def close(self) -> None:
        self._reset()

    def __enter__(self) -> "ReqClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class ThreadClients:
    """One ReqClient per thread for one endpoint (ZeroMQ sockets are not thread-safe),
    made on a thread's first request and closed together by `close` (once the threads
    that used them are done)."""

    def __init__(self, ctx: zmq.Context, endpoint: str, **options: Any) -> None:
        self._ctx = ctx
        self._endpoint = endpoint
        self._options = options  # ReqClient's keyword arguments
        self._local = threading.local()
        self._lock = threading.Lock()
        self._clients: list[ReqClient] = []

    def client(self) -> ReqClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = ReqClient(self._ctx, self._endpoint, **self._options)
            with self._lock:
                self._clients.append(client)
        return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()


class RepServer:
    """Answers requests with `handlers[type](message) -> reply body` on a ROUTER socket.

    A handler returns the body of the request's reply type (or None for a reply whose
    fields all have defaults). Raising a CodedError (ServiceError, or a RemoteError /
    RequestTimeout from a call it made) answers with that error's code and message;
    any other exception answers `internal` and is logged. A `ping` handler is built in.
    """

    def __init__(
        self,
        ctx: zmq.Context,
        endpoint: str,
        handlers: Mapping[str, Handler],
        *,
        src: str = "",
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.handlers: dict[str, Handler] = {"ping": lambda msg: None}
        for name, fn in handlers.items():
            protocol.message_type(name, Kind.REQUEST)  # a typo is a bug: fail at start-up
            self.handlers[name] = fn
        self.src = src
        self.max_bytes = max_bytes
        # MAXMSGSIZE far above the limit: a peer sending more is dropped instead of
        # answered, so that nobody can make us buffer arbitrary amounts of memory.
        self.socket, self.endpoint = new_socket(
            ctx, zmq.ROUTER, bind=endpoint, options={zmq.MAXMSGSIZE: max(4 * max_bytes, 64 * 1024)}
        )
        self._file_id = socket_file_id(self.endpoint)
        self.handled = 0
        self._service: Any = None  # the loop, once attached: deferred replies need it

    def attach(self, service: Any) -> None:
        self._service = service
        service.add_reader(self.socket, self.handle_ready)
        service.on_close(self.close)

    def handle_ready(self, limit: int = MAX_BATCH) -> int:
        """Answer the requests waiting on the socket (at most `limit`); never raises."""
        count = 0
        while count < limit and not self.socket.closed:
            try:
                frames = self.socket.recv_multipart(flags=zmq.NOBLOCK)
            except zmq.Again:
                break
            except zmq.ZMQError as exc:
                log.warning("%s: receive failed: %s", self.src or "rep", exc)
                break
            count += 1
            self._answer(frames)
        return count

    def _answer(self, frames: list[bytes]) -> None:
        # Everything up to the first empty frame is the routing envelope (identity, and
        # the delimiter of REQ/DEALER clients); it is sent back unchanged.
        try:
            delimiter = frames.index(b"", 1)
            envelope, payload = frames[: delimiter + 1], frames[delimiter + 1 :]
        except ValueError:
            envelope, payload = frames[:1], frames[1:]
        try:
            req = self._request(payload)
            reply = req if req.kind is Kind.REPLY else self._reply(req, lambda: self.handlers[req.type](req))
        except Exception as exc:  # the answer must go out, whatever broke
            log_failure(log, f"{self.src or 'rep'}: building a reply failed", exc)
            reply = protocol.reply_error(None, ErrorCode.INTERNAL, "internal error", self.src)
        if isinstance(reply, Deferred) and self._service is None:
            log.error("%s: %s answered later, but the server is not attached to a loop", self.src or "rep", req.type)
            reply = protocol.reply_error(req, ErrorCode.INTERNAL, "internal error", self.src)
        if isinstance(reply, Deferred):
            self._defer(envelope, req, reply)
        else:
            self._send(envelope, reply)

    def _send(self, envelope: list[bytes], reply: Message) -> None:
        try:
            data = protocol.encode(reply, self.max_bytes)
        except ProtocolError as exc:  # a reply too large, or holding a Secret
            log.error("%s: reply %s not sent: %s", self.src or "rep", reply.type, exc.message)
            data = protocol.encode(
                protocol.reply_error(reply.reply_to, exc.code, f"the reply could not be sent: {exc.message}", self.src)
            )
        except Exception as exc:
            log_failure(log, f"{self.src or 'rep'}: encoding a reply failed", exc)
            data = protocol.encode(protocol.reply_error(reply.reply_to, ErrorCode.INTERNAL, "internal error", self.src))
        if self.socket.closed:
            return
        try:
            self.socket.send_multipart(envelope + [data], flags=zmq.NOBLOCK)
            self.handled += 1
        except zmq.ZMQError as exc:  # the client went away or is not reading
            log.warning("%s: reply not delivered: %s", self.src or "rep", exc)

    def _defer(self, envelope: list[bytes], req: Message, deferred: Deferred) -> None:
        """Answer when the future ends or the deadline passes, whichever comes first."""
        answered = False

        def answer(produce: Callable[[], Any]) -> None:
            nonlocal answered
            if answered:
                return
            answered = True
            timer.cancel()
            self._send(envelope, self._reply(req, produce))

        def at_deadline() -> None:
            future = deferred.future
            if future.done():
                answer(lambda: deferred.then(future.result()))
            else:
                answer(deferred.at_deadline)

        timer = self._service.after(deferred.seconds, at_deadline)
        deferred.future.add_done_callback(
            lambda future: self._service.call_soon(lambda: answer(lambda: deferred.then(future.result())))
        )

    def _request(self, payload: list[bytes]) -> Message:
        """The request in `payload`, or the error reply that refuses it."""
        if len(payload) != 1:
            return self._refused(
                ProtocolError(ErrorCode.BAD_MESSAGE, f"expected one payload frame, got {len(payload)}")
            )
        try:
            req = protocol.decode(payload[0], self.max_bytes)
        except ProtocolError as exc:
            return self._refused(exc)
        if req.kind is not Kind.REQUEST:
            return self._refused(ProtocolError(ErrorCode.UNKNOWN_TYPE, f"'{req.type}' is not a request", msg_id=req.id))
        if req.type not in self.handlers:
            return self._refused(
                ProtocolError(ErrorCode.UNKNOWN_TYPE, f"'{req.type}' is not served here", msg_id=req.id)
            )
        return req

    def _reply(self, req: Message, produce: Callable[[], Any]) -> Union[Message, Deferred]:
        """The reply to `req` with the body `produce()` returns (or the error it raises)."""
        try:
            body = produce()
        except CodedError as exc:
            log.info("%s: %s from %s failed: %s", self.src or "rep", req.type, req.src or "?", exc)
            return protocol.reply_error(req, exc.code, exc.message, self.src)
        except Exception as exc:
            # The client learns only that it failed: the exception text may hold data.
            log_failure(log, f"{self.src or 'rep'}: handler for {req.type} failed", exc)
            return protocol.reply_error(
                req, ErrorCode.INTERNAL, f"internal error while handling '{req.type}'", self.src
            )
        if isinstance(body, Deferred):
            return body
        try:
            return protocol.reply_ok(req, body, self.src)
        except ProtocolError as exc:
            log.error("%s: handler for %s returned a wrong body: %s", self.src or "rep", req.type, exc.message)
            return protocol.reply_error(
                req, ErrorCode.INTERNAL, f"internal error while handling '{req.type}'", self.src
            )

    def _refused(self, exc: ProtocolError) -> Message:
        log.warning("%s: refused a message: %s", self.src or "rep", exc)
        return protocol.reply_error(exc.msg_id, exc.code, exc.message, self.src)

    def close(self) -> None:
        close_socket(self.socket)
        remove_socket_file(self.endpoint, self._file_id)

    def __enter__(self) -> "RepServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
