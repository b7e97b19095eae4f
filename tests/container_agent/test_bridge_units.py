"""Pure logic of the bridge: framing, line splitting, JSON-RPC re-addressing, sessions."""

from __future__ import annotations

import asyncio
import json
import struct

import pytest

from services.container_agent.bridge import jsonrpc
from services.container_agent.bridge.channel import Channel
from services.container_agent.bridge.config import BridgeConfig
from services.container_agent.bridge.http_common import origin_allowed, parse_accept, sse_event
from services.container_agent.bridge.proxy import SseEndpointRewriter
from services.container_agent.bridge.sessions import LEGACY_SSE, STREAMABLE_HTTP, SessionLimit, SessionTable
from services.container_agent.bridge.stderr_ring import StderrRing
from services.container_agent.bridge.upstream import IdAllocator
from services.container_agent.bridge.versions import negotiate
from services.container_agent.stdio import STDERR, STDOUT, FrameDecoder, LineSplitter


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


# --- attach stream framing ----------------------------------------------------


def test_frames_split_across_reads_and_merged_in_one():
    data = frame(STDOUT, b"hello\n") + frame(STDERR, b"oops\n") + frame(STDOUT, b"world\n")
    for cut in range(len(data) + 1):
        decoder = FrameDecoder()
        pieces = decoder.feed(data[:cut]) + decoder.feed(data[cut:])
        joined: dict[int, bytes] = {STDOUT: b"", STDERR: b""}
        for stream, payload in pieces:
            joined[stream] += payload
        assert joined == {STDOUT: b"hello\nworld\n", STDERR: b"oops\n"}, cut


def test_frames_byte_by_byte():
    data = frame(STDOUT, b"x" * 300) + frame(STDERR, b"")
    decoder = FrameDecoder()
    out = b""
    for i in range(len(data)):
        for stream, payload in decoder.feed(data[i : i + 1]):
            assert stream == STDOUT
            out += payload
    assert out == b"x" * 300


def test_lines_are_split_and_joined_across_chunks():
    splitter = LineSplitter(max_line=100)
    assert splitter.feed(b'{"a":') == []
    assert splitter.feed(b'1}\n{"b":2}\r\n\n{"c"') == [b'{"a":1}', b'{"b":2}']
    assert splitter.feed(b":3}") == []
    assert splitter.flush() == b'{"c":3}'
    assert splitter.flush() is None


def test_overlong_lines_are_dropped_whole():
    splitter = LineSplitter(max_line=10)
    assert splitter.feed(b"0123456789ABCDEF") == []  # too long already, no newline yet
    assert splitter.feed(b"more of the same line\nok\n") == [b"ok"]
    assert splitter.feed(b"x" * 11 + b"\nfine\n") == [b"fine"]
    assert splitter.feed(b"12345") == []
    assert splitter.feed(b"678901\nlast\n") == [b"last"]  # joined length over the limit
    assert splitter.dropped == 3


# --- JSON-RPC -----------------------------------------------------------------


@pytest.mark.parametrize(
    "msg, kind",
    [
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, jsonrpc.Kind.REQUEST),
        ({"jsonrpc": "2.0", "id": "a", "method": "x", "params": {}}, jsonrpc.Kind.REQUEST),
        ({"jsonrpc": "2.0", "method": "notifications/initialized"}, jsonrpc.Kind.NOTIFICATION),
        ({"jsonrpc": "2.0", "id": 1, "result": {}}, jsonrpc.Kind.RESPONSE),
        ({"jsonrpc": "2.0", "id": 1, "error": {"code": 1, "message": "m"}}, jsonrpc.Kind.RESPONSE),
    ],
)
def test_classify_valid(msg, kind):
    assert jsonrpc.classify(msg) is kind


@pytest.mark.parametrize(
    "msg",
    [
        [],
        "text",
        {"id": 1, "method": "x"},
        {"jsonrpc": "1.0", "id": 1, "method": "x"},
        {"jsonrpc": "2.0", "id": None, "method": "x"},
        {"jsonrpc": "2.0", "id": True, "method": "x"},
        {"jsonrpc": "2.0", "id": 1.5, "method": "x"},
        {"jsonrpc": "2.0", "id": 1, "method": 7},
        {"jsonrpc": "2.0", "id": 1, "method": "x", "params": 3},
        {"jsonrpc": "2.0", "id": 1},
        {"jsonrpc": "2.0", "id": 1, "result": {}, "error": {}},
    ],
)
def test_classify_invalid(msg):
    assert isinstance(jsonrpc.classify(msg), str)


def test_fast_path_recognises_the_canonical_response_only():
    line = b'{"jsonrpc":"2.0","id":12345,"result":{"id":12345}}'
    bid, rest = jsonrpc.fast_response_id(line)
    assert bid == 12345
    assert json.loads(jsonrpc.readdress_fast(line, rest, b'"abc"')) == {
        "jsonrpc": "2.0",
        "id": "abc",
        "result": {"id": 12345},
    }
    assert jsonrpc.fast_response_id(b'{"jsonrpc":"2.0","id":5,"error":{"code":1,"message":"m"}}')[0] == 5
    for other in (
        b'{"jsonrpc":"2.0","id":5,"method":"ping"}',  # a server request
        b'{"jsonrpc":"2.0","id":"5","result":{}}',  # not our id form
        b'{"jsonrpc": "2.0", "id": 5, "result": {}}',  # other spacing: the parsing path
        b'{"result":{},"jsonrpc":"2.0","id":5}',
    ):
        assert jsonrpc.fast_response_id(other) is None


@pytest.mark.parametrize(
    "line",
    [
        b'{"result":{"a":[1,2]},"jsonrpc":"2.0","id":77}',
        b'{"result": {"a": [1, 2]}, "jsonrpc": "2.0", "id": 77}',
        b'{"jsonrpc": "2.0", "id": 77, "result": {"id": 77}}',
        b'{"id":77,"result":{"nested":{"id":77}},"jsonrpc":"2.0"}',
        b' {"jsonrpc":"2.0","id":77,"result":null} ',
    ],
)
def test_swap_response_id_where_the_position_is_certain(line):
    swapped = jsonrpc.swap_response_id(line, 77, b'"client-1"')
    assert swapped is not None
    expected = json.loads(line)
    expected["id"] = "client-1"
    assert json.loads(swapped) == expected


@pytest.mark.parametrize(
    "line",
    [
        # The top-level id sits between nested members: not provable by position.
        b'{"result":{"items":[{"id":77}]},"id":77,"jsonrpc":"2.0"}',
        # A look-alike inside a key string that contains an escaped quote.
        b'{"result":{},"x\\"id":77,"id":77,"jsonrpc":"2.0"}',
        # 770 is not 77.
        b'{"result":{},"jsonrpc":"2.0","id":770}',
    ],
)
def test_swap_response_id_declines_when_unsure(line):
    swapped = jsonrpc.swap_response_id(line, 77, b'"c"')
    if swapped is not None:  # if it answers at all, it must be right
        expected = json.loads(line)
        expected["id"] = "c"
        assert json.loads(swapped) == expected


def test_error_and_result_builders_are_valid_json():
    assert json.loads(jsonrpc.error(b'"x"', -32000, 'a "quoted"\nmessage')) == {
        "jsonrpc": "2.0",
        "id": "x",
        "error": {"code": -32000, "message": 'a "quoted"\nmessage'},
    }
    assert json.loads(jsonrpc.result(b"3", b'{"ok":true}')) == {"jsonrpc": "2.0", "id": 3, "result": {"ok": True}}
    assert b"\n" not in jsonrpc.error(b"null", 1, "two\nlines")


def test_id_allocator_skips_ids_in_use_and_stays_in_int32():
    ids = IdAllocator()
    first = ids.take({})
    assert ids.take({first + 1: None}) == first + 2
    ids._next = (1 << 31) - 1
    assert ids.take({}) == (1 << 31) - 1
    assert ids.take({}) == 1 << 20


# --- protocol versions and HTTP checks ------------------------------------------


def test_version_negotiation():
    assert negotiate("2025-06-18", "2025-11-25") == "2025-06-18"
    assert negotiate("2024-11-05", "2025-06-18") == "2024-11-05"
    assert negotiate("2025-11-25", "2025-06-18") == "2025-06-18"  # the server's is older
    assert negotiate("1999-01-01", "2025-06-18") == "2025-06-18"
    assert negotiate(None, "2025-03-26") == "2025-03-26"


def test_accept_header():
    assert parse_accept(None) == parse_accept("*/*") == parse_accept("") != parse_accept("text/html")
    both = parse_accept("application/json, text/event-stream")
    assert both.json and both.sse
    assert parse_accept("application/json").sse is False
    assert parse_accept("text/event-stream").json is False
    html = parse_accept("text/html")
    assert not html.json and not html.sse


def test_origin_check():
    closed = BridgeConfig()
    assert origin_allowed(closed, None)
    assert not origin_allowed(closed, "http://evil.example")
    listed = BridgeConfig(allowed_origins="http://localhost:6274, http://127.0.0.1:6274")
    assert origin_allowed(listed, "http://localhost:6274")
    assert not origin_allowed(listed, "http://localhost:6275")
    assert origin_allowed(listed, "http://127.0.0.1:6274")
    assert origin_allowed(BridgeConfig(allowed_origins="*"), "http://anything")


def test_sse_event_never_breaks_lines():
    assert sse_event(b'{"a":\r1}') == b'event: message\ndata: {"a":1}\n\n'
    assert (
        sse_event(b"/mcp/x/messages?sessionId=1", b"endpoint")
        == b"event: endpoint\ndata: /mcp/x/messages?sessionId=1\n\n"
    )


def test_config_validation():
    # The [bridge] section's own checks (common/settings.py) apply to a config built in code.
    with pytest.raises(ValueError, match="request_timeout_seconds"):
        BridgeConfig(request_timeout_seconds=0)
    with pytest.raises(ValueError, match="sse_keepalive_seconds"):
        BridgeConfig(sse_keepalive_seconds=60)
    with pytest.raises(ValueError, match="allowed_origins"):
        BridgeConfig(allowed_origins=["http://x"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_body_bytes"):
        BridgeConfig(max_body_bytes=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"tokens = \*\*\*"):
        BridgeConfig(tokens="short")  # the value is never shown


# --- sessions, channels, stderr ------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sessions_expire_when_idle_but_not_while_busy():
    clock = Clock()
    table = SessionTable(idle_timeout=60, max_sessions=10, clock=clock)
    idle, _ = table.create(STREAMABLE_HTTP, "2025-06-18")
    streaming, _ = table.create(LEGACY_SSE, "2024-11-05")
    table.open_stream(streaming, Channel())
    waiting, _ = table.create(STREAMABLE_HTTP, "2025-06-18")
    waiting.inflight[1] = object()
    used, _ = table.create(STREAMABLE_HTTP, "2025-06-18")
    clock.now += 50
    assert table.get(used.id) is used  # touched: idle time starts again
    clock.now += 20
    assert table.expire() == [idle]
    assert table.get(idle.id) is None and idle.closed
    assert len(table) == 3
    clock.now += 100
    assert table.expire() == [used]


def test_full_table_evicts_the_least_recently_used_idle_session():
    clock = Clock()
    table = SessionTable(idle_timeout=60, max_sessions=2, clock=clock, max_per_address=5)
    busy, _ = table.create(STREAMABLE_HTTP, "v")
    table.open_stream(busy, Channel())
    old, _ = table.create(STREAMABLE_HTTP, "v")
    new, evicted = table.create(STREAMABLE_HTTP, "v")
    assert evicted is old and new is not None and len(table) == 2
    table.open_stream(new, Channel())
    with pytest.raises(SessionLimit) as full:
        table.create(STREAMABLE_HTTP, "v")
    assert full.value.status == 503


def test_a_flood_from_one_address_churns_only_its_own_sessions():
    clock = Clock()
    table = SessionTable(idle_timeout=60, max_sessions=100, clock=clock, max_per_address=10)
    legit = [table.create(STREAMABLE_HTTP, "v", "10.0.0.1")[0] for _ in range(5)]
    held = [table.create(STREAMABLE_HTTP, "v", "10.6.6.6")[0] for _ in range(4)]
    for session in held:  # the attacker keeps streams open: busy, never evicted
        table.open_stream(session, Channel())
    for _ in range(10_000):
        session, evicted = table.create(STREAMABLE_HTTP, "v", "10.6.6.6")
        assert evicted is None or evicted.address == "10.6.6.6"
    assert all(table.get(s.id) is s for s in legit)
    assert len(table) == 5 + 10
    fresh, evicted = table.create(STREAMABLE_HTTP, "v", "10.0.0.2")
    assert fresh is not None and evicted is None
    for session in list(table.all()):
        if session.address == "10.6.6.6" and not session.busy:
            table.open_stream(session, Channel())
    with pytest.raises(SessionLimit) as limit:
        table.create(STREAMABLE_HTTP, "v", "10.6.6.6")
    assert limit.value.status == 429


def test_a_full_table_takes_room_from_the_address_holding_the_most():
    table = SessionTable(idle_timeout=60, max_sessions=6, clock=Clock(), max_per_address=5)
    few = table.create(STREAMABLE_HTTP, "v", "a")[0]
    many = [table.create(STREAMABLE_HTTP, "v", "b")[0] for _ in range(5)]
    _, evicted = table.create(STREAMABLE_HTTP, "v", "c")
    assert evicted is many[0] and table.get(few.id) is few


def test_channel_closes_after_the_expected_answers():
    async def run() -> None:
        channel = Channel(expected=2)
        assert not await channel.wait(0.01)  # nothing yet: times out
        channel.put(b"progress")
        channel.put(b"one", final=True)
        assert not channel.closed
        channel.put(b"two", final=True)
        assert channel.closed and not channel.exhausted
        assert channel.drain() == [(b"progress", False), (b"one", True), (b"two", True)]
        assert channel.exhausted
        assert channel.put(b"late", final=True) is False

        waiting = Channel()
        waiter = asyncio.ensure_future(waiting.wait(5))
        await asyncio.sleep(0)
        waiting.put(b"x")
        assert await waiter is True

    asyncio.run(run())


def test_stderr_ring_keeps_the_last_lines():
    ring = StderrRing(3)
    for n in range(5):
        ring.append(f"line {n}".encode())
    ring.append(b"\xff bad utf-8")
    assert ring.tail(10) == ["line 3", "line 4", "\ufffd bad utf-8"]
    assert ring.tail(1) == ["\ufffd bad utf-8"]
    assert ring.tail(0) == []


# --- reverse proxy: the legacy endpoint event ----------------------------------


def test_endpoint_event_gets_the_public_prefix():
    rewriter = SseEndpointRewriter("/mcp/web")
    stream = (
        b"event: endpoint\r\ndata: /messages/?session_id=abc\r\n\r\n"
        b"event: message\ndata: /not/an/endpoint\n\n"
        b"event: endpoint\ndata: http://127.0.0.1:8000/messages/?session_id=def\n\n"
    )
    out = b"".join(rewriter.feed(stream[i : i + 7]) for i in range(0, len(stream), 7)) + rewriter.flush()
    assert out == (
        b"event: endpoint\r\ndata: /mcp/web/messages/?session_id=abc\n\r\n"
        b"event: message\ndata: /not/an/endpoint\n\n"
        b"event: endpoint\ndata: /mcp/web/messages/?session_id=def\n\n"
    )


def test_endpoint_rewrite_strips_the_servers_own_base_path():
    rewriter = SseEndpointRewriter("/mcp/web/", base_path="/api")
    assert rewriter.rewrite(b"/api/messages?x=1") == b"/mcp/web/messages?x=1"
    assert rewriter.rewrite(b"messages?x=1") == b"messages?x=1"  # relative: resolves under the prefix already
    assert rewriter.at_line_start
    rewriter.feed(b"data: partial")
    assert not rewriter.at_line_start


@pytest.mark.parametrize(
    "bind,host,allowed",
    [
        ("127.0.0.1", "127.0.0.1:8001", True),
        ("127.0.0.1", "localhost:8001", True),
        ("127.0.0.1", "[::1]:8001", True),
        ("127.0.0.1", "localhost", True),
        ("127.0.0.1", "mcp.example.com", True),  # the configured public name
        ("127.0.0.1", "MCP.example.com:443", True),
        ("127.0.0.1", "evil.example:8001", False),  # a rebinding attacker's name
        ("127.0.0.1", "10.0.0.5:8001", False),
        ("127.0.0.1", None, False),
        ("127.0.0.1", "", False),
        ("0.0.0.0", "evil.example:8001", True),  # behind the ALB: names it cannot know; tokens guard it
    ],
)
def test_host_check_against_dns_rebinding(bind, host, allowed):
    from services.container_agent.bridge.http_common import host_allowed

    config = BridgeConfig(bind_host=bind, public_host="mcp.example.com")
    assert host_allowed(config, host) is allowed


def test_session_ids_survive_a_restart_but_not_an_end_in_this_run():
    from services.container_agent.bridge.sessions import SessionIds

    key = b"k" * 32
    earlier = SessionIds(key, clock=lambda: 1000.0)
    made = earlier.new("time", {"sampling": {}, "elicitation": {"form": {}, "url": {}}})
    later = SessionIds(key, clock=lambda: 2000.0)
    assert later.check("time", made) == {"sampling": {}, "elicitation": {"form": {}}}
    assert later.check("other", made) is None  # bound to its server
    assert SessionIds(b"x" * 32, clock=lambda: 2000.0).check("time", made) is None  # another key
    assert later.check("time", made[:-2] + "AA") is None  # altered
    assert earlier.check("time", made) is None  # this run made it and no longer knows it: it ended
    assert later.check("time", "abc") is None


def test_a_swarm_session_id_names_its_owner_and_only_the_owner_takes_it_back():
    from services.container_agent.bridge.sessions import SessionIds

    key = b"c" * 32  # the cluster's: every node has it
    on_a = SessionIds(key, clock=lambda: 1000.0, owner="nodeaaaaaaaa")
    made = on_a.new("time", {"roots": {}})
    on_b = SessionIds(key, clock=lambda: 2000.0, owner="nodebbbbbbbb")
    assert on_b.owner_of("time", made) == "nodeaaaaaaaa"  # b sends its requests to a
    assert on_b.check("time", made) is None  # ... and never takes it over
    a_again = SessionIds(key, clock=lambda: 2000.0, owner="nodeaaaaaaaa")
    assert a_again.check("time", made) == {"roots": {}}  # a's next run does
    # The owner cannot be changed: it is signed.
    forged = made.replace("nodeaaaaaaaa", "nodebbbbbbbb")
    assert on_b.owner_of("time", forged) is None and on_b.check("time", forged) is None
    assert on_b.owner_of("other", made) is None  # bound to its server
    # An id of one host names no owner.
    assert on_b.owner_of("time", SessionIds(key).new("time", None)) == ""


def test_swarms_stop_signal_is_a_drain_and_no_other_kill_is():
    from services.container_agent import events

    def kill(signal: str, task: bool = True) -> dict:
        attributes = {
            "signal": signal,
            "mcp-orchestrator.managed": "true",
            "mcp-orchestrator.server-id": "time",
            "mcp-orchestrator.host-port": "8123",
            "mcp-orchestrator.spec-hash": "h",
        }
        if task:
            attributes["com.docker.swarm.task.id"] = "t1"
        return {"Type": "container", "Action": "kill", "Actor": {"ID": "c1", "Attributes": attributes}}

    change = events.translate(kill("28"))
    assert change is not None and (change.kind, change.server_id, change.container_id) == ("drain", "time", "c1")
    assert events.translate(kill("15")) is None  # a plain stop: its die follows
    assert events.translate(kill("28", task=False)) is None  # a container of one host: a resize, nothing more
