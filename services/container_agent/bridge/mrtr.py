"""Multi round-trip requests (2026-07-28) in front of a handshake-era server.

A handshake-era server asks its client something (sampling, elicitation, roots) by
sending a request of its own while it serves a call. A 2026-07-28 client cannot take
such a request: it gets an `InputRequiredResult` instead and retries its call with the
answers (`inputResponses`) and the `requestState` it was given. The bridge holds the
server's call open between the two, and the state names that held round: signed with
a key of this process (HMAC-SHA256) over the server, the method and name of the call
and the client's credentials, with an expiry, so a state cannot be forged, moved to
another call or client, or used late. These are the pure parts; upstream.py holds the
rounds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any, Callable, Mapping, Optional

# What a server may ask its client, and the client capability each one needs.
INPUT_METHODS = {"sampling/createMessage": "sampling", "elicitation/create": "elicitation", "roots/list": "roots"}
# The requests that may be answered with an InputRequiredResult.
INTERACTIVE = frozenset({"tools/call", "prompts/get", "resources/read"})
MISSING_CAPABILITY = -32021
_PREFIX = "bridge1."


def missing_capability(method: str, capabilities: Any) -> Optional[str]:
    """The client capability `method` needs that `capabilities` does not declare."""
    need = INPUT_METHODS.get(method)
    if need is None:
        return None
    return None if isinstance(capabilities, dict) and isinstance(capabilities.get(need), dict) else need


def subject(msg: Mapping[str, Any]) -> str:
    """What a state is bound to of its request: the method and its tool, prompt or URI."""
    params = msg.get("params")
    params = params if isinstance(params, dict) else {}
    return f"{msg.get('method')}\n{params.get('name', params.get('uri', ''))}"


class StateSigner:
    """Issues and checks `requestState` strings; the key lives only in this process."""

    def __init__(self, key: Optional[bytes] = None, clock: Callable[[], float] = time.time) -> None:
        self._key = key or secrets.token_bytes(32)
        self._clock = clock

    def issue(self, round_id: str, server_id: str, bound_to: str, principal: str, ttl: float) -> str:
        expires = int(self._clock() + ttl)
        body = f"{round_id}.{expires}"
        return f"{_PREFIX}{body}.{self._mac(body, server_id, bound_to, principal)}"

    def check(self, state: Any, server_id: str, bound_to: str, principal: str) -> Optional[str]:
        """The round a state names, or None when it is not one of ours, was altered,
        belongs to another server, call or client, or has expired."""
        if not isinstance(state, str) or not state.startswith(_PREFIX) or len(state) > 200:
            return None
        try:
            round_id, expires, mac = state[len(_PREFIX) :].split(".")
            deadline = int(expires)
        except ValueError:
            return None
        if not hmac.compare_digest(mac, self._mac(f"{round_id}.{expires}", server_id, bound_to, principal)):
            return None
        return round_id if self._clock() <= deadline else None

    def _mac(self, body: str, server_id: str, bound_to: str, principal: str) -> str:
        message = "\0".join((body, server_id, bound_to, principal)).encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def is_ours(state: Any) -> bool:
    return isinstance(state, str) and state.startswith(_PREFIX)


def input_required(asks: Mapping[str, tuple[str, Any]], state: str) -> dict:
    """The InputRequiredResult asking the client `asks` (key -> (method, params))."""
    requests = {
        key: {"method": method, **({"params": params} if params is not None else {})}
        for key, (method, params) in asks.items()
    }
    return {"resultType": "input_required", "inputRequests": requests, "requestState": state}


def missing_capability_error(need: str) -> dict:
    return {
        "code": MISSING_CAPABILITY,
        "message": f"Missing required client capability: the server asks for {need}",
        "data": {"requiredCapabilities": {need: {}}},
    }
