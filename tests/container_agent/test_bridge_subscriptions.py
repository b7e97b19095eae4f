"""Change notifications through the bridge: 2026-07-28 `subscriptions/listen` streams and
handshake-era resource subscriptions, in front of a server of either era. Each client
gets what it asked for and nothing else, and the server hears of a resource once,
however many clients hold it."""

from __future__ import annotations

import asyncio
import json

import pytest
from bridge_support import (  # noqa: F401  (fixtures)
    ACCEPT_BOTH,
    Containers,
    RunningBridge,
    SseStream,
    bridge,
    containers,
    http_request,
    initialize,
    post_mcp,
    serve_ready,
)

pytest.importorskip("mcp.client.client")

from mcp.client.client import Client  # noqa: E402
from mcp.shared.subscriptions import ResourceUpdated, ToolsListChanged  # noqa: E402

from tests.harness.waiting import wait_for  # noqa: E402

pytestmark = pytest.mark.docker

V = "2026-07-28"
SUB = "io.modelcontextprotocol/subscriptionId"
NOTE = "memo://note"


def meta() -> dict:
    return {"io.modelcontextprotocol/protocolVersion": V, "io.modelcontextprotocol/clientCapabilities": {}}


def modern_call(port: int, sid: str, method: str, params: dict, request_id=1, name=None):
    headers = {"MCP-Protocol-Version": V, "Mcp-Method": method}
    if name is not None:
        headers["Mcp-Name"] = name
    body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**params, "_meta": meta()}}
    return post_mcp(port, sid, body, headers=headers)


def call_tool(port: int, sid: str, tool: str, arguments: dict, request_id=1):
    return modern_call(port, sid, "tools/call", {"name": tool, "arguments": arguments}, request_id, name=tool)


def listen(port: int, sid: str, request_id, **notifications) -> SseStream:
    body = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "subscriptions/listen",
        "params": {"_meta": meta(), "notifications": notifications},
    }
    headers = {
        "Accept": ACCEPT_BOTH,
        "Content-Type": "application/json",
        "MCP-Protocol-Version": V,
        "Mcp-Method": "subscriptions/listen",
    }
    stream = SseStream(port, f"/mcp/{sid}/mcp", headers=headers, method="POST", body=body)
    assert stream.status == 200, stream.response.read()
    return stream


def next_message(stream: SseStream) -> dict:
    return json.loads(stream.next_event()[1])


@pytest.fixture(scope="module")
def modern_port(bridge: RunningBridge, containers: Containers, time_server_image) -> int:
    return serve_ready(bridge, "modern", containers.modern_server(time_server_image))


def test_the_sdk_client_listens_for_list_changes_and_resource_updates(bridge, modern_port):
    url = f"http://127.0.0.1:{modern_port}/mcp/modern/mcp"

    async def run():
        async with Client(url, mode=V) as client, Client(url, mode=V) as other:
            before = {t.name for t in (await client.list_tools()).tools}
            async with client.listen(tools_list_changed=True, resource_subscriptions=[NOTE]) as sub:
                await other.call_tool("add_tool", {"name": "sdk_added"})
                events = sub.__aiter__()
                first = await asyncio.wait_for(events.__anext__(), 20)
                assert isinstance(first, ToolsListChanged)
                # The bridge's cached list was dropped with the change.
                after = {t.name for t in (await client.list_tools()).tools}
                assert after == before | {"sdk_added"}
                await other.call_tool("write_note", {"text": "changed"})
                second = await asyncio.wait_for(events.__anext__(), 20)
                assert isinstance(second, ResourceUpdated) and str(second.uri) == NOTE
                read = await client.read_resource(NOTE)
                assert read.contents[0].text == "changed"

    asyncio.run(asyncio.wait_for(run(), 90))
    assert bridge.health("modern").sessions == 0  # no Mcp-Session-Id was ever made


def test_each_listen_stream_gets_only_its_own_filter_tagged_with_its_id(modern_port):
    notes = listen(modern_port, "modern", "notes", resourceSubscriptions=[NOTE])
    tools = listen(modern_port, "modern", 7, toolsListChanged=True)
    try:
        for stream, sub_id, agreed in (
            (notes, "notes", {"resourceSubscriptions": [NOTE]}),
            (tools, 7, {"toolsListChanged": True}),
        ):
            ack = next_message(stream)
            assert ack["method"] == "notifications/subscriptions/acknowledged"
            assert ack["params"] == {"_meta": {SUB: sub_id}, "notifications": agreed}
        assert call_tool(modern_port, "modern", "write_note", {"text": "a"}).status == 200
        assert next_message(notes) == {
            "jsonrpc": "2.0",
            "method": "notifications/resources/updated",
            "params": {"uri": NOTE, "_meta": {SUB: "notes"}},
        }
        assert call_tool(modern_port, "modern", "add_tool", {"name": "filtered"}).status == 200
        assert next_message(tools) == {
            "jsonrpc": "2.0",
            "method": "notifications/tools/list_changed",
            "params": {"_meta": {SUB: 7}},
        }
        # The notes stream did not get the list change: its next message is the next update.
        assert call_tool(modern_port, "modern", "write_note", {"text": "b"}).status == 200
        assert next_message(notes)["method"] == "notifications/resources/updated"
    finally:
        notes.close()
        tools.close()


def test_a_listen_stream_is_kept_alive(docker_client, containers, time_server_image):
    from bridge_support import start_bridge

    quick = start_bridge(docker_client, sse_keepalive_seconds=0.5)
    try:
        port = serve_ready(quick, "alive", containers.modern_server(time_server_image))
        stream = listen(port, "alive", 1, toolsListChanged=True)
        try:
            next_message(stream)  # the acknowledgement
            assert stream.next_comment(10).startswith(":")
        finally:
            stream.close()
    finally:
        quick.thread.stop()


def test_a_listen_filter_of_the_wrong_shape_is_refused(modern_port):
    reply = modern_call(modern_port, "modern", "subscriptions/listen", {"notifications": {"toolsListChanged": "yes"}})
    assert reply.status == 400 and reply.json()["error"]["code"] == -32602


def test_a_handshake_session_gets_the_updates_of_what_it_subscribed_only(modern_port):
    subscriber, bystander = initialize(modern_port, "modern"), initialize(modern_port, "modern")
    streams = {
        s: SseStream(modern_port, "/mcp/modern/mcp", headers={"Mcp-Session-Id": s}) for s in (subscriber, bystander)
    }
    try:
        subscribe = {"jsonrpc": "2.0", "id": 2, "method": "resources/subscribe", "params": {"uri": NOTE}}
        assert post_mcp(modern_port, "modern", subscribe, subscriber).json()["result"] == {}
        assert call_tool(modern_port, "modern", "write_note", {"text": "c"}).status == 200
        update = next_message(streams[subscriber])
        assert update["method"] == "notifications/resources/updated" and update["params"]["uri"] == NOTE
        assert SUB not in update["params"].get("_meta", {})  # the bridge's own listen id stays inside
        # Every session hears list changes; the bystander's first message is that one.
        assert call_tool(modern_port, "modern", "add_tool", {"name": "seen_by_all"}).status == 200
        assert next_message(streams[bystander])["method"] == "notifications/tools/list_changed"
        assert next_message(streams[subscriber])["method"] == "notifications/tools/list_changed"
    finally:
        for stream in streams.values():
            stream.close()


def test_a_handshake_era_server_subscribes_each_resource_once(bridge, containers, busybox_image):
    port = serve_ready(bridge, "legacy-subs", containers.fake_server(busybox_image))

    def heard(what: str) -> int:
        return sum(f"fake server: {what} file:///a" in line for line in bridge.stderr_tail("legacy-subs", 200))

    first = listen(port, "legacy-subs", "first", resourceSubscriptions=["file:///a"])
    second = listen(port, "legacy-subs", "second", resourceSubscriptions=["file:///a"])
    session = initialize(port, "legacy-subs")
    try:
        for stream in (first, second):
            assert next_message(stream)["params"]["notifications"] == {"resourceSubscriptions": ["file:///a"]}
        subscribe = {"jsonrpc": "2.0", "id": 2, "method": "resources/subscribe", "params": {"uri": "file:///a"}}
        assert post_mcp(port, "legacy-subs", subscribe, session).json()["result"] == {}
        wait_for(lambda: heard("subscribe") == 1, 10, "the server's one subscription")
        assert modern_call(port, "legacy-subs", "test/update", {}).status == 200
        for stream, sub_id in ((first, "first"), (second, "second")):
            assert next_message(stream)["params"] == {"uri": "file:///a", "_meta": {SUB: sub_id}}
    finally:
        first.close()
        second.close()
    # The streams are gone but the session still holds the resource: the session's end
    # is what unsubscribes it, once.
    assert http_request(port, "DELETE", "/mcp/legacy-subs/mcp", None, {"Mcp-Session-Id": session}).status == 204
    wait_for(lambda: heard("unsubscribe") == 1, 10, "the server's one unsubscription")
    assert heard("subscribe") == 1 and heard("unsubscribe") == 1
