"""HTTP-side MCP sessions of one server: many of them share the server's one stdio session."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .channel import Channel

STREAMABLE_HTTP = "streamable-http"
LEGACY_SSE = "sse"

# How far from the least recently used end to look for a session to evict.
_EVICTION_SCAN = 64
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

    @property
    def busy(self) -> bool:
        return self.stream is not None or bool(self.inflight)


class SessionTable:
    """Sessions by id, least recently used first, with idle expiry and a size cap."""

    def __init__(self, idle_timeout: float, max_sessions: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._sessions: OrderedDict[str, HttpSession] = OrderedDict()
        self.streaming: set[HttpSession] = set()
        self._idle = idle_timeout
        self._max = max_sessions
        self._clock = clock

    def __len__(self) -> int:
        return len(self._sessions)

    def all(self) -> list[HttpSession]:
        return list(self._sessions.values())

    def create(self, transport: str, protocol_version: str) -> tuple[Optional[HttpSession], Optional[HttpSession]]:
        """A new session, and the idle session evicted to make room for it (if any).

        (None, None) when the table is full of busy sessions.
        """
        evicted = None
        if len(self._sessions) >= self._max:
            evicted = self._evict_one()
            if evicted is None:
                return None, None
        session = HttpSession(secrets.token_hex(16), transport, protocol_version, self._clock())
        self._sessions[session.id] = session
        return session, evicted

    def get(self, session_id: str) -> Optional[HttpSession]:
        session = self._sessions.get(session_id)
        if session is not None:
            self.touch(session)
        return session

    def touch(self, session: HttpSession) -> None:
        session.last_seen = self._clock()
        if session.id in self._sessions:
            self._sessions.move_to_end(session.id)

    def remove(self, session_id: str) -> Optional[HttpSession]:
        session = self._sessions.pop(session_id, None)
        if session is not None:
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

    def _evict_one(self) -> Optional[HttpSession]:
        for n, session in enumerate(self._sessions.values()):
            if n >= _EVICTION_SCAN:
                break
            if not session.busy:
                return self.remove(session.id)
        return None
