"""A replica Swarm stops is drained first ([cluster] engine = swarm; Bridge.drain): a real
bridge in front of the time server in a container. While its node is still a target it
serves on and says "draining" (/health 503, so that the scheduler takes it out); once the
node is out of the target group and nothing is in flight for a second, it is let go."""

from __future__ import annotations

import threading
import time

import pytest
from bridge_support import (  # noqa: F401  (fixtures)
    Containers,
    RunningBridge,
    containers,
    http_request,
    initialize,
    post_mcp,
    serve_ready,
    start_bridge,
)

from tests.harness.waiting import wait_for

pytestmark = pytest.mark.docker

SID = "time"
CALL = {
    "jsonrpc": "2.0",
    "id": 3,
    "method": "tools/call",
    "params": {"name": "get_current_time", "arguments": {"timezone": "Etc/UTC"}},
}


@pytest.fixture
def served(docker_client, containers: Containers, time_server_image):
    running = start_bridge(docker_client, node="nodeaaaaaaaa", session_key=b"k" * 32)
    try:
        container = containers.run(time_server_image)
        yield running, serve_ready(running, SID, container), container.id
    finally:
        running.thread.stop()


def test_a_draining_replica_serves_until_its_node_is_out_of_the_target_group(served):
    bridge, port, container_id = served
    session = initialize(port, SID)
    bridge.set_registered({SID})
    let_go = threading.Event()
    bridge.drain(SID, container_id, let_go.set)
    health = http_request(port, "GET", f"/mcp/{SID}/health")
    assert health.status == 503 and health.json()["status"] == "draining"
    assert bridge.health(SID).state == "draining"  # what the scheduler reads: no target
    # Still a target: everything is served, old sessions and new ones.
    assert post_mcp(port, SID, CALL, session).status == 200
    assert post_mcp(port, SID, CALL, initialize(port, SID)).status == 200
    assert not let_go.wait(2.0)
    # Out of the target group and idle for a second: let go.
    out = time.monotonic()
    bridge.set_registered(set())
    wait_for(let_go.is_set, 10, "the replica let go")
    assert time.monotonic() - out >= 1.0


def test_a_new_replica_on_the_host_takes_over_and_the_drained_one_goes(
    served, containers: Containers, time_server_image
):
    # A rolling update that places the new replica where the old one drains.
    bridge, port, container_id = served
    session = initialize(port, SID)
    bridge.set_registered({SID})
    let_go = threading.Event()
    bridge.drain(SID, container_id, let_go.set)
    assert bridge.health(SID).state == "draining"
    bridge.serve(SID, port, containers.run(time_server_image).id)
    wait_for(let_go.is_set, 10, "the replaced replica let go")  # though its node is still a target
    assert bridge.wait_ready(SID, 60)
    assert bridge.health(SID).state == "ready"
    assert post_mcp(port, SID, CALL, session).status == 200  # the session carried over
    assert http_request(port, "GET", f"/mcp/{SID}/health").status == 200
