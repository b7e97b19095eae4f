"""The pure bookkeeping of change notifications: the listen filter the bridge agrees to,
and reference counts of resource subscriptions."""

from __future__ import annotations

import pytest

from services.container_agent.bridge.channel import Channel
from services.container_agent.bridge.sessions import HttpSession, SessionTable
from services.container_agent.bridge.subscriptions import FilterError, Listener, Subscriptions, agreed_filter

CAPS = {"tools": {"listChanged": True}, "prompts": {}, "resources": {"subscribe": True}}


def test_the_agreed_filter_leaves_out_what_the_server_cannot_send():
    agreed, methods, uris = agreed_filter(
        {"toolsListChanged": True, "promptsListChanged": True, "resourceSubscriptions": ["a://1", "a://1"]}, CAPS
    )
    assert agreed == {"toolsListChanged": True, "resourceSubscriptions": ["a://1"]}
    assert methods == {"notifications/tools/list_changed"} and uris == {"a://1"}
    assert agreed_filter({"resourceSubscriptions": ["a://1"]}, {"resources": {}})[0] == {}


@pytest.mark.parametrize(
    "requested",
    [None, [], {"toolsListChanged": 1}, {"resourceSubscriptions": "a://1"}, {"resourceSubscriptions": [""]}],
)
def test_a_filter_of_the_wrong_shape_is_refused(requested):
    with pytest.raises(FilterError):
        agreed_filter(requested, CAPS)


def test_a_uri_is_held_until_its_last_holder_goes():
    subs = Subscriptions(SessionTable(60, 10))
    session = HttpSession("s", "streamable-http", "2025-06-18", 0.0)
    one = Listener(1, Channel(), frozenset(), frozenset({"a://1", "a://2"}))
    two = Listener(2, Channel(), frozenset(), frozenset({"a://1"}))
    assert sorted(subs.add_listener(one)) == ["a://1", "a://2"]
    assert subs.add_listener(two) == []
    assert subs.subscribe(session, "a://2") is False and subs.subscribe(session, "a://2") is False
    assert subs.remove_listener(one) == []
    assert subs.remove_listener(one) == []  # twice is harmless
    assert subs.drop_session(session) == ["a://2"]
    assert subs.unsubscribe(session, "a://1") is False  # never held by it
    assert subs.remove_listener(two) == ["a://1"] and subs.uris() == []


def test_updates_reach_only_the_holders_of_the_resource():
    sessions = SessionTable(60, 10)
    subs = Subscriptions(sessions)
    holder = Listener("h", Channel(), frozenset(), frozenset({"a://1"}))
    other = Listener("o", Channel(), frozenset({"notifications/tools/list_changed"}), frozenset())
    subs.add_listener(holder)
    subs.add_listener(other)
    subs.deliver("notifications/resources/updated", {"uri": "a://1"})
    assert holder.channel.pop()[0] == (
        b'{"jsonrpc":"2.0","method":"notifications/resources/updated",'
        b'"params":{"uri":"a://1","_meta":{"io.modelcontextprotocol/subscriptionId":"h"}}}'
    )
    assert other.channel.pop() is None
    subs.close_all()
    assert other.channel.pop()[1] is True and other.channel.closed  # the listen request's own answer


def test_a_session_holds_a_bounded_number_of_resources(monkeypatch):
    from services.container_agent.bridge import subscriptions

    monkeypatch.setattr(subscriptions, "MAX_URIS", 2)
    subs = Subscriptions(SessionTable(60, 10))
    session = HttpSession("s", "streamable-http", "2025-06-18", 0.0)
    for uri in ("a://1", "a://2"):
        assert not subs.full(session, uri)
        subs.subscribe(session, uri)
    assert subs.full(session, "a://3") and not subs.full(session, "a://1")
