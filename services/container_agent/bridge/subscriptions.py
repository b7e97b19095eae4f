"""Who wants which change notifications of one server, across its container's restarts.

Two kinds of listeners share the server's one stdio session: 2026-07-28 clients with a
`subscriptions/listen` stream (a filter of list-changed kinds and resource URIs, every
notification tagged with their subscription id), and handshake-era sessions, whose
standing stream gets every list change and the updates of the resources they
subscribed to. Upstream each URI is subscribed once, however many hold it: the first
holder subscribes it, the last one gone unsubscribes it. Pure bookkeeping; the
upstream does the writing.
"""

from __future__ import annotations

from typing import Any, Optional

from . import jsonrpc
from .channel import Channel
from .era import META_SUBSCRIPTION
from .sessions import HttpSession, SessionTable

# The filter keys of subscriptions/listen: the notification each one asks for, and the
# server capability (and its flag) that says the server can send it at all.
LIST_FILTERS = {
    "toolsListChanged": ("notifications/tools/list_changed", "tools", "listChanged"),
    "promptsListChanged": ("notifications/prompts/list_changed", "prompts", "listChanged"),
    "resourcesListChanged": ("notifications/resources/list_changed", "resources", "listChanged"),
}
RESOURCE_FILTER = "resourceSubscriptions"
RESOURCE_UPDATED = "notifications/resources/updated"
ACKNOWLEDGED = "notifications/subscriptions/acknowledged"
# At most this many URIs per listen request or handshake-era session (a client cannot
# make the bridge hold an unbounded set upstream).
MAX_URIS = 1000


class FilterError(ValueError):
    """A subscriptions/listen filter the bridge cannot take."""


class Listener:
    """One client's subscriptions/listen stream."""

    __slots__ = ("subscription_id", "channel", "methods", "uris")

    def __init__(self, subscription_id: Any, channel: Channel, methods: frozenset, uris: frozenset) -> None:
        self.subscription_id = subscription_id  # the JSON-RPC id of its listen request
        self.channel = channel
        self.methods = methods  # the list-changed notifications it gets
        self.uris = uris  # the resources whose updates it gets


def agreed_filter(requested: Any, capabilities: Any) -> tuple[dict, frozenset, frozenset]:
    """What the bridge honours of a listen request's `notifications` filter, given the
    server's capabilities: (the filter to acknowledge, list-changed methods, URIs).
    Kinds the server cannot send are left out, as the spec says; FilterError for a
    filter that is not the spec's shape."""
    if not isinstance(requested, dict):
        raise FilterError("params.notifications must be an object")
    caps = capabilities if isinstance(capabilities, dict) else {}
    agreed: dict[str, Any] = {}
    methods = []
    for key, (method, capability, flag) in LIST_FILTERS.items():
        wanted = requested.get(key)
        if wanted is not None and not isinstance(wanted, bool):
            raise FilterError(f"params.notifications.{key} must be a boolean")
        cap = caps.get(capability)
        if wanted and isinstance(cap, dict) and cap.get(flag):
            agreed[key] = True
            methods.append(method)
    uris = requested.get(RESOURCE_FILTER)
    if uris is not None:
        if not isinstance(uris, list) or not all(isinstance(u, str) and u for u in uris):
            raise FilterError(f"params.notifications.{RESOURCE_FILTER} must be a list of URIs")
        if len(uris) > MAX_URIS:
            raise FilterError(f"params.notifications.{RESOURCE_FILTER}: at most {MAX_URIS} URIs")
    resources = caps.get("resources")
    held: frozenset = frozenset()
    if uris and isinstance(resources, dict) and resources.get("subscribe"):
        held = frozenset(uris)
        agreed[RESOURCE_FILTER] = sorted(held)
    return agreed, frozenset(methods), held


def acknowledgement(subscription_id: Any, agreed: dict) -> bytes:
    return jsonrpc.dumps(
        {
            "jsonrpc": "2.0",
            "method": ACKNOWLEDGED,
            "params": {"_meta": {META_SUBSCRIPTION: subscription_id}, "notifications": agreed},
        }
    )


def closing_result(subscription_id: Any) -> bytes:
    """The listen request's own answer: the server ended the subscription gracefully."""
    return jsonrpc.dumps(
        {
            "jsonrpc": "2.0",
            "id": subscription_id,
            "result": {"resultType": "complete", "_meta": {META_SUBSCRIPTION: subscription_id}},
        }
    )


def _tagged(method: str, params: dict, subscription_id: Any) -> bytes:
    meta = params.get("_meta")
    tagged = dict(params, _meta=dict(meta if isinstance(meta, dict) else {}, **{META_SUBSCRIPTION: subscription_id}))
    return jsonrpc.dumps({"jsonrpc": "2.0", "method": method, "params": tagged})


class Subscriptions:
    def __init__(self, sessions: SessionTable) -> None:
        self._sessions = sessions
        self.listeners: set[Listener] = set()
        self._session_uris: dict[HttpSession, set[str]] = {}
        self._holders: dict[str, int] = {}  # URI -> listeners and sessions holding it

    # --- who holds what -----------------------------------------------------------

    def uris(self) -> list[str]:
        """Every URI some client holds: what the server must have subscribed."""
        return sorted(self._holders)

    def add_listener(self, listener: Listener) -> list[str]:
        """Register a listen stream; returns the URIs it is the first to hold."""
        self.listeners.add(listener)
        return [u for u in listener.uris if self._hold(u)]

    def remove_listener(self, listener: Listener) -> list[str]:
        """Forget a listen stream; returns the URIs nobody holds any more."""
        if listener not in self.listeners:
            return []
        self.listeners.discard(listener)
        return [u for u in listener.uris if self._release(u)]

    def full(self, session: HttpSession, uri: str) -> bool:
        """The session holds as many URIs as it may, and not this one."""
        held = self._session_uris.get(session, ())
        return len(held) >= MAX_URIS and uri not in held

    def subscribe(self, session: HttpSession, uri: str) -> bool:
        """A handshake-era session's resources/subscribe; True when it is the URI's first holder."""
        held = self._session_uris.setdefault(session, set())
        if uri in held:
            return False
        held.add(uri)
        return self._hold(uri)

    def unsubscribe(self, session: HttpSession, uri: str) -> bool:
        """A session's resources/unsubscribe; True when nobody holds the URI any more."""
        held = self._session_uris.get(session)
        if not held or uri not in held:
            return False
        held.discard(uri)
        if not held:
            del self._session_uris[session]
        return self._release(uri)

    def drop_session(self, session: HttpSession) -> list[str]:
        """A session ended; returns the URIs nobody holds any more."""
        return [u for u in self._session_uris.pop(session, ()) if self._release(u)]

    def close_all(self) -> None:
        """The server is no longer served: every listen stream ends gracefully."""
        for listener in list(self.listeners):
            listener.channel.put(closing_result(listener.subscription_id), final=True)
            listener.channel.close()
        self.listeners.clear()
        self._session_uris.clear()
        self._holders.clear()

    def _hold(self, uri: str) -> bool:
        self._holders[uri] = self._holders.get(uri, 0) + 1
        return self._holders[uri] == 1

    def _release(self, uri: str) -> bool:
        left = self._holders.get(uri, 0) - 1
        if left > 0:
            self._holders[uri] = left
            return False
        self._holders.pop(uri, None)
        return True

    # --- delivery -------------------------------------------------------------------

    def deliver(self, method: str, params: Optional[dict]) -> None:
        """A change notification from the server, to exactly those who asked for it.
        `params` no longer carries the server's own subscription id."""
        params = params if isinstance(params, dict) else {}
        if method == RESOURCE_UPDATED:
            uri = params.get("uri")
            plain = jsonrpc.dumps({"jsonrpc": "2.0", "method": method, "params": params})
            for session, held in self._session_uris.items():
                if uri in held and session.stream is not None:
                    session.stream.put(plain)
            for listener in list(self.listeners):
                if uri in listener.uris:
                    self._put(listener, _tagged(method, params, listener.subscription_id))
            return
        plain = jsonrpc.dumps({"jsonrpc": "2.0", "method": method, **({"params": params} if params else {})})
        for session in list(self._sessions.streaming):
            if session.stream is not None:
                session.stream.put(plain)
        for listener in list(self.listeners):
            if method in listener.methods:
                self._put(listener, _tagged(method, params, listener.subscription_id))

    @staticmethod
    def _put(listener: Listener, data: bytes) -> None:
        # One that fell too far behind is cut off (its stream ends; its handler forgets it).
        listener.channel.put(data)
