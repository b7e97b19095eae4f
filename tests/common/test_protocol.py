"""The wire protocol against the real msgpack serializer: every message type, and every
way a message can be wrong."""

from __future__ import annotations

import random
from dataclasses import MISSING, fields, is_dataclass
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import msgpack
import pytest

from common import protocol as p
from common.protocol import ErrorCode, Kind, Message, ProtocolError
from common.secrets import Secret

CANARY = "canary-7f3a9c1e-do-not-leak"


# ------------------------------------------------------------------- sample bodies


def _sample_value(tp: Any, name: str, minimal: bool = False) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return {"k": [1, "two", None, {"n": 3.5, "ok": True}]}
    if origin is Union:
        return _sample_value(next(a for a in get_args(tp) if a is not type(None)), name)
    if origin is Literal:  # the last action ("reload") needs no server_id
        return get_args(tp)[-1 if minimal else 0]
    if origin is list:
        return [_sample_value(get_args(tp)[0], name), _sample_value(get_args(tp)[0], name)]
    if origin is dict:
        return {"first": _sample_value(get_args(tp)[1], name)}
    if is_dataclass(tp):
        return sample_body(tp)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return list(tp)[-1 if minimal else 0]
    return {str: f"value-of-{name}", int: 4242, float: 12.25, bool: True}[tp]


def sample_body(cls: type, minimal: bool = False) -> Any:
    """`cls` with every field set to a non-default value (or only the required ones)."""
    hints = get_type_hints(cls)
    kwargs = {}
    for f in fields(cls):
        required = f.default is MISSING and f.default_factory is MISSING
        if required or not minimal:
            kwargs[f.name] = _sample_value(hints[f.name], f.name, minimal)
    return cls(**kwargs)


def sample_message(name: str, minimal: bool = False) -> Message:
    spec = p.MESSAGE_TYPES[name]
    body = sample_body(spec.body, minimal)
    if spec.kind is Kind.REQUEST:
        return p.request(name, body, "scheduler")
    if spec.kind is Kind.EVENT:
        return p.published(name, body, src="container-agent", seq=17, epoch="e0e1e2")
    requests = [t for t in p.MESSAGE_TYPES.values() if t.reply == name]
    req = p.request(requests[0].name, sample_body(requests[0].body), "scheduler")
    return p.reply_ok(req, body, "container-agent")


def raw_envelope(**override: Any) -> dict:
    env = {
        "v": p.PROTOCOL_VERSION,
        "type": "container.ensure",
        "id": "abc123",
        "ts": 1.5,
        "src": "test",
        "body": {"server_id": "github", "host_port": 8001, "spec_hash": "h1"},
    }
    env.update(override)
    return {k: v for k, v in env.items() if v is not DROP}


DROP = object()


def carrying(data: Any) -> Message:
    """A message whose body holds free-form plain data (a snapshot's state)."""
    return p.reply_ok(p.request("snapshot.get"), p.Snapshot("e", 1, {"data": data}))


def raw_carrying(data: Any) -> dict:
    """The raw envelope of `carrying(data)`, for data the encoder would refuse."""
    return raw_envelope(type="snapshot", reply_to="r1", ok=True, body={"epoch": "e", "seq": 1, "state": {"data": data}})


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


# ------------------------------------------------------------------------ registry


def test_registry_defines_the_product_types() -> None:
    for name in [
        "ping",
        "pong",
        "snapshot.get",
        "snapshot",
        "heartbeat",
        "container.ensure",
        "container.stop",
        "container.start",
        "container.restart",
        "container.remove",
        "container.status",
        "container.started",
        "container.exited",
        "container.oom",
        "container.health",
        "container.bridge",
        "routes.apply",
        "routes.status",
        "route.created",
        "route.changed",
        "route.removed",
        "route.health",
        "route.error",
        "route.quota",
        "control.status",
        "control.action",
        "control.plan",
        "state.server",
        "state.config",
        "state.event",
    ]:
        assert name in p.MESSAGE_TYPES, name
    for spec in p.MESSAGE_TYPES.values():
        assert spec.body.__dataclass_params__.frozen
        if spec.kind is Kind.REQUEST:
            assert p.MESSAGE_TYPES[spec.reply].kind is Kind.REPLY


def test_registry_refuses_duplicates_and_dangling_replies() -> None:
    with pytest.raises(ValueError, match="defined twice"):
        p._registry(p.MessageType("a", p.Empty, Kind.REPLY), p.MessageType("a", p.Empty, Kind.REPLY))
    with pytest.raises(ValueError, match="names no reply"):
        p._registry(p.MessageType("a", p.Empty, Kind.REQUEST, reply="b"))


# ---------------------------------------------------------------------- round trips


@pytest.mark.parametrize("name", sorted(p.MESSAGE_TYPES))
@pytest.mark.parametrize("minimal", [False, True], ids=["full", "minimal"])
def test_every_type_round_trips(name: str, minimal: bool) -> None:
    msg = sample_message(name, minimal)
    if p.MESSAGE_TYPES[name].kind is Kind.EVENT:
        frames = p.encode_published(msg)
        assert frames[0] == name.encode()
        assert p.decode_published(frames) == msg
    assert p.decode(p.encode(msg)) == msg


def test_error_reply_round_trips_and_keeps_unknown_codes() -> None:
    req = p.request("container.stop", p.ContainerRef("github"), "scheduler")
    err = p.reply_error(req, ErrorCode.NOT_FOUND, "no container for server 'github'", "agent")
    back = p.decode(p.encode(err))
    assert back == err and back.kind is Kind.REPLY
    assert back.error.code is ErrorCode.NOT_FOUND and back.error.code == "not_found"
    newer = p.decode(
        pack(
            {
                **raw_envelope(type="error", reply_to="x", ok=False, error={"code": "from_the_future", "message": "m"}),
                "body": None,
            }
        )
    )
    assert newer.error.code == "from_the_future"


def test_envelope_fields() -> None:
    req = p.request("ping", None, "dashboard")
    raw = msgpack.unpackb(p.encode(req), raw=False)
    assert set(raw) == {"v", "type", "id", "ts", "src", "body"}
    assert list(raw)[:3] == ["v", "type", "id"]  # id early: readable from a refused message
    reply = msgpack.unpackb(p.encode(p.reply_ok(req, None, "scheduler")), raw=False)
    assert reply["reply_to"] == req.id and reply["ok"] is True and reply["type"] == "pong"
    event = msgpack.unpackb(p.encode(p.published("heartbeat", p.Heartbeat(1.0), src="s", seq=3, epoch="ab")), raw=False)
    assert event["seq"] == 3 and event["epoch"] == "ab"


def test_bodies_use_plain_msgpack_types_only() -> None:
    msg = sample_message("control.state")
    raw = msgpack.unpackb(p.encode(msg), raw=False)  # a foreign peer sees only plain data
    assert raw["body"]["servers"][0]["server_id"] == "value-of-server_id"
    assert p.from_plain(p.ControlState, raw["body"]) == msg.body
    assert p.to_plain(msg.body) == raw["body"]


def test_str_enum_values_go_out_as_plain_strings() -> None:
    body = p.StateEvent(message=ErrorCode.CONFLICT, code=ErrorCode.NOT_FOUND)
    raw = msgpack.unpackb(p.encode(p.published("state.event", body, src="s", seq=1, epoch="e")), raw=False)
    assert raw["body"]["code"] == "not_found" and type(raw["body"]["code"]) is str


# ----------------------------------------------------------------- tolerance / rules


def test_unknown_fields_are_ignored_everywhere() -> None:
    env = raw_envelope(
        future_field={"x": 1},
        body={"server_id": "github", "spec": {"image": "x"}, "host_port": 8001, "spec_hash": "h", "new_field": [1, 2]},
    )
    msg = p.decode(pack(env))
    assert msg.body == p.ContainerEnsure("github", 8001, "h")
    nested = raw_envelope(
        type="routes.apply", body={"routes": [{"server_id": "a", "port": 8000, "weight": 3}], "later": True}
    )
    assert p.decode(pack(nested)).body == p.RoutesApply([p.RouteEntry("a", 8000)])


def test_missing_optional_fields_get_defaults() -> None:
    env = raw_envelope(type="container.status", body={})
    assert p.decode(pack(env)).body == p.ContainerStatusQuery(None)
    env = raw_envelope(type="ping", body=DROP)
    assert p.decode(pack(env)).body == p.Empty()


def test_int_is_accepted_for_a_float_field() -> None:
    env = raw_envelope(type="heartbeat", seq=0, epoch="e", body={"interval": 2})
    msg = p.decode(pack(env))
    assert msg.body.interval == 2.0 and isinstance(msg.body.interval, float)


WRONG_BODIES = [
    ("container.ensure", {"server_id": "a", "host_port": "8001", "spec_hash": "h"}, "host_port"),
    ("container.ensure", {"server_id": 5, "host_port": 8001, "spec_hash": "h"}, "server_id"),
    ("container.ensure", {"server_id": "a", "host_port": True, "spec_hash": "h"}, "host_port"),
    ("container.ensure", {"server_id": "a", "host_port": 8001}, "spec_hash"),
    ("snapshot", {"epoch": "e", "seq": 1, "state": []}, "state"),
    ("snapshot", {"epoch": "e", "seq": 1, "state": {"t": b"bin"}}, "state.t"),
    ("state.agents", {"agents": {"a": 3}}, "agents.a"),
    ("state.routing", {"alb": {"rules": [{"arn": "r", "priority": "10"}]}}, "alb.rules[0].priority"),
    ("state.server", {"server_id": "a", "status": "sideways"}, "status"),
    ("routes.apply", {"routes": [{"server_id": "a", "port": 1}, {"server_id": "b", "port": "2"}]}, "routes[1].port"),
    ("routes.apply", {"routes": [{"server_id": "a", "port": 1, "enabled": 1}]}, "routes[0].enabled"),
    ("routes.apply", {"routes": [{"port": 1}]}, "routes[0].server_id"),
    ("routes.apply", {"routes": ["a"]}, "routes[0]"),
    ("control.action", {"action": "explode"}, "action"),
    ("control.action", {"action": "start"}, "needs a server_id"),
    ("control.action", {"action": "reload", "server_id": "a"}, "whole configuration"),
    ("container.ensure", {"server_id": "a", "host_port": 70000, "spec_hash": "h"}, "host_port"),
    ("routes.apply", {"routes": [{"server_id": "a", "port": 0}]}, "port between 1 and 65535"),
    ("container.status", {"server_id": ["a"]}, "server_id"),
    ("ping", [], "body"),
    ("ping", "x", "body"),
]


@pytest.mark.parametrize("mtype,body,named", WRONG_BODIES)
def test_wrong_field_types_are_rejected(mtype: str, body: Any, named: str) -> None:
    kind = p.MESSAGE_TYPES[mtype].kind
    extra = (
        {"reply_to": "r1", "ok": True} if kind is Kind.REPLY else {"seq": 1, "epoch": "e"} if kind is Kind.EVENT else {}
    )
    env = raw_envelope(type=mtype, body=body, **extra)
    with pytest.raises(ProtocolError) as info:
        p.decode(pack(env))
    assert info.value.code is ErrorCode.INVALID_BODY
    assert named in info.value.message and mtype in info.value.message
    assert info.value.msg_id == "abc123"  # a server can still point its reply at it


def test_error_texts_name_fields_not_values() -> None:
    env = raw_envelope(body={"server_id": "a", "spec": {}, "host_port": CANARY, "spec_hash": "h"})
    with pytest.raises(ProtocolError) as info:
        p.decode(pack(env))
    assert CANARY not in str(info.value) and "must be int, got str" in info.value.message


def test_nesting_is_bounded() -> None:
    deep: Any = "leaf"
    for _ in range(p.MAX_DEPTH + 5):
        deep = {"d": deep}
    with pytest.raises(ProtocolError, match="nested too deeply"):
        p.decode(pack(raw_carrying(deep)))
    with pytest.raises(ProtocolError, match="nested too deeply"):
        p.encode(carrying(deep))


# --------------------------------------------------------------------- envelope errors


@pytest.mark.parametrize(
    "override,code",
    [
        ({"v": 2}, ErrorCode.VERSION_MISMATCH),
        ({"v": "1"}, ErrorCode.BAD_MESSAGE),
        ({"v": DROP}, ErrorCode.BAD_MESSAGE),
        ({"type": "container.explode"}, ErrorCode.UNKNOWN_TYPE),
        ({"type": 7}, ErrorCode.BAD_MESSAGE),
        ({"id": DROP}, ErrorCode.BAD_MESSAGE),
        ({"id": ""}, ErrorCode.BAD_MESSAGE),
        ({"id": "x" * 500}, ErrorCode.BAD_MESSAGE),
        ({"ts": "yesterday"}, ErrorCode.BAD_MESSAGE),
        ({"src": 5}, ErrorCode.BAD_MESSAGE),
        ({"type": "pong"}, ErrorCode.BAD_MESSAGE),  # reply without reply_to
        ({"type": "pong", "reply_to": "x", "ok": False}, ErrorCode.BAD_MESSAGE),
        ({"type": "heartbeat", "body": {"interval": 1.0}}, ErrorCode.BAD_MESSAGE),  # no seq/epoch
        ({"type": "heartbeat", "seq": -1, "epoch": "e"}, ErrorCode.BAD_MESSAGE),
        ({"type": "error", "reply_to": "x", "ok": False}, ErrorCode.BAD_MESSAGE),  # no error map
    ],
)
def test_bad_envelopes_are_rejected(override: dict, code: ErrorCode) -> None:
    with pytest.raises(ProtocolError) as info:
        p.decode(pack(raw_envelope(**override)))
    assert info.value.code is code


def test_version_mismatch_and_unknown_type_keep_the_id() -> None:
    for override in ({"v": 99}, {"type": "nope"}):
        with pytest.raises(ProtocolError) as info:
            p.decode(pack(raw_envelope(**override)))
        assert info.value.msg_id == "abc123"


def test_encode_refuses_unknown_and_malformed_messages() -> None:
    with pytest.raises(ProtocolError) as info:
        p.encode(Message(type="nope", id="x", src="", ts=0.0, body=p.Empty()))
    assert info.value.code is ErrorCode.UNKNOWN_TYPE
    with pytest.raises(ProtocolError, match="unknown message type"):
        p.request("nope")
    with pytest.raises(ProtocolError, match="is a reply, not a request"):
        p.request("pong")
    with pytest.raises(ProtocolError, match="takes a body of type ContainerRef"):
        p.request("container.stop", p.ContainerStatusQuery("a"))
    with pytest.raises(ProtocolError, match="needs a body of type ContainerRef"):
        p.request("container.stop")
    with pytest.raises(ProtocolError, match="needs seq and epoch"):
        p.encode(Message(type="heartbeat", id="x", src="", ts=0.0, body=p.Heartbeat(1.0)))
    with pytest.raises(ProtocolError, match="needs reply_to"):
        p.encode(Message(type="pong", id="x", src="", ts=0.0, body=p.Empty()))
    with pytest.raises(ProtocolError, match="not an event"):
        p.encode_published(p.request("ping"))
    with pytest.raises(ProtocolError) as info:  # field type checked on encode too
        p.encode(p.request("container.stop", p.ContainerRef(server_id=3)))  # type: ignore[arg-type]
    assert info.value.code is ErrorCode.INVALID_BODY
    with pytest.raises(ProtocolError, match="takes a body of type Empty, not ContainerRef"):
        p.reply_ok(p.request("ping"), p.ContainerRef("a"))


def test_int_out_of_msgpack_range_is_refused() -> None:
    with pytest.raises(ProtocolError) as info:
        p.encode(carrying({"n": 2**70}))
    assert info.value.code is ErrorCode.INVALID_BODY


# -------------------------------------------------------------------------- size


def test_oversized_is_rejected_before_unpacking(monkeypatch: pytest.MonkeyPatch) -> None:
    big = p.encode(carrying({"blob": "x" * 5000}))
    called = []
    real = msgpack.unpackb
    monkeypatch.setattr(p.msgpack, "unpackb", lambda *a, **kw: called.append(1) or real(*a, **kw))
    with pytest.raises(ProtocolError) as info:
        p.decode(big, max_bytes=4096)
    assert info.value.code is ErrorCode.TOO_LARGE and not called
    assert info.value.msg_id == msgpack.unpackb(big)["id"]  # read from the head only
    assert p.decode(big, max_bytes=len(big)).body.state == {"data": {"blob": "x" * 5000}}
    with pytest.raises(ProtocolError) as info:
        p.decode(big, max_bytes=len(big) - 1)
    assert info.value.code is ErrorCode.TOO_LARGE


def test_default_limit_is_one_mebibyte() -> None:
    assert p.DEFAULT_MAX_BYTES == 1024 * 1024
    with pytest.raises(ProtocolError) as info:
        p.decode(b"\x00" * (p.DEFAULT_MAX_BYTES + 1))
    assert info.value.code is ErrorCode.TOO_LARGE


def test_encode_refuses_over_the_limit() -> None:
    msg = carrying({"blob": "x" * 3000})
    with pytest.raises(ProtocolError) as info:
        p.encode(msg, max_bytes=1000)
    assert info.value.code is ErrorCode.TOO_LARGE


# ----------------------------------------------------------------- garbage and fuzz


GARBAGE = [
    b"",
    b"\xc1",  # never-used msgpack byte
    b"hello world",
    b"\x93\x01\x02\x03",  # an array, not a map
    b"\x81\x01\x02",  # a map with an int key
    pack(raw_envelope()) + b"\x00",  # trailing data
    b"\xdb\xff\xff\xff\xff",  # a str claiming 4 GiB
    b"\xdd\xff\xff\xff\xff",  # an array claiming 4 G items
    b"\xdf\xff\xff\xff\xff",  # a map claiming 4 G pairs
    b"\xa3\xff\xfe\xfd",  # invalid UTF-8
    b"\x91" * 5000 + b"\xc0",  # nested far too deep
    b"\xd4\x01\x00",  # an ext type
    b"\xd6\xff\x00\x00\x00\x01",  # a msgpack timestamp
]


@pytest.mark.parametrize("data", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_is_rejected_with_a_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        p.decode(data)
    assert info.value.code in (ErrorCode.BAD_MESSAGE, ErrorCode.INVALID_BODY)


def test_every_truncation_of_a_valid_message_is_rejected() -> None:
    data = p.encode(sample_message("control.state"))
    for cut in range(len(data)):
        with pytest.raises(ProtocolError):
            p.decode(data[:cut])


def test_random_bytes_and_mutations_only_ever_raise_protocol_error() -> None:
    rng = random.Random(20240611)
    valid = p.encode(sample_message("routes.result"))
    for i in range(3000):
        if i % 2:
            data = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
        else:
            data = bytearray(valid)
            for _ in range(rng.randint(1, 6)):
                data[rng.randrange(len(data))] = rng.getrandbits(8)
            data = bytes(data)
        try:
            p.decode(data)
        except ProtocolError:
            pass
        p.peek_id(data)  # never raises


def test_published_frames_are_checked() -> None:
    msg = p.published("container.exited", p.ContainerEvent("a", exit_code=1), src="s", seq=1, epoch="e")
    topic, payload = p.encode_published(msg)
    for frames in (
        [payload],
        [topic, payload, b""],
        [b"container.started", payload],
        [b"ping", p.encode(p.request("ping"))],
    ):
        with pytest.raises(ProtocolError) as info:
            p.decode_published(frames)
        assert info.value.code is ErrorCode.BAD_MESSAGE


# ------------------------------------------------------------------------- secrets


def _secret_bodies() -> list:
    s = Secret(CANARY)
    return [
        ("in plain data", lambda: carrying({"env": {"TOKEN": s}})),
        ("in a list", lambda: carrying({"cmd": ["--token", s]})),
        ("as a str field", lambda: p.request("container.stop", p.ContainerRef(s))),  # type: ignore[arg-type]
        ("as a map key", lambda: carrying({s: "v"})),
        ("in a snapshot", lambda: p.reply_ok(p.request("snapshot.get"), p.Snapshot("e", 1, {"github": {"env": [s]}}))),
        (
            "in an event",
            lambda: p.published(
                "state.event",
                p.StateEvent(message=s),  # type: ignore[arg-type]
                src="x",
                seq=1,
                epoch="e",
            ),
        ),
        ("in an error text", lambda: p.reply_error("x", ErrorCode.INTERNAL, s)),  # type: ignore[arg-type]
    ]


@pytest.mark.parametrize("case", _secret_bodies(), ids=lambda c: c[0])
def test_a_secret_anywhere_cannot_be_encoded(case) -> None:
    with pytest.raises(ProtocolError) as info:
        msg = case[1]()
        p.encode_published(msg) if msg.seq is not None else p.encode(msg)
    assert CANARY not in str(info.value) and CANARY not in repr(info.value)
    assert info.value.code is ErrorCode.INVALID_BODY


def test_to_plain_refuses_a_secret() -> None:
    with pytest.raises(ProtocolError) as info:
        p.to_plain(p.Snapshot("e", 1, {"env": {"K": Secret(CANARY)}}))
    assert "state.env.K" in info.value.message and CANARY not in str(info.value)
