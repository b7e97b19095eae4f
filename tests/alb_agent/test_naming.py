from __future__ import annotations

import random
import re
import string

import pytest

from services.alb_agent import naming

VALID_NAME = re.compile(r"(?!.*--)(?!-)[A-Za-z0-9-]{1,32}(?<!-)")

AWKWARD_IDS = [
    "time",
    "git",
    "a",
    "A",
    "github.com",
    "my_server",
    "MY.Server_01",
    "x" * 100,
    "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t",
    "---",
    "___",
    "...",
    "server--double",
    "trailing-",
    "-leading",
    "UPPER_CASE_SERVER_NAME_THAT_IS_LONG",
    "ünïcödé",
    "emoji-😀",
    "with space",
    "a" * 31,
    "a" * 32,
    "a" * 33,
]


@pytest.mark.parametrize("server_id", AWKWARD_IDS)
def test_target_group_names_are_valid_for_any_id(server_id):
    name = naming.target_group_name(server_id, "default")
    assert VALID_NAME.fullmatch(name), name
    assert len(name) <= naming.TARGET_GROUP_NAME_MAX


def test_names_are_stable_across_calls_and_releases():
    # Pinned: a change here renames every target group of every running installation.
    assert naming.target_group_name("time", "default") == "mcp-time-" + naming.short_hash("default", "time")
    assert naming.short_hash("default", "time") == "deb912cd"
    assert naming.target_group_name("time", "default") == naming.target_group_name("time", "default")


def test_names_keep_a_readable_prefix():
    assert naming.target_group_name("GitHub.Server_1", "default").startswith("mcp-github-server-1-")
    assert naming.target_group_name("___", "default") == "mcp-" + naming.short_hash("default", "___")


def test_ids_that_sanitise_alike_get_different_names():
    ids = ["a.b", "a_b", "a-b", "A.b", "A_B", "a..b", "a b"]
    names = {naming.target_group_name(i, "default") for i in ids}
    assert len(names) == len(ids)


def test_long_ids_with_a_common_prefix_get_different_names():
    base = "very-long-server-identifier-"
    names = {naming.target_group_name(base + str(i), "default") for i in range(200)}
    assert len(names) == 200


def test_the_same_id_in_two_clusters_gets_two_names():
    assert naming.target_group_name("time", "blue") != naming.target_group_name("time", "green")


def test_no_collisions_among_many_random_ids():
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + "._-"
    ids = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(5000)}
    names = {naming.target_group_name(i, "default") for i in ids}
    assert len(names) == len(ids)
    assert all(VALID_NAME.fullmatch(n) for n in names)


def test_tags_and_target_tag_round_trip():
    assert naming.ownership_tags("c", "s") == {naming.TAG_CLUSTER: "c", naming.TAG_SERVER_ID: "s"}
    value = naming.target_tag_value("i-0abc", 8123)
    assert naming.parse_target_tag(value) == (("i-0abc",), 8123)
    # A swarm's group holds several nodes; the order they are named in does not matter.
    several = naming.target_tag_value(["i-0def", "i-0abc"], 8123)
    assert several == "i-0abc,i-0def:8123" and naming.parse_target_tag(several) == (("i-0abc", "i-0def"), 8123)
    # Too many for a tag's 256 characters: a digest, which says nothing to parse.
    many = naming.target_tag_value([f"i-{n:017x}" for n in range(13)], 8123)
    assert many.startswith("sha256:") and len(many) <= 256 and naming.parse_target_tag(many) is None
    assert naming.parse_target_tag(None) is None
    assert naming.parse_target_tag("garbage") is None
    assert naming.parse_target_tag("i-1:port") is None


def test_every_event_kind_is_a_distinct_published_message_type():
    from services.alb_agent import model, wire
    from services.alb_agent.model import AlbEvent

    kinds = [
        getattr(model, name)
        for name in (
            "ROUTE_CREATED",
            "ROUTE_CHANGED",
            "ROUTE_REMOVED",
            "TARGET_HEALTH_CHANGED",
            "AWS_ERROR_EVENT",
            "ROUTE_ERROR",
            "QUOTA_REACHED",
            "AWS_RECOVERED",
        )
    ]
    assert len(set(kinds)) == len(kinds)
    for kind in kinds:  # "AWS answers again" used to be dropped: not a registered type
        assert wire.event_message(AlbEvent(kind, None, "x")) is not None, kind
