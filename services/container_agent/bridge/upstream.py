"""The one MCP session on a container's stdio, shared by every HTTP session of its server.

The bridge initializes the server once and keeps the result for every client's
`initialize`. Requests get bridge-wide ids on the way in (so that two clients may
both use id 1) and their own ids back on the way out; progress tokens are
re-addressed the same way. What the server sends unasked is routed where it
belongs: progress to the stream of its request, list-changed and other
notifications to every open standing stream, a server-to-client request to the
one client session that can be its origin, or else refused with a JSON-RPC error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import time
from typing import Any, Callable, Optional

from common.protocol import BridgeState as State
from common.secrets import redact, shown

from . import jsonrpc, traffic
from .channel import Channel
from .config import BridgeConfig
from .era import (
    LEGACY,
    META_CAPABILITIES,
    META_SUBSCRIPTION,
    MODERN,
    MODERN_VERSION,
    PROTOCOL_META,
    add_request_meta,
    handshake_view,
    probe_request,
    probe_verdict,
    strip_protocol_meta,
)
from .jsonrpc import Kind
from .mrtr import (
    INPUT_METHODS,
    INTERACTIVE,
    MISSING_CAPABILITY,
    StateSigner,
    input_required,
    is_ours,
    missing_capability,
    missing_capability_error,
    subject,
)
from .sessions import HttpSession, SessionTable
from .subscriptions import ACKNOWLEDGED, LIST_FILTERS, MAX_URIS, RESOURCE_FILTER, RESOURCE_UPDATED, Subscriptions
from .versions import OFFERED_VERSION, negotiate

log = logging.getLogger(__name__)

CLIENT_INFO = {"name": "mcp-orchestrator-bridge", "version": "0.1.0"}
# What the bridge lets a handshake-era server ask: it passes each question to the client
# whose call it serves, when that client declared the capability (else it is refused).
ASKABLE = {"sampling": {}, "elicitation": {"form": {}}}
_NO_TOKEN = object()


class IdAllocator:
    """Bridge-wide request ids.

    They start at a random point so that a restarted agent does not mistake a late
    answer meant for its predecessor for one of its own, and stay below 2**31 for
    servers that keep ids in 32-bit integers.
    """

    _LOW, _HIGH = 1 << 20, (1 << 31) - 1

    def __init__(self) -> None:
        self._next = random.randrange(self._LOW, 1 << 30)

    def take(self, in_use: dict) -> int:
        n = self._next
        while n in in_use:
            n += 1
            if n > self._HIGH:
                n = self._LOW
        self._next = n + 1 if n < self._HIGH else self._LOW
        return n


# List requests whose answer is the same for every client: they share one server
# session, so the bridge keeps the last answer until the server says the list
# changed (or the server is attached again). LiteLLM's pattern (initialize ->
# tools/list -> DELETE) then never waits for the server.
CACHEABLE_LISTS = ("tools/list", "prompts/list", "resources/list", "resources/templates/list")
LIST_CHANGED = {
    "notifications/tools/list_changed": ("tools/list",),
    "notifications/prompts/list_changed": ("prompts/list",),
    "notifications/resources/list_changed": ("resources/list", "resources/templates/list"),
}
# How long the probe waits before the handshake is tried as well: a handshake-era
# server may ignore a request that comes before initialize.
PROBE_SECONDS = 2.0
_PROBE_ID = "bridge-discover"
ANSWERED_FROM_CACHE = -1  # the "bridge id" of a request that never reached the server
# Log levels (RFC 5424) in rising order; a 2026-07-28 request gets messages at or above
# the level its _meta asks for, and none when it asks for none.
LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
SUBSCRIBE_METHODS = frozenset({"resources/subscribe", "resources/unsubscribe"})
EVERY_LOG = "*"  # a handshake-era request: its session set the level with logging/setLevel
# Handshake-era methods 2026-07-28 removed: for a modern-only server the bridge answers them.
ANSWERED_BY_THE_BRIDGE = frozenset({"ping", "logging/setLevel"})


def _at_or_above(level: Any, wanted: Optional[str]) -> bool:
    return level in LOG_LEVELS and wanted in LOG_LEVELS and LOG_LEVELS.index(level) >= LOG_LEVELS.index(wanted)


class PendingRequest:
    """A request sent to the server and not answered yet."""

    __slots__ = (
        "bridge_id",
        "session",
        "client_id",
        "client_id_json",
        "sink",
        "method",
        "progress_token",
        "sent_token",
        "log_level",
        "timer",
        "cacheable",
        "own",
        "caller",
        "round",
        "request",
    )

    def __init__(
        self,
        bridge_id: int,
        session: Optional[HttpSession],
        client_id: Any,
        sink: Channel,
        method: str,
        progress_token: Any = _NO_TOKEN,
        own: bool = False,
    ) -> None:
        self.bridge_id = bridge_id
        self.session = session
        self.client_id = client_id
        self.client_id_json = jsonrpc.dumps(client_id)
        self.sink = sink
        self.method = method
        self.progress_token = progress_token
        self.sent_token: Any = _NO_TOKEN  # the token the server got (the client's, unless taken)
        self.log_level: Optional[str] = EVERY_LOG  # which log messages its caller wants
        self.timer: Optional[asyncio.TimerHandle] = None
        self.cacheable = False  # a list request without params: its answer serves everyone
        self.own = own  # the bridge's own request (its handshake or probe), not a client's
        # A 2026-07-28 client's interactive request: (its capabilities, what it is, its
        # credentials), for asking it what the server asks (MRTR).
        self.caller: Optional[tuple[Any, str, str]] = None
        self.round: Optional[HeldRound] = None
        # A handshake-era client's interactive request to a modern server, as sent: its
        # retry after an InputRequiredResult is made from it.
        self.request: Optional[dict] = None

    @property
    def from_client(self) -> bool:
        return not self.own


class HeldRound:
    """A call held at the server while its 2026-07-28 client answers what the server
    asked (an InputRequiredResult went out; the retry brings the answers)."""

    __slots__ = ("id", "pending", "asks", "count", "waiting", "timer")

    def __init__(self, round_id: str, pending: PendingRequest) -> None:
        self.id = round_id
        self.pending = pending
        self.asks: dict[str, tuple[Any, str, Any]] = {}  # key -> (server's request id, method, params)
        self.count = 0
        self.waiting = False  # answered with an InputRequiredResult, the retry not come yet
        self.timer: Optional[asyncio.TimerHandle] = None


# One key per process: a state is good only with the process that issued it, which is
# also the only one holding the round it names.
_SIGNER = StateSigner()


class ServerRequest:
    """A request from the server forwarded to a client, awaiting that client's answer."""

    __slots__ = ("session", "timer", "collect")

    def __init__(
        self, session: HttpSession, timer: asyncio.TimerHandle, collect: Optional[Callable[[dict], None]] = None
    ) -> None:
        self.session = session
        self.timer = timer
        # A question of a modern server's InputRequiredResult, asked of a handshake-era
        # client: its answer is collected for the retry instead of written to stdin.
        self.collect = collect


StateCallback = Callable[["StdioUpstream", State, str], None]


class StdioUpstream:
    def __init__(
        self,
        server_id: str,
        config: BridgeConfig,
        ids: IdAllocator,
        sessions: SessionTable,
        on_state: Optional[StateCallback] = None,
        subscriptions: Optional[Subscriptions] = None,
    ) -> None:
        self.server_id = server_id
        self._subscriptions = subscriptions if subscriptions is not None else Subscriptions(sessions)
        self._listen_id: Optional[int] = None  # a modern server: the bridge's own listen request
        self._config = config
        self._timeout = config.request_timeout_seconds
        self._ids = ids
        self._sessions = sessions
        self._on_state = on_state
        self._loop = asyncio.get_running_loop()
        self._stdio: Any = None
        self._settled = asyncio.Event()
        self._deliberate_close = False
        self.state = State.STARTING
        self.reason = "attaching to the container"
        self.pending: dict[int, PendingRequest] = {}
        self._server_requests: dict[Any, ServerRequest] = {}
        self.init_result: Optional[dict] = None
        self.server_version = OFFERED_VERSION
        # The server is of the 2026-07-28 era (it answered server/discover): every
        # request it gets carries its _meta; `discovered` is what it answered.
        self.modern = False
        self.discovered: Optional[dict] = None
        self._init_answers: dict[str, bytes] = {}
        self._list_cache: dict[str, bytes] = {}  # method -> the result's JSON
        # The cached tools list, parsed: (its JSON, inputSchema by tool name).
        self._tools_parsed: tuple[Optional[bytes], dict] = (None, {})
        self._tools_unlisted = False  # the server's tools list could not be cached
        # Progress tokens the server was given, to the request they belong to.
        self._progress: dict[Any, PendingRequest] = {}
        self._rounds: dict[str, HeldRound] = {}  # MRTR rounds held for 2026-07-28 clients

    # --- life cycle ------------------------------------------------------------

    def attach(self, stdio: Any) -> None:
        """Use an open attach connection (see services.container_agent.stdio)."""
        self._stdio = stdio
        self._list_cache.clear()  # a new container may list other things
        self._tools_unlisted = False

    async def initialize(self, adopted: bool = False) -> None:
        """The bridge's own handshake with the server; sets READY, FAILED or DOWN.

        First the spec's probe: `server/discover`. A server that answers it is of the
        2026-07-28 era and is spoken to per request from then on; any other answer
        (or none within PROBE_SECONDS) means the handshake era, and `initialize`
        follows. A server that has not answered within the initialize timeout is
        FAILED (not ready: 503, requests refused at once) and stays so unless its
        answer comes after all, which makes it READY. `adopted`: the server was
        initialized by an earlier agent process. A newline goes first (it ends
        whatever half line that process may have left in stdin; servers skip blank
        lines), and a server that refuses a second initialize is served with assumed
        capabilities: it answered, so it is alive. Silence is never taken for such
        an answer.
        """
        if adopted:
            self._write(b"\n")
        # Both answers come here, told apart by the ids below.
        sink = Channel(expected=2)
        limit = self._config.initialize_timeout_seconds
        sent = time.monotonic()
        self._send_request(None, probe_request(_PROBE_ID, CLIENT_INFO), sink, timeout=None, own=True)
        if not self.pending:  # not written: the attach connection is gone
            self._set_state(State.DOWN, "cannot write to the container's stdin")
            return
        self.reason = "waiting for the answer to server/discover"
        handshake_sent = False
        while True:
            if not handshake_sent:
                wait: Optional[float] = sent + min(PROBE_SECONDS, limit) - time.monotonic()
            elif self.state is State.STARTING:
                wait = sent + limit - time.monotonic()
            else:
                wait = None  # FAILED: a late answer still counts
            if not await sink.wait(max(0.0, wait) if wait is not None else None):
                if not handshake_sent:
                    handshake_sent = self._send_initialize(sink, limit)
                    continue
                log.warning(
                    "server %s: did not answer initialize within %g s; not ready until it does", self.server_id, limit
                )
                self._set_state(State.FAILED, f"did not answer initialize within {limit:g} s")
                continue
            item = sink.pop()
            if self.state is State.DOWN or item is None:
                return
            try:
                answer = json.loads(item[0])
            except (ValueError, RecursionError):
                answer = {}
            if isinstance(answer, dict) and answer.get("id") == _PROBE_ID:
                verdict, detail = probe_verdict(answer)
                if verdict == MODERN:
                    self._adopt_modern(detail, time.monotonic() - sent)
                    return
                if verdict != LEGACY:
                    offered = ", ".join(str(v) for v in detail[:5]) or "none"
                    problem = f"the server speaks only protocol versions the bridge does not ({offered})"
                    log.warning("server %s: %s", self.server_id, problem)
                    self._set_state(State.FAILED, problem)
                    return
                if not handshake_sent:
                    handshake_sent = self._send_initialize(sink, limit)
                continue
            self._on_initialize_answer(answer, adopted, time.monotonic() - sent)
            return

    def _send_initialize(self, sink: Channel, limit: float) -> bool:
        request = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {"protocolVersion": OFFERED_VERSION, "capabilities": ASKABLE, "clientInfo": CLIENT_INFO},
        }
        self._send_request(None, request, sink, timeout=None, own=True)  # no timer: a late answer counts
        self.reason = f"waiting for the answer to initialize (at most {limit:g} s)"
        return True

    def _adopt_modern(self, discovered: dict, took: float) -> None:
        # An initialize sent while the probe was slow is refused by such a server: unheard.
        self.abandon([bid for bid, p in self.pending.items() if p.own])
        self.modern = True
        self.discovered = discovered
        self.server_version = MODERN_VERSION
        self.init_result = handshake_view(discovered, OFFERED_VERSION)
        log.info(
            "server %s: speaks %s (server %s)%s",
            self.server_id,
            MODERN_VERSION,
            _server_name(self.init_result),
            f" after {took:.1f} s" if self.state is State.FAILED else "",
        )
        self._set_state(State.READY, f"discovered ({MODERN_VERSION})")
        self._resubscribe()

    def _on_initialize_answer(self, answer: Any, adopted: bool, took: float) -> None:
        self.abandon([bid for bid, p in self.pending.items() if p.own])  # a late probe answer: unheard
        problem = "no answer"
        res = answer.get("result") if isinstance(answer, dict) else None
        if isinstance(res, dict) and isinstance(res.get("protocolVersion"), str):
            self.init_result = res
            self.server_version = res["protocolVersion"]
            self._write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
            log.info(
                "server %s: initialized (protocol %s, server %s)%s",
                self.server_id,
                self.server_version,
                _server_name(res),
                f" after {took:.1f} s" if self.state is State.FAILED else "",
            )
            self._set_state(State.READY, "initialized")
            self._resubscribe()
            return
        err = answer.get("error") if isinstance(answer, dict) else None
        if isinstance(err, dict) and adopted:
            log.warning(
                "server %s: refused a second initialize (%s); serving it with assumed capabilities",
                self.server_id,
                shown(str(err.get("message", "error")), 200),
            )
            self.init_result = _assumed_result(self.server_id)
            self._set_state(State.READY, "adopted without a new handshake")
            self._resubscribe()
            return
        if isinstance(err, dict):
            problem = redact(str(err.get("message", "error")))[:300]  # redact, then cut
        elif answer:
            problem = "an answer without a valid InitializeResult"
        self._set_state(State.FAILED, f"initialize failed: {problem}")
        log.warning("server %s: initialize failed: %s", self.server_id, problem)

    async def wait_settled(self, timeout: float) -> bool:
        """Wait until the server is READY (True), FAILED or DOWN, or the time is up (False)."""
        if self.state is State.STARTING:
            try:
                await asyncio.wait_for(self._settled.wait(), timeout)
            except asyncio.TimeoutError:
                return False
        return self.state is State.READY

    def close(self, reason: str) -> None:
        """Detach on purpose (unserve, re-serve): no "down" surprise for the caller."""
        self._deliberate_close = True
        if self._stdio is not None:
            self._stdio.close(reason)
        self.on_closed(reason)

    def on_closed(self, reason: str) -> None:
        """The attach connection ended: every waiting request fails now."""
        if self.state is State.DOWN and not self.pending and not self._server_requests:
            return
        message = f"MCP server '{self.server_id}' is unavailable: {reason}"
        for p in list(self.pending.values()):
            self._finish(p, jsonrpc.error(p.client_id_json, jsonrpc.TRANSPORT_ERROR, message), traffic.UNAVAILABLE)
        self.pending.clear()
        for entry in self._server_requests.values():
            entry.timer.cancel()
        self._server_requests.clear()
        if self.state is not State.DOWN:
            if not self._deliberate_close:
                log.warning("server %s: stdio closed: %s", self.server_id, reason)
            self._set_state(State.DOWN, reason)

    @property
    def deliberately_closed(self) -> bool:
        return self._deliberate_close

    def _set_state(self, state: State, reason: str) -> None:
        self.state = state
        self.reason = reason
        if state is not State.STARTING:
            self._settled.set()
        if self._on_state is not None:
            try:
                self._on_state(self, state, reason)
            except Exception:
                log.exception("server %s: state callback failed", self.server_id)

    # --- client to server ------------------------------------------------------

    def initialize_answer(self, session: HttpSession, client_id_json: bytes, params: Any) -> bytes:
        """The cached InitializeResult for a client's initialize, with the revision
        negotiated for it; the session keeps that revision and the client's capabilities
        (a modern-only server gets them with every request of the session)."""
        params = params if isinstance(params, dict) else {}
        client_version = params.get("protocolVersion")
        capabilities = params.get("capabilities")
        session.capabilities = capabilities if isinstance(capabilities, dict) else {}
        version = negotiate(
            client_version if isinstance(client_version, str) else None,
            OFFERED_VERSION if self.modern else self.server_version,
        )
        session.protocol_version = version
        body = self._init_answers.get(version)
        if body is None:
            result = dict(self.init_result or {})
            result["protocolVersion"] = version
            body = self._init_answers[version] = jsonrpc.dumps(result)
        return jsonrpc.result(client_id_json, body)

    def forward(self, session: HttpSession, msg: dict, kind: Any, sink: Channel) -> Optional[int]:
        """One message a client posted, by its kind (as jsonrpc.classify says): a request
        is submitted (its bridge id returned), a notification or a response to a server's
        request goes on, anything else is answered on `sink` as an invalid request."""
        if kind is Kind.REQUEST:
            return self.submit(session, msg, sink)
        if kind is Kind.NOTIFICATION:
            self.notify(session, msg)
        elif kind is Kind.RESPONSE:
            self.answer_from_client(session, msg)
        else:
            sink.put(jsonrpc.error(jsonrpc.id_of(msg), jsonrpc.INVALID_REQUEST, f"Invalid Request: {kind}"), final=True)
        return None

    def submit(
        self, session: Optional[HttpSession], msg: dict, sink: Channel, log_level: Optional[str] = EVERY_LOG
    ) -> int:
        """Send a client's request; its answer (and related messages) go to `sink`.
        `session` is None for a stateless (2026-07-28) request, whose `log_level` is the
        one its _meta asked for (None: no log messages)."""
        method = msg["method"]
        if method in CACHEABLE_LISTS and _plain(msg.get("params")):
            cached = self._list_cache.get(method)
            if cached is not None:
                sink.put(jsonrpc.result(jsonrpc.dumps(msg["id"]), cached), final=True)
                return ANSWERED_FROM_CACHE
        if session is None:
            if not self.modern:
                msg = strip_protocol_meta(msg)
        elif method in SUBSCRIBE_METHODS:
            return self._session_subscription(session, msg, sink, log_level)
        elif self.modern:
            # A handshake-era client of a modern-only server: what the handshake held
            # now travels with each request, and what 2026-07-28 removed is answered here.
            if method in ANSWERED_BY_THE_BRIDGE:
                sink.put(self._answer_here(session, msg), final=True)
                return ANSWERED_FROM_CACHE
        return self._send_request(session, msg, sink, self._timeout, log_level)

    def _session_subscription(self, session: HttpSession, msg: dict, sink: Channel, log_level: Optional[str]) -> int:
        """A handshake-era session's resources/subscribe or unsubscribe. The server hears
        of a URI only from its first holder and its last: a handshake-era server gets
        that request itself, a modern one a new listen request."""
        params = msg.get("params")
        uri = params.get("uri") if isinstance(params, dict) else None
        id_json = jsonrpc.dumps(msg["id"])
        problem = "uri must be a string" if not isinstance(uri, str) or not uri else None
        if problem is None and msg["method"] == "resources/subscribe" and self._subscriptions.full(session, uri):
            problem = f"at most {MAX_URIS} resource subscriptions per session"
        if problem is not None:
            sink.put(jsonrpc.error(id_json, jsonrpc.INVALID_PARAMS, f"Invalid params: {problem}"), final=True)
            return ANSWERED_FROM_CACHE
        if msg["method"] == "resources/subscribe":
            changed = self._subscriptions.subscribe(session, uri)
            added, removed = ([uri] if changed else []), []
        else:
            changed = self._subscriptions.unsubscribe(session, uri)
            added, removed = [], ([uri] if changed else [])
        if changed and not self.modern:
            return self._send_request(session, msg, sink, self._timeout, log_level)
        sink.put(jsonrpc.result(id_json, b"{}"), final=True)
        self.sync_subscriptions(added, removed)
        return ANSWERED_FROM_CACHE

    def sync_subscriptions(self, added: list[str], removed: list[str]) -> None:
        """Tell the server which resources the bridge's clients now hold."""
        if self.state is not State.READY or not (added or removed):
            return  # READY comes with a full resubscription
        if self.modern:
            self._listen()
            return
        for method, uris in (("resources/subscribe", added), ("resources/unsubscribe", removed)):
            for uri in uris:
                self._own_request(method, {"uri": uri})

    def _resubscribe(self) -> None:
        """A newly ready server holds no subscription: the bridge's clients' are made again."""
        if self.modern:
            self._listen()
        else:
            self.sync_subscriptions(self._subscriptions.uris(), [])

    def _listen(self) -> None:
        """A modern server's change notifications come on a listen request: the bridge
        holds one, for every list change and the resources its clients hold, and
        replaces it when that set changes."""
        notifications: dict[str, Any] = {key: True for key in LIST_FILTERS}
        notifications[RESOURCE_FILTER] = self._subscriptions.uris()
        previous = self._listen_id
        self._listen_id = self._own_request("subscriptions/listen", {"notifications": notifications}, held=True)
        if previous is not None and self.pending.pop(previous, None) is not None:
            self._send_cancel(previous, "replaced by a new subscription")

    def _own_request(self, method: str, params: dict, held: bool = False) -> int:
        """A request of the bridge's own; its answer is not waited for. `held`: a
        long-lived one (a listen request), never timed out."""
        msg = {"jsonrpc": "2.0", "id": f"bridge-{method}", "method": method, "params": params}
        return self._send_request(None, msg, Channel(expected=1), None if held else self._timeout, None, own=True)

    def _answer_here(self, session: HttpSession, msg: dict) -> bytes:
        id_json = jsonrpc.dumps(msg["id"])
        if msg["method"] == "logging/setLevel":
            params = msg.get("params")
            level = params.get("level") if isinstance(params, dict) else None
            if level not in LOG_LEVELS:
                return jsonrpc.error(id_json, jsonrpc.INVALID_PARAMS, f"Invalid params: unknown log level {level!r}")
            session.log_level = level
        return jsonrpc.result(id_json, b"{}")

    def submit_stateless(self, msg: dict, sink: Channel, log_level: Optional[str], principal: str) -> int:
        """A 2026-07-28 client's request (see submit). `principal`: its credentials, which
        a requestState the bridge issues is bound to."""
        params = msg["params"]
        if "requestState" in params and not self.modern:
            return self._resume(msg, sink, log_level, principal)
        capabilities = params["_meta"].get(META_CAPABILITIES)
        bid = self.submit(None, msg, sink, log_level)
        p = self.pending.get(bid)
        if p is not None and msg["method"] in INTERACTIVE:
            p.caller = (capabilities, subject(msg), principal)
        return bid

    def _resume(self, msg: dict, sink: Channel, log_level: Optional[str], principal: str) -> int:
        """The retry of a call answered with an InputRequiredResult: its answers go to the
        server's requests, and the held call answers this retry."""
        params = msg["params"]
        bound_to = subject(msg)
        state = params.get("requestState")
        round_id = _SIGNER.check(state, self.server_id, bound_to, principal) if is_ours(state) else None
        held = self._rounds.get(round_id) if round_id is not None else None
        if held is None or not held.waiting:
            message = "Invalid params: requestState is invalid or expired; send the request again without it"
            sink.put(jsonrpc.error(jsonrpc.dumps(msg["id"]), jsonrpc.INVALID_PARAMS, message), final=True)
            return ANSWERED_FROM_CACHE
        p = held.pending
        responses = params.get("inputResponses")
        responses = responses if isinstance(responses, dict) else {}
        for key, (rid, _, _) in list(held.asks.items()):
            answer = responses.get(key)
            if isinstance(answer, dict):
                self._write(jsonrpc.dumps({"jsonrpc": "2.0", "id": rid, "result": answer}) + b"\n")
                del held.asks[key]
        if held.timer is not None:
            held.timer.cancel()
        held.waiting = False
        p.sink = sink
        p.client_id = msg["id"]
        p.client_id_json = jsonrpc.dumps(msg["id"])
        p.log_level = log_level
        p.caller = (params["_meta"].get(META_CAPABILITIES), bound_to, principal)
        p.timer = self._loop.call_later(self._timeout, self._expire, p.bridge_id, self._timeout)
        if held.asks:  # not all answered, or asked meanwhile: another round
            self._return_input_required(p)
        return p.bridge_id

    def _ask_caller(self, p: PendingRequest, msg: dict) -> None:
        """The server asks something while it serves a 2026-07-28 client's call: the
        client is asked with an InputRequiredResult (or, when it declared no such
        capability, its call fails with -32021 and the server's call is cancelled)."""
        method, rid = msg["method"], msg["id"]
        capabilities, _, _ = p.caller  # type: ignore[misc]
        need = missing_capability(method, capabilities)
        if method not in INPUT_METHODS or need is not None:
            reason = f"the client did not declare {need}" if need else "a 2026-07-28 client cannot be asked that"
            self._write(jsonrpc.error(jsonrpc.dumps(rid), jsonrpc.METHOD_NOT_FOUND, f"{method}: {reason}") + b"\n")
            if need is not None and self.pending.pop(p.bridge_id, None) is not None:
                self._send_cancel(p.bridge_id, f"the client lacks the {need} capability")
                self._finish(
                    p,
                    jsonrpc.error_object(p.client_id_json, missing_capability_error(need)),
                    traffic.ERROR,
                    MISSING_CAPABILITY,
                )
            return
        held = p.round
        if held is None:
            held = p.round = HeldRound(secrets.token_hex(8), p)
            self._rounds[held.id] = held
        held.count += 1
        held.asks[f"{INPUT_METHODS[method]}-{held.count}"] = (rid, method, msg.get("params"))
        if not held.waiting:
            self._return_input_required(p)

    def _return_input_required(self, p: PendingRequest) -> None:
        held = p.round
        assert held is not None and p.caller is not None
        _, bound_to, principal = p.caller
        ttl = self._timeout
        state = _SIGNER.issue(held.id, self.server_id, bound_to, principal, ttl)
        result = input_required({k: (m, params) for k, (_, m, params) in held.asks.items()}, state)
        sink, p.sink = p.sink, Channel(expected=1)  # nobody reads it until the retry
        held.waiting = True
        if p.timer is not None:
            p.timer.cancel()
            p.timer = None
        held.timer = self._loop.call_later(ttl, self._expire_round, held.id)
        sink.put(jsonrpc.result(p.client_id_json, jsonrpc.dumps(result)), final=True)

    def _ask_session(self, p: PendingRequest, line: bytes) -> bool:
        """A modern server answered a handshake-era client's call with an
        InputRequiredResult: its questions go to the client as server-to-client requests
        on the call's own stream, and once all are answered the call is sent again with
        the answers and the server's requestState. False: not such a result."""
        try:
            result = json.loads(line).get("result")
        except (ValueError, RecursionError, AttributeError):
            return False
        if not isinstance(result, dict) or result.get("resultType") != "input_required":
            return False
        session, request = p.session, p.request
        assert session is not None and request is not None
        questions = result.get("inputRequests")
        questions = questions if isinstance(questions, dict) else {}
        for question in questions.values():
            method = question.get("method") if isinstance(question, dict) else None
            need = missing_capability(method, session.capabilities) if method in INPUT_METHODS else "input"
            if need is not None:
                self._finish(
                    p,
                    jsonrpc.error_object(p.client_id_json, missing_capability_error(need)),
                    traffic.ERROR,
                    MISSING_CAPABILITY,
                )
                return True
        answers: dict[str, Any] = {}

        def retry() -> None:
            again = dict(request, params=dict(request["params"], inputResponses=answers))
            if "requestState" in result:
                again["params"]["requestState"] = result["requestState"]
            again["id"] = p.client_id
            self._send_request(session, again, p.sink, self._timeout)

        if not questions:  # only a state to echo: retry at once
            self._forget_progress(p)
            retry()
            return True
        for key, question in questions.items():
            rid = f"bridge-input-{p.bridge_id}-{key}"

            def collect(msg: dict, key: str = key) -> None:
                answers[key] = msg.get("result") if isinstance(msg.get("result"), dict) else {}
                if len(answers) == len(questions):
                    retry()

            timer = self._loop.call_later(self._timeout, self._expire_server_request, rid, question["method"])
            self._server_requests[rid] = ServerRequest(session, timer, collect)
            ask = {"jsonrpc": "2.0", "id": rid, "method": question["method"]}
            if "params" in question:
                ask["params"] = question["params"]
            p.sink.put(jsonrpc.dumps(ask))
        self._forget_progress(p)
        if p.timer is not None:
            p.timer.cancel()
        if p.session is not None:
            p.session.inflight.pop(p.bridge_id, None)
        return True

    def _expire_round(self, round_id: str) -> None:
        """The client never came back: the server's questions fail, its call is cancelled."""
        held = self._rounds.pop(round_id, None)
        if held is None or not held.waiting:
            return
        for rid, method, _ in held.asks.values():
            message = f"{method}: the client did not answer in time"
            self._write(jsonrpc.error(jsonrpc.dumps(rid), jsonrpc.REQUEST_TIMEOUT, message) + b"\n")
        p = held.pending
        p.round = None
        if self.pending.pop(p.bridge_id, None) is not None:
            self._send_cancel(p.bridge_id, "the client did not come back with the input asked for")
            self._finish(p, b"", traffic.TIMEOUT)

    async def tool_schema(self, name: Any) -> Any:
        """The inputSchema of tool `name` from the server's (cached) tools list, asked
        for first when no list is cached; None when the server lists no such tool."""
        listing = self._list_cache.get("tools/list")
        if listing is None and not self._tools_unlisted:
            channel = Channel(expected=1)
            self.submit(None, {"jsonrpc": "2.0", "id": "bridge-tools", "method": "tools/list"}, channel)
            while not channel.closed:
                if channel.pop() is None:
                    await channel.wait(self._timeout)
            listing = self._list_cache.get("tools/list")
            # Not cacheable (paged, or refused): asked once until the list changes.
            self._tools_unlisted = listing is None
        if listing is not None and listing is not self._tools_parsed[0]:
            try:
                tools = json.loads(listing).get("tools")
            except (ValueError, RecursionError, AttributeError):
                tools = None
            by_name = {t.get("name"): t.get("inputSchema") for t in tools or [] if isinstance(t, dict)}
            self._tools_parsed = (listing, by_name)
        return self._tools_parsed[1].get(name) if listing is not None else None

    async def lists(self, timeout: float) -> dict[str, Optional[dict]]:
        """The first page of the server's tools, prompts and resources lists (method ->
        result; None for a list it does not have or did not give within `timeout`): from
        the cache, else asked for, which caches them for the clients too. `timeout`
        bounds the three together."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        capabilities = (self.init_result or {}).get("capabilities")
        capabilities = capabilities if isinstance(capabilities, dict) else {}
        found: dict[str, Optional[dict]] = {}
        for method, capability in (
            ("tools/list", "tools"),
            ("prompts/list", "prompts"),
            ("resources/list", "resources"),
        ):
            found[method] = None
            if capability not in capabilities or self.state is not State.READY:
                continue
            data = self._list_cache.get(method)
            if data is None:
                channel = Channel(expected=1)
                self.submit(None, {"jsonrpc": "2.0", "id": "bridge-catalog", "method": method}, channel)
                if await channel.wait(max(deadline - loop.time(), 0.0)):
                    item = channel.pop()
                    data = item[0] if item is not None else None
                if data is None:
                    continue
                try:
                    answer = json.loads(data)
                except (ValueError, RecursionError):
                    continue
                result = answer.get("result") if isinstance(answer, dict) else None
            else:
                try:
                    result = json.loads(data)
                except (ValueError, RecursionError):
                    continue
            found[method] = result if isinstance(result, dict) else None
        return found

    def notify(self, session: HttpSession, msg: dict) -> None:
        """A client's notification."""
        method = msg["method"]
        if method == "notifications/initialized":
            return  # the bridge sent its own when it initialized the server
        if method == "notifications/cancelled":
            self._cancel_from_client(session, msg)
            return
        if self.modern:
            return  # the rest (roots/list_changed) have no meaning without a session
        self._write(jsonrpc.dumps(msg) + b"\n")

    def answer_from_client(self, session: HttpSession, msg: dict) -> bool:
        """A client's response to a server-to-client request; False when it matches none."""
        rid = msg["id"]
        entry = self._server_requests.get(rid)
        if entry is None or entry.session is not session:
            log.debug("server %s: dropped a client response that matches no forwarded request", self.server_id)
            return False
        del self._server_requests[rid]
        entry.timer.cancel()
        if entry.collect is not None:
            entry.collect(msg)
        else:
            self._write(jsonrpc.dumps(msg) + b"\n")
        return True

    def drop_session(self, session: HttpSession, reason: str) -> None:
        """A session ended: its requests are cancelled at the server and fail for the
        client, and the resources it alone held are unsubscribed."""
        self.sync_subscriptions([], self._subscriptions.drop_session(session))
        for bid, p in list(session.inflight.items()):
            if self.pending.pop(bid, None) is not None:
                self._send_cancel(bid, reason)
            self._finish(p, jsonrpc.error(p.client_id_json, jsonrpc.TRANSPORT_ERROR, reason), traffic.CANCELLED)
        session.inflight.clear()
        for rid, entry in list(self._server_requests.items()):
            if entry.session is session:
                del self._server_requests[rid]
                entry.timer.cancel()
                if entry.collect is not None:
                    continue  # a question of the bridge's own making: the server never saw it
                self._write(
                    jsonrpc.error(jsonrpc.dumps(rid), jsonrpc.INTERNAL_ERROR, "the client session ended") + b"\n"
                )

    def cancel(self, bridge_id: int, reason: str) -> None:
        """The client of a request in flight went away (in 2026-07-28 closing the
        response stream is the cancellation): the server is told, the answer dropped."""
        p = self.pending.get(bridge_id)
        if p is None:
            return  # answered already (or from the cache)
        if p.round is not None and p.round.waiting:
            return  # the call waits at the server for the client's retry
        del self.pending[bridge_id]
        traffic.settle(p.sink, traffic.CANCELLED)
        self._forget_progress(p)
        if p.timer is not None:
            p.timer.cancel()
        if p.session is not None:
            p.session.inflight.pop(bridge_id, None)
        self._send_cancel(bridge_id, reason)

    def abandon(self, bridge_ids: list[int]) -> None:
        """The HTTP request waiting for these left: forget them (a late answer is dropped)."""
        for bid in bridge_ids:
            p = self.pending.pop(bid, None)
            if p is not None:
                traffic.settle(p.sink, traffic.CANCELLED)
                self._forget_progress(p)
                if p.timer is not None:
                    p.timer.cancel()
                if p.session is not None:
                    p.session.inflight.pop(bid, None)

    def queued_bytes(self) -> int:
        """What waits to be written to the server's stdin."""
        return self._stdio.queued_bytes() if self._stdio is not None else 0

    async def drain(self) -> None:
        if self._stdio is not None:
            await self._stdio.drain()

    def _send_request(
        self,
        session: Optional[HttpSession],
        msg: dict,
        sink: Channel,
        timeout: Optional[float],
        log_level: Optional[str] = EVERY_LOG,
        own: bool = False,
    ) -> int:
        bid = self._ids.take(self.pending)
        params = msg.get("params")
        p = PendingRequest(bid, session, msg["id"], sink, msg["method"], own=own)
        p.log_level = log_level
        p.cacheable = _plain(params)
        if self.modern:
            # What the handshake held travels with each request: a session's capabilities
            # and log level (a modern client's own _meta is kept; the bridge's own: none).
            if session is not None:
                add_request_meta(msg, session.capabilities, session.log_level)
            else:
                add_request_meta(msg, _NO_CAPABILITIES, None)
            params = msg["params"]
            if session is not None and p.method in INTERACTIVE:
                p.request = msg
        if type(params) is dict:
            meta = params.get("_meta")
            if type(meta) is dict and "progressToken" in meta:
                token = p.progress_token = meta["progressToken"]
                # The client's own token goes to the server unless another request
                # in flight already uses it: then one the bridge makes up.
                if type(token) in (str, int) and token not in self._progress:
                    p.sent_token = token
                else:
                    p.sent_token = meta["progressToken"] = f"bridge-{bid}"
                    while p.sent_token in self._progress:
                        p.sent_token = meta["progressToken"] = f"{p.sent_token}+"
                self._progress[p.sent_token] = p
        msg["id"] = bid
        self.pending[bid] = p
        if session is not None:
            session.inflight[bid] = p
        if timeout is not None:
            p.timer = self._loop.call_later(timeout, self._expire, bid, timeout)
        if not self._write(jsonrpc.dumps(msg) + b"\n"):
            del self.pending[bid]
            self._finish(
                p,
                jsonrpc.error(
                    p.client_id_json,
                    jsonrpc.TRANSPORT_ERROR,
                    f"MCP server '{self.server_id}' is unavailable: {self.reason}",
                ),
                traffic.UNAVAILABLE,
            )
        return bid

    def _expire(self, bid: int, timeout: float) -> None:
        p = self.pending.pop(bid, None)
        if p is None:
            return
        log.warning("server %s: %s got no answer within %g s", self.server_id, p.method, timeout)
        if p.method != "initialize":  # initialize must not be cancelled
            self._send_cancel(bid, "request timed out")
        self._finish(
            p,
            jsonrpc.error(
                p.client_id_json,
                jsonrpc.REQUEST_TIMEOUT,
                f"MCP server '{self.server_id}' did not answer {p.method} within {timeout:g} s",
            ),
            traffic.TIMEOUT,
        )

    def _cancel_from_client(self, session: HttpSession, msg: dict) -> None:
        params = msg.get("params")
        if not isinstance(params, dict) or not jsonrpc.valid_id(params.get("requestId")):
            return
        wanted = jsonrpc.dumps(params["requestId"])
        for bid, p in list(session.inflight.items()):
            if p.client_id_json == wanted:
                self.pending.pop(bid, None)
                forwarded = dict(params)
                forwarded["requestId"] = bid
                self._write(
                    jsonrpc.dumps({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": forwarded}) + b"\n"
                )
                self._finish(
                    p,
                    jsonrpc.error(p.client_id_json, jsonrpc.REQUEST_CANCELLED, "request cancelled by the client"),
                    traffic.CANCELLED,
                )
                return

    def _send_cancel(self, bid: int, reason: str) -> None:
        self._write(
            jsonrpc.dumps(
                {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": bid, "reason": reason}}
            )
            + b"\n"
        )

    def _remember_list(self, p: PendingRequest, line: bytes) -> None:
        """Keep a first-page list answer (no cursor asked, none returned) for everyone."""
        try:
            msg = json.loads(line)
        except (ValueError, RecursionError):
            return
        result = msg.get("result") if isinstance(msg, dict) else None
        if isinstance(result, dict) and not result.get("nextCursor"):
            self._list_cache[p.method] = jsonrpc.dumps(result)

    def _forget_progress(self, p: PendingRequest) -> None:
        if p.sent_token is not _NO_TOKEN and self._progress.get(p.sent_token) is p:
            del self._progress[p.sent_token]

    def _finish(self, p: PendingRequest, data: bytes, outcome: str = traffic.OK, code: Optional[int] = None) -> None:
        if p.sink.call is not None:
            traffic.settle(p.sink, outcome, code)
        self._forget_progress(p)
        if p.round is not None:
            if p.round.timer is not None:
                p.round.timer.cancel()
            self._rounds.pop(p.round.id, None)
            p.round = None
        if p.timer is not None:
            p.timer.cancel()
        if p.session is not None:
            p.session.inflight.pop(p.bridge_id, None)
        p.sink.put(data, final=True)

    def _write(self, data: bytes) -> bool:
        return self._stdio is not None and self._stdio.write(data)

    # --- server to client ------------------------------------------------------

    def on_stdout_line(self, line: bytes) -> None:
        fast = jsonrpc.fast_response_id(line)
        if fast is not None:
            bid, rest = fast
            p = self.pending.pop(bid, None)
            if p is None:
                log.debug("server %s: dropped a response to an unknown or expired request", self.server_id)
                return
            if p.method in CACHEABLE_LISTS and p.cacheable:
                self._remember_list(p, line)
            if p.request is not None and b'"input_required"' in line and self._ask_session(p, line):
                return
            outcome, code = traffic.fast_outcome(line, rest, p.method == "tools/call")
            self._finish(p, jsonrpc.readdress_fast(line, rest, p.client_id_json), outcome, code)
            return
        try:
            msg = json.loads(line)
        except (ValueError, RecursionError):
            log.warning("server %s: skipped a line of non-JSON output on stdout (%d bytes)", self.server_id, len(line))
            log.debug(
                "server %s: the skipped line starts with %r",
                self.server_id,
                shown(line.decode("utf-8", "replace"), 120),
            )
            return
        if isinstance(msg, list):  # a batch from the server: route each member
            for member in msg:
                self._route(member, None)
            return
        self._route(msg, line)

    def _route(self, msg: Any, line: Optional[bytes]) -> None:
        kind = jsonrpc.classify(msg)
        if kind is Kind.RESPONSE:
            self._on_response(msg, line)
        elif kind is Kind.NOTIFICATION:
            self._on_notification(msg, line)
        elif kind is Kind.REQUEST:
            self._on_server_request(msg, line)
        elif isinstance(msg, dict) and msg.get("id", 0) is None and isinstance(msg.get("error"), dict):
            log.warning(
                "server %s: reported an error about a message it could not read (code %s)",
                self.server_id,
                msg["error"].get("code"),
            )
        else:
            log.warning("server %s: skipped an invalid message on stdout: %s", self.server_id, kind)

    def _on_response(self, msg: dict, line: Optional[bytes]) -> None:
        bid = msg["id"]
        p = self.pending.pop(bid, None) if type(bid) is int else None
        if p is None:
            log.debug("server %s: dropped a response to an unknown or expired request", self.server_id)
            return
        if p.method in CACHEABLE_LISTS and p.cacheable:
            self._remember_list(p, line if line is not None else jsonrpc.dumps(msg))
        if p.request is not None and self._ask_session(p, line if line is not None else jsonrpc.dumps(msg)):
            return
        data = jsonrpc.swap_response_id(line, bid, p.client_id_json) if line is not None else None
        if data is None:
            msg["id"] = p.client_id
            data = jsonrpc.dumps(msg)
        self._finish(p, data, *traffic.outcome_of(msg, p.method == "tools/call"))

    def _on_notification(self, msg: dict, line: Optional[bytes]) -> None:
        method = msg["method"]
        params = msg.get("params")
        if method == "notifications/progress":
            token = params.get("progressToken") if isinstance(params, dict) else None
            p = self._progress.get(token) if type(token) in (str, int) else None
            if p is None:
                log.debug("server %s: dropped progress for an unknown request", self.server_id)
                return
            params["progressToken"] = p.progress_token
            if p.timer is not None:  # progress shows the request is alive: restart its clock
                p.timer.cancel()
                p.timer = self._loop.call_later(self._timeout, self._expire, p.bridge_id, self._timeout)
            p.sink.put(jsonrpc.dumps(msg))
            return
        if method == "notifications/cancelled":
            rid = params.get("requestId") if isinstance(params, dict) else None
            entry = self._server_requests.pop(rid, None) if jsonrpc.valid_id(rid) else None
            if entry is not None:
                entry.timer.cancel()
                stream = entry.session.stream
                if stream is not None:
                    stream.put(line if line is not None else jsonrpc.dumps(msg))
            return
        data = line if line is not None else jsonrpc.dumps(msg)
        if method == "notifications/message":
            self._on_log(params, data)
            return
        if self.modern and isinstance(params, dict):
            # Tagged with the bridge's own listen request: each listener gets its own tag.
            meta = params.get("_meta")
            if isinstance(meta, dict) and META_SUBSCRIPTION in meta:
                meta = {k: v for k, v in meta.items() if k != META_SUBSCRIPTION}
                params = {k: v for k, v in params.items() if k != "_meta"}
                if meta:
                    params["_meta"] = meta
        if method == ACKNOWLEDGED:
            return
        for stale_list in LIST_CHANGED.get(method, ()):
            self._list_cache.pop(stale_list, None)
            if stale_list == "tools/list":
                self._tools_unlisted = False
        if method in LIST_CHANGED or method == RESOURCE_UPDATED:
            self._subscriptions.deliver(method, params)
            return
        for session in list(self._sessions.streaming):
            if session.stream is not None:
                session.stream.put(data)

    def _on_log(self, params: Any, data: bytes) -> None:
        """A log message goes to the caller whose request produced it, on that request's
        own stream. While no client request is in flight it is the shared session's
        (every open stream gets it); while several are, it cannot be told whose it is
        and goes to nobody: one client's messages never reach another."""
        callers = [p for p in self.pending.values() if p.from_client]
        if len(callers) > 1:
            log.debug("server %s: a log message while several requests are in flight: not delivered", self.server_id)
            return
        if not callers:
            for session in list(self._sessions.streaming):
                if session.stream is not None:
                    session.stream.put(data)
            return
        p = callers[0]
        level = params.get("level") if isinstance(params, dict) else None
        if p.log_level == EVERY_LOG or _at_or_above(level, p.log_level):
            p.sink.put(data)

    def _on_server_request(self, msg: dict, line: Optional[bytes]) -> None:
        method = msg["method"]
        rid = msg["id"]
        rid_json = jsonrpc.dumps(rid)
        if method == "ping":
            self._write(jsonrpc.result(rid_json, b"{}") + b"\n")
            return
        callers = [p for p in self.pending.values() if p.from_client]
        if len(callers) == 1 and callers[0].caller is not None and rid not in self._server_requests:
            self._ask_caller(callers[0], msg)
            return
        target = self._pick_target()
        if target is None or rid in self._server_requests:
            log.info(
                "server %s: refused a %s request from the server: no single client session to ask",
                self.server_id,
                method,
            )
            self._write(
                jsonrpc.error(
                    rid_json,
                    jsonrpc.METHOD_NOT_FOUND,
                    f"the bridge cannot route {method} to a client: it is shared by several client sessions",
                )
                + b"\n"
            )
            return
        session, sink = target
        need = missing_capability(method, session.capabilities)
        if need is not None:
            message = f"{method}: the client did not declare {need}"
            self._write(jsonrpc.error(rid_json, jsonrpc.METHOD_NOT_FOUND, message) + b"\n")
            return
        timer = self._loop.call_later(self._timeout, self._expire_server_request, rid, method)
        self._server_requests[rid] = ServerRequest(session, timer)
        sink.put(line if line is not None else jsonrpc.dumps(msg))

    def _pick_target(self) -> Optional[tuple[HttpSession, Channel]]:
        """The only client session that can have caused a server-to-client request."""
        latest: dict[HttpSession, PendingRequest] = {}
        for p in self.pending.values():
            if p.session is not None:
                latest[p.session] = p
            elif p.from_client:
                return None  # a stateless (2026-07-28) client's request may have caused it

        if len(latest) == 1:
            session, p = next(iter(latest.items()))
            if not p.sink.closed:
                return session, p.sink
            if session.stream is not None:
                return session, session.stream
            return None
        if not latest and len(self._sessions.streaming) == 1:
            session = next(iter(self._sessions.streaming))
            if session.stream is not None:
                return session, session.stream
        return None

    def _expire_server_request(self, rid: Any, method: str) -> None:
        entry = self._server_requests.pop(rid, None)
        if entry is None or entry.collect is not None:
            return
        self._write(
            jsonrpc.error(jsonrpc.dumps(rid), jsonrpc.REQUEST_TIMEOUT, f"no client answered {method} in time") + b"\n"
        )


_NO_CAPABILITIES: dict = {}


def _plain(params: Any) -> bool:
    """Request params that leave the answer the same for every client: none but the
    protocol's own _meta (a list asked without a cursor)."""
    if not params:
        return True
    if type(params) is not dict or len(params) != 1 or "_meta" not in params:
        return False
    meta = params["_meta"]
    return type(meta) is dict and all(k.startswith(PROTOCOL_META) for k in meta)


def _assumed_result(server_id: str) -> dict:
    """An InitializeResult for a server that will not say its own again."""
    return {
        "protocolVersion": OFFERED_VERSION,
        "capabilities": {"tools": {}, "resources": {}, "prompts": {}},
        "serverInfo": {"name": server_id, "version": "unknown"},
    }


def _server_name(result: dict) -> str:
    info = result.get("serverInfo")
    if isinstance(info, dict):
        return f"{info.get('name', '?')} {info.get('version', '')}".strip()
    return "?"
