"""Multi round-trip requests: a handshake-era stdio server asks its client something
(an elicitation) while it serves a 2026-07-28 client's tools/call. The client gets an
InputRequiredResult, retries with its answer and the signed requestState, and the held
call finishes; a forged, moved or late state is refused, and a client that cannot
answer gets -32021 while the server's call is cancelled."""

from __future__ import annotations

import asyncio

import pytest
from bridge_support import (  # noqa: F401  (fixtures)
    Containers,
    RunningBridge,
    bridge,
    containers,
    post_mcp,
    serve_ready,
    start_bridge,
)

pytest.importorskip("mcp.client.client")

import mcp_types as types  # noqa: E402
from mcp.client.client import Client  # noqa: E402

from tests.harness.waiting import wait_for  # noqa: E402

pytestmark = pytest.mark.docker

V = "2026-07-28"
ASK_TOOL = '[{"name":"ask","description":"asks a name","inputSchema":{"type":"object"}}]'
ELICITATION = {"elicitation": {"form": {}}}


@pytest.fixture(scope="module")
def port(bridge: RunningBridge, containers: Containers, busybox_image) -> int:
    return serve_ready(bridge, "asker", containers.fake_server(busybox_image, tools=ASK_TOOL))


def call(port: int, sid: str = "asker", capabilities=None, request_id=1, tool="ask", **extra):
    meta = {"io.modelcontextprotocol/protocolVersion": V, "io.modelcontextprotocol/clientCapabilities": capabilities}
    body = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": tool, "arguments": {}, "_meta": meta, **extra},
    }
    headers = {"MCP-Protocol-Version": V, "Mcp-Method": "tools/call", "Mcp-Name": tool}
    return post_mcp(port, sid, body, headers=headers)


def answers_heard(bridge, sid: str = "asker") -> list[str]:
    return [line for line in bridge.stderr_tail(sid, 200) if "elicitation answer" in line]


def test_the_sdk_client_answers_an_elicitation_of_a_handshake_era_server(bridge, port):
    asked = []

    async def on_elicit(context, params: types.ElicitRequestParams):
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    async def run():
        url = f"http://127.0.0.1:{port}/mcp/asker/mcp"
        async with Client(url, mode=V, elicitation_callback=on_elicit) as client:
            return await client.call_tool("ask", {})

    result = asyncio.run(asyncio.wait_for(run(), 60))
    assert asked == ["Your name?"]
    assert result.content[0].text == "hello Ada"
    assert bridge.health("asker").sessions == 0


def test_the_round_trip_over_raw_http_and_the_states_it_refuses(bridge, port):
    first = call(port, capabilities=ELICITATION, request_id="first")
    body = first.json()
    assert first.status == 200 and body["id"] == "first"
    result = body["result"]
    assert result["resultType"] == "input_required"
    ((key, asked),) = result["inputRequests"].items()
    assert asked["method"] == "elicitation/create" and asked["params"]["message"] == "Your name?"
    state = result["requestState"]
    answer = {key: {"action": "accept", "content": {"name": "Grace"}}}

    def refused(reply) -> bool:
        return reply.json()["error"]["code"] == -32602

    # Altered, bound to another tool, or presented with other credentials: refused, and the
    # held call is not touched.
    assert refused(call(port, capabilities=ELICITATION, inputResponses=answer, requestState=state[:-2] + "xx"))
    assert refused(call(port, capabilities=ELICITATION, tool="other", inputResponses=answer, requestState=state))
    retried = call(port, capabilities=ELICITATION, inputResponses=answer, requestState=state)
    assert retried.status == 200 and retried.json()["result"]["content"][0]["text"] == "hello Grace"
    assert refused(call(port, capabilities=ELICITATION, inputResponses=answer, requestState=state))  # used
    assert len(answers_heard(bridge)) >= 1


def test_a_client_without_the_capability_gets_32021_and_the_call_is_cancelled(bridge, port):
    before = sum("cancelled:" in line for line in bridge.stderr_tail("asker", 200))
    reply = call(port, capabilities={}, request_id=9)
    assert reply.status == 400  # the spec's status for a missing client capability
    error = reply.json()["error"]
    assert error["code"] == -32021 and error["data"] == {"requiredCapabilities": {"elicitation": {}}}
    wait_for(
        lambda: sum("cancelled:" in line for line in bridge.stderr_tail("asker", 200)) > before,
        10,
        "notifications/cancelled at the server",
    )


def test_a_state_is_bound_to_the_clients_credentials(docker_client, containers, busybox_image):
    guarded = start_bridge(docker_client, auth="bearer", tokens="alpha-token-0123456789,beta-token-0123456789")
    try:
        port = serve_ready(guarded, "guarded", containers.fake_server(busybox_image, tools=ASK_TOOL))

        def as_(token: str, **extra):
            meta = {
                "io.modelcontextprotocol/protocolVersion": V,
                "io.modelcontextprotocol/clientCapabilities": ELICITATION,
            }
            body = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "ask", "arguments": {}, "_meta": meta, **extra},
            }
            headers = {
                "MCP-Protocol-Version": V,
                "Mcp-Method": "tools/call",
                "Mcp-Name": "ask",
                "Authorization": f"Bearer {token}",
            }
            return post_mcp(port, "guarded", body, headers=headers)

        result = as_("alpha-token-0123456789").json()["result"]
        ((key, _),) = result["inputRequests"].items()
        answer = {key: {"action": "accept", "content": {"name": "Eve"}}}
        theft = as_("beta-token-0123456789", inputResponses=answer, requestState=result["requestState"])
        assert theft.json()["error"]["code"] == -32602
        own = as_("alpha-token-0123456789", inputResponses=answer, requestState=result["requestState"])
        assert own.json()["result"]["content"][0]["text"] == "hello Eve"
    finally:
        guarded.thread.stop()


def test_an_abandoned_round_is_cancelled_at_the_server(docker_client, containers, busybox_image):
    quick = start_bridge(docker_client, request_timeout_seconds=1.0)
    try:
        port = serve_ready(quick, "quick", containers.fake_server(busybox_image, tools=ASK_TOOL))
        assert call(port, "quick", capabilities=ELICITATION).json()["result"]["resultType"] == "input_required"
        # Nobody retries: the server's question times out, which lets its call finish,
        # and the call is cancelled.
        wait_for(lambda: answers_heard(quick, "quick"), 15, "the timed-out answer at the server")
        assert '"error"' in answers_heard(quick, "quick")[0]
        wait_for(lambda: any("cancelled:" in t for t in quick.stderr_tail("quick", 200)), 15, "the cancellation")
    finally:
        quick.thread.stop()


def test_a_modern_servers_question_reaches_a_handshake_era_client_as_a_request(bridge, containers, time_server_image):
    """The other way round: a 2026-07-28 server answers with an InputRequiredResult, and
    a handshake-era client (the SDK in legacy mode) is asked with elicitation/create on
    its call's stream; the bridge retries the call with the answer."""
    port = serve_ready(bridge, "modern-asker", containers.modern_server(time_server_image))
    asked = []

    async def on_elicit(context, params: types.ElicitRequestParams):
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    async def run():
        url = f"http://127.0.0.1:{port}/mcp/modern-asker/mcp"
        async with Client(url, mode="legacy", elicitation_callback=on_elicit) as client:
            return await client.call_tool("greet", {})

    result = asyncio.run(asyncio.wait_for(run(), 60))
    assert asked == ["What is your name?"]
    assert result.content[0].text.startswith("hello Ada (")
