"""Logins, sessions, CSRF tokens and login rate limiting (pure logic, injectable clock).

Sessions live in memory and their cookie is signed with a key made at process start:
a dashboard restart therefore logs everybody out, and nothing secret is ever written
to disk. A key derived from the password would survive restarts, but every cookie
would then be an offline test of password guesses. The cookie holds only a random
session id, its expiry and an HMAC of both; the CSRF token is random per session and
kept server side.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Callable, Optional

SESSION_COOKIE = "mcpo_session"
LOGIN_COOKIE = "mcpo_login"  # double-submit token of the login form
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# Sessions kept at most; the oldest go first (a flood of logins cannot exhaust memory).
MAX_SESSIONS = 1000
# Client addresses remembered by the rate limiter at most.
MAX_TRACKED_ADDRESSES = 10000
# Flash messages kept per session (shown once, after a form post without JavaScript).
MAX_FLASH = 5


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def credentials_match(username: str, password: str, want_username: str, want_password: str) -> bool:
    """Constant-time check of both fields (hashes first, so lengths do not leak)."""
    user_ok = hmac.compare_digest(_digest(username), _digest(want_username))
    password_ok = hmac.compare_digest(_digest(password), _digest(want_password))
    return user_ok & password_ok


def tokens_equal(a: Optional[str], b: Optional[str]) -> bool:
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass
class Session:
    sid: str
    username: str
    csrf_token: str
    created: float
    expires: float
    flash: list[tuple[str, str]]  # (level, message)


class SessionStore:
    """Signed session cookies backed by an in-memory table (so logout really ends one)."""

    def __init__(
        self,
        lifetime_seconds: float,
        *,
        key: Optional[bytes] = None,
        clock: Callable[[], float] = time.time,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        self.lifetime = lifetime_seconds
        self._key = key or secrets.token_bytes(32)
        self._clock = clock
        self._max = max_sessions
        self._sessions: "OrderedDict[str, Session]" = OrderedDict()
        self._lock = threading.Lock()

    def _sign(self, payload: str) -> str:
        mac = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def create(self, username: str) -> tuple[str, Session]:
        """A new session; returns (cookie value, session)."""
        now = self._clock()
        session = Session(
            sid=new_token(),
            username=username,
            csrf_token=new_token(),
            created=now,
            expires=now + self.lifetime,
            flash=[],
        )
        with self._lock:
            self._prune(now)
            self._sessions[session.sid] = session
            while len(self._sessions) > self._max:
                self._sessions.popitem(last=False)
        payload = f"{session.sid}.{int(session.expires)}"
        return f"{payload}.{self._sign(payload)}", session

    def get(self, cookie: Optional[str]) -> Optional[Session]:
        """The live session of a cookie value, or None (unsigned, expired, ended)."""
        if not cookie or len(cookie) > 256:
            return None
        parts = cookie.split(".")
        if len(parts) != 3:
            return None
        sid, expires, signature = parts
        if not tokens_equal(signature, self._sign(f"{sid}.{expires}")):
            return None
        now = self._clock()
        if not expires.isdigit() or int(expires) <= now:
            return None
        with self._lock:
            session = self._sessions.get(sid)
            if session is None or session.expires <= now:
                self._sessions.pop(sid, None)
                return None
            return session

    def end(self, cookie: Optional[str]) -> None:
        session = self.get(cookie)
        if session is not None:
            with self._lock:
                self._sessions.pop(session.sid, None)

    def count(self) -> int:
        with self._lock:
            self._prune(self._clock())
            return len(self._sessions)

    def add_flash(self, session: Session, level: str, message: str) -> None:
        with self._lock:
            session.flash.append((level, message))
            del session.flash[:-MAX_FLASH]

    def take_flash(self, session: Session) -> list[tuple[str, str]]:
        with self._lock:
            out, session.flash[:] = list(session.flash), []
            return out

    def _prune(self, now: float) -> None:
        for sid in [sid for sid, s in self._sessions.items() if s.expires <= now]:
            del self._sessions[sid]


class LoginLimiter:
    """Counts failed logins in a sliding window, per client address and in total.

    `retry_after(address)` is consulted before the password is even looked at: while
    it is positive, the attempt is refused without checking the password.
    """

    def __init__(
        self,
        per_address: int,
        total: int,
        window_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = MAX_TRACKED_ADDRESSES,
    ) -> None:
        self.per_address = per_address
        self.total = total
        self.window = window_seconds
        self._clock = clock
        self._max_addresses = max_addresses
        self._by_address: "OrderedDict[str, deque[float]]" = OrderedDict()
        self._all: deque[float] = deque()
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> float:
        """Seconds until `address` may try again (0: it may try now)."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            waits = [0.0]
            mine = self._by_address.get(address)
            if mine is not None and len(mine) >= self.per_address:
                waits.append(mine[len(mine) - self.per_address] + self.window - now)
            if len(self._all) >= self.total:
                waits.append(self._all[len(self._all) - self.total] + self.window - now)
            return max(waits)

    def failed(self, address: str) -> None:
        now = self._clock()
        with self._lock:
            self._expire(now)
            mine = self._by_address.pop(address, None) or deque()
            mine.append(now)
            while len(mine) > self.per_address:
                mine.popleft()
            self._by_address[address] = mine  # most recent last
            while len(self._by_address) > self._max_addresses:
                self._by_address.popitem(last=False)
            self._all.append(now)
            while len(self._all) > self.total:
                self._all.popleft()

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._by_address.pop(address, None)

    def _expire(self, now: float) -> None:
        cutoff = now - self.window
        while self._all and self._all[0] <= cutoff:
            self._all.popleft()
        for address in [a for a, d in self._by_address.items() if d and d[-1] <= cutoff]:
            del self._by_address[address]
        for d in self._by_address.values():
            while d and d[0] <= cutoff:
                d.popleft()
