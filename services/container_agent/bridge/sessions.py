"""HTTP-side MCP sessions of one server: many of them share the server's one stdio session."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .channel import Channel

STREAMABLE_HTTP = "streamable-http"
LEGACY_SSE = "sse"

# Messages a standing stream may have queued before it is cut off as stalled.
STREAM_BACKLOG = 1000


@dataclass(eq=False)
class HttpSession:
    id: str
    transport: str
    protocol_version: str
    last_seen: float
    # The standing stream: a Streamable HTTP GET stream, or the legacy SSE stream.
    stream: Optional[Channel] = None
    # Requests sent to the server and not answered yet, by the id the bridge gave them.
    inflight: dict[int, Any] = field(default_factory=dict)
    closed: bool = False
    # The client address it was made for (limits count per address).
    address: str = ""
    # What the client's initialize declared, and the log level it set: a modern-only
    # server gets them with each of the session's requests.
    capabilities: dict = field(default_factory=dict)
    log_level: Optional[str] = None

    @property
    def busy(self) -> bool:
        return self.stream is not None or bool(self.inflight)


# What a session id remembers of the client's capabilities (the server may ask for these).
_CAPABILITY_FLAGS = (("s", "sampling", {}), ("e", "elicitation", {"form": {}}), ("r", "roots", {}))


class SessionIds:
    """Session ids a later run of the bridge recognises.

    An id is random, carries the flags of what the client declared it can be asked, and
    is signed (HMAC-SHA256) over the server's id with a key the process supervisor keeps
    across restarts of the container-agent (common/fdstore.kept_secret). So a session
    survives a restart of the process: the next run takes the id back instead of
    answering 404. It cannot be forged, nor moved to another server. An id this run made
    itself and no longer knows was ended here (DELETE, expiry): it stays 404.

    On a swarm (`owner` set: this node) an id also names the node that made it, and the
    key is the cluster's, the same on every node: any node can tell whose a session is
    (owner_of) and send its requests there (owner.py); only the owner takes it back."""

    def __init__(self, key: bytes, clock: Callable[[], float] = time.time, owner: str = "") -> None:
        self._key = key
        self._clock = clock
        self._started = int(clock())
        self.owner = owner

    def new(self, server_id: str, capabilities: Any) -> str:
        caps = capabilities if isinstance(capabilities, dict) else {}
        flags = "".join(flag for flag, name, _ in _CAPABILITY_FLAGS if isinstance(caps.get(name), dict))
        body = f"{secrets.token_hex(16)}.{flags}.{int(self._clock()):x}"
        if self.owner:
            body += f".{self.owner}"
        return f"{body}.{self._mac(server_id, body)}"

    def owner_of(self, server_id: str, session_id: str) -> Optional[str]:
        """The node that made a valid id ("" for an id of one host); None: not an id of ours."""
        parts = self._parts(server_id, session_id)
        return None if parts is None else (parts[3] if len(parts) == 4 else "")

    def check(self, server_id: str, session_id: str) -> Optional[dict]:
        """The capabilities a valid id of an earlier run remembers; None for any other id
        (another node's too: its requests go there)."""
        parts = self._parts(server_id, session_id)
        if parts is None or (parts[3] if len(parts) == 4 else "") != self.owner:
            return None
        _, flags, made = parts[:3]
        try:
            if int(made, 16) >= self._started:
                return None  # made by this run: it ended here
        except ValueError:
            return None
        return {name: dict(value) for flag, name, value in _CAPABILITY_FLAGS if flag in flags}

    def _parts(self, server_id: str, session_id: str) -> Optional[list[str]]:
        """The signed fields of a valid id: random, flags, made (, owner)."""
        if len(session_id) > 140 or session_id.count(".") not in (3, 4):
            return None
        body, mac = session_id.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac(server_id, body)):
            return None
        return body.split(".")

    def _mac(self, server_id: str, body: str) -> str:
        digest = hmac.new(self._key, f"{server_id}\0{body}".encode(), hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class SessionLimit(Exception):
    """No session can be made now; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class SessionTable:
    """Sessions by id, least recently used first, with idle expiry and two caps.

    One client address holds at most `max_per_address` sessions: past it that address's
    own least recently used idle session makes room, so a flood from one address churns
    only its own sessions. When the whole table is full, the room is made by the address
    holding the most. A session with a stream or a request in flight is never dropped.
    """

    def __init__(
        self,
        idle_timeout: float,
        max_sessions: int,
        clock: Callable[[], float] = time.monotonic,
        max_per_address: Optional[int] = None,
        ids: Optional[SessionIds] = None,
        server_id: str = "",
    ) -> None:
        self._ids = ids or SessionIds(secrets.token_bytes(32))
        self._server_id = server_id
        self._sessions: OrderedDict[str, HttpSession] = OrderedDict()
        self._by_address: dict[str, OrderedDict[str, HttpSession]] = {}
        self.streaming: set[HttpSession] = set()
        self._idle = idle_timeout
        self._max = max_sessions
        self._max_per_address = max_per_address or max_sessions
        self._clock = clock

    def __len__(self) -> int:
        return len(self._sessions)

    def all(self) -> list[HttpSession]:
        return list(self._sessions.values())

    def create(
        self,
        transport: str,
        protocol_version: str,
        address: str = "",
        capabilities: Any = None,
        session_id: Optional[str] = None,
    ) -> tuple[HttpSession, Optional[HttpSession]]:
        """A new session for a client at `address` (that declared `capabilities`), and
        the idle session dropped to make room for it (if any). SessionLimit when no room
        can be made. `session_id`: an earlier run's id taken back (see revive)."""
        evicted = None
        own = self._by_address.get(address)
        if own is not None and len(own) >= self._max_per_address:
            evicted = self._evict_from(own)
            if evicted is None:
                raise SessionLimit(429, "too many sessions from your address, all of them in use")
        elif len(self._sessions) >= self._max:
            evicted = self._evict_anywhere()
            if evicted is None:
                raise SessionLimit(503, "too many open sessions")
        session = HttpSession(
            session_id or self._ids.new(self._server_id, capabilities),
            transport,
            protocol_version,
            self._clock(),
            address=address,
        )
        if isinstance(capabilities, dict):
            session.capabilities = capabilities
        self._sessions[session.id] = session
        self._by_address.setdefault(address, OrderedDict())[session.id] = session
        return session, evicted

    def revive(
        self, transport: str, session_id: str, protocol_version: str, address: str = ""
    ) -> Optional[HttpSession]:
        """A session an earlier run of this process made (its id is signed with the key
        both share): made again with the capabilities its id remembers; None for any
        other id. SessionLimit when no room can be made."""
        capabilities = self._ids.check(self._server_id, session_id)
        if capabilities is None:
            return None
        session, _ = self.create(transport, protocol_version, address, capabilities, session_id=session_id)
        return session

    def holds(self, session_id: str) -> bool:
        return session_id in self._sessions

    def owner_of(self, session_id: str) -> Optional[str]:
        """The node a session id names (swarm), "" for one host's; None: not one of ours."""
        return self._ids.owner_of(self._server_id, session_id)

    def get(self, session_id: str) -> Optional[HttpSession]:
        session = self._sessions.get(session_id)
        if session is not None:
            self.touch(session)
        return session

    def touch(self, session: HttpSession) -> None:
        session.last_seen = self._clock()
        if session.id in self._sessions:
            self._sessions.move_to_end(session.id)
            self._by_address[session.address].move_to_end(session.id)

    def remove(self, session_id: str) -> Optional[HttpSession]:
        session = self._sessions.pop(session_id, None)
        if session is not None:
            own = self._by_address.get(session.address)
            if own is not None:
                own.pop(session_id, None)
                if not own:
                    del self._by_address[session.address]
            session.closed = True
            self.streaming.discard(session)
            if session.stream is not None:
                session.stream.close()
                session.stream = None
        return session

    def open_stream(self, session: HttpSession, channel: Channel) -> Optional[Channel]:
        """Make `channel` the session's standing stream; returns the one it replaces."""
        old = session.stream
        session.stream = channel
        self.streaming.add(session)
        return old

    def close_stream(self, session: HttpSession, channel: Channel) -> None:
        channel.close()
        if session.stream is channel:
            session.stream = None
            self.streaming.discard(session)
            self.touch(session)

    def expire(self) -> list[HttpSession]:
        """Remove and return the sessions idle for longer than the timeout."""
        cutoff = self._clock() - self._idle
        gone = []
        for session in list(self._sessions.values()):
            if session.last_seen > cutoff:
                break  # the rest were used more recently
            if not session.busy:
                gone.append(session)
        for session in gone:
            self.remove(session.id)
        return gone

    def _evict_from(self, sessions: "OrderedDict[str, HttpSession]") -> Optional[HttpSession]:
        # Least recently used first; busy sessions are skipped (at most the address's cap).
        victim = next((s for s in sessions.values() if not s.busy), None)
        return self.remove(victim.id) if victim is not None else None

    def _evict_anywhere(self) -> Optional[HttpSession]:
        for own in sorted(self._by_address.values(), key=len, reverse=True):
            evicted = self._evict_from(own)
            if evicted is not None:
                return evicted
        return None
