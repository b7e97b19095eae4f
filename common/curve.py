"""CurveZMQ for the ZeroMQ links between hosts (`[cluster] engine = swarm`).

On one host the processes talk over ipc:// sockets, which the file system protects.
Between hosts they talk over tcp://, which anyone on the network can reach: every such
socket is encrypted and authenticated with the cluster key pair (pyzmq's `zmq.auth`),
created once by `mcp-orchestrator keys` and copied to every host's keys directory. A
bound socket is a CURVE server that admits only clients holding the cluster key; a
connecting socket proves it holds it. A peer without the key gets no connection at
all (the handshake fails before any message is read).

`secure(ctx, keys)` arms a context; `socket_options` gives the options every socket of
that context needs for a tcp:// endpoint (common.service.new_socket asks it). A plain
tcp:// endpoint to another host is refused unless `[zmq] between_hosts = plain`;
loopback tcp:// (tests, one host) stays as it is.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from common.settings import is_loopback_endpoint

KEY_NAME = "cluster"
PLAIN = "plain"
CURVE = "curve"


class CurveError(Exception):
    """The keys are missing or unreadable, or a plain tcp:// link to another host was asked."""


@dataclass(frozen=True)
class CurveKeys:
    public: bytes
    secret: bytes = b""

    def __repr__(self) -> str:  # the secret half never reaches a log line
        return f"CurveKeys(public={self.public.decode()!r})"


def key_files(directory: os.PathLike | str) -> tuple[Path, Path]:
    """(public, secret) key files of the cluster in `directory`."""
    base = Path(directory) / KEY_NAME
    return base.with_suffix(".key"), base.with_suffix(".key_secret")


def create_keys(directory: os.PathLike | str) -> tuple[Path, bool]:
    """The cluster key pair in `directory` (owner-only), made unless it exists: (secret
    key file, whether it was made now). An existing pair is never replaced: the other
    hosts hold a copy of it."""
    public, secret = key_files(directory)
    if secret.exists():
        return secret, False
    Path(directory).mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    old = os.umask(0o077)
    try:
        made_public, made_secret = zmq.auth.create_certificates(str(directory), KEY_NAME)
    finally:
        os.umask(old)
    os.chmod(made_secret, 0o600)
    os.chmod(made_public, 0o600)
    return Path(made_secret), True


def load_keys(directory: os.PathLike | str) -> CurveKeys:
    public, secret = key_files(directory)
    if not secret.exists():
        raise CurveError(
            f"no cluster key in {directory}: run `mcp-orchestrator keys` on one host and copy "
            f"{secret.name} (and {public.name}) to the same directory on every other host"
        )
    try:
        pub, sec = zmq.auth.load_certificate(str(secret))
    except (OSError, ValueError) as exc:
        raise CurveError(f"the cluster key {secret} cannot be read: {exc}") from None
    if not sec:
        raise CurveError(f"{secret} holds no secret key")
    return CurveKeys(public=pub, secret=sec)


_armed: "weakref.WeakKeyDictionary[zmq.Context, tuple[CurveKeys, ThreadAuthenticator]]" = weakref.WeakKeyDictionary()
_plain: "weakref.WeakSet[zmq.Context]" = weakref.WeakSet()
_lock = threading.Lock()


def secure(ctx: zmq.Context, keys: CurveKeys) -> ThreadAuthenticator:
    """From now on the tcp:// sockets of `ctx` use CURVE with `keys`, and bound ones
    admit only clients with the cluster's public key. Stopped with `release(ctx)`."""
    with _lock:
        if ctx in _armed:
            return _armed[ctx][1]
        auth = ThreadAuthenticator(ctx)
        auth.start()
        auth.configure_curve_callback(domain="*", credentials_provider=_ClusterOnly(keys.public))
        _armed[ctx] = (keys, auth)
        return auth


def allow_plain(ctx: zmq.Context) -> None:
    """`[zmq] between_hosts = plain`: tcp:// to other hosts without CURVE (a trusted network)."""
    _plain.add(ctx)


def release(ctx: zmq.Context) -> None:
    """Stop the context's authenticator (before the context is destroyed)."""
    with _lock:
        armed = _armed.pop(ctx, None)
    if armed is not None:
        armed[1].stop()


class _ClusterOnly:
    """zmq.auth's credentials provider: only the cluster's own public key (z85) is let in."""

    def __init__(self, public: bytes) -> None:
        self.public = public

    def callback(self, domain: str, key: bytes) -> bool:
        return key == self.public


def socket_options(ctx: zmq.Context, endpoint: str, server: bool) -> dict[int, Any]:
    """The options a socket of `ctx` needs for `endpoint`: CURVE for tcp:// when the
    context is armed; none for ipc:// and for loopback. Raises CurveError for a plain
    tcp:// endpoint beyond this host when plain links were not allowed."""
    if not endpoint.startswith("tcp://"):
        return {}
    with _lock:
        armed = _armed.get(ctx)
    if armed is not None:
        keys = armed[0]
        if server:
            return {zmq.CURVE_SERVER: 1, zmq.CURVE_SECRETKEY: keys.secret, zmq.CURVE_PUBLICKEY: keys.public}
        return {zmq.CURVE_SERVERKEY: keys.public, zmq.CURVE_PUBLICKEY: keys.public, zmq.CURVE_SECRETKEY: keys.secret}
    if ctx in _plain or is_loopback_endpoint(endpoint):
        return {}
    raise CurveError(
        f"{endpoint}: a plain tcp:// link beyond this host is refused; set [cluster] engine = swarm "
        "with the cluster key (mcp-orchestrator keys), or [zmq] between_hosts = plain on a network you trust"
    )


def derived_key(keys: CurveKeys, purpose: str) -> bytes:
    """A key for `purpose` every host holding the cluster key derives alike (HMAC-SHA256
    of the purpose under the secret key; the secret key itself is used for nothing else)."""
    return hmac.new(keys.secret, f"mcp-orchestrator {purpose}".encode(), hashlib.sha256).digest()


def arm(ctx: zmq.Context, between_hosts: str, keys_dir: Optional[str], needed: bool) -> None:
    """Set up a process's context as its settings say: CURVE with the cluster key when
    `needed` (links between hosts) and not `plain`. Raises CurveError."""
    if between_hosts == PLAIN:
        allow_plain(ctx)
    elif needed:
        secure(ctx, load_keys(keys_dir or ""))
