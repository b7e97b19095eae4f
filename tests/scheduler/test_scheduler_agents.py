"""The link to an agent over real ZeroMQ sockets: bounded waits, back-off, recovery."""

from __future__ import annotations

import tempfile
import threading
import time

import pytest
import zmq

from common.protocol import ContainerRef, ErrorCode, ServiceError
from common.reqrep import RemoteError, RepServer
from services.scheduler.agents import AgentLink, AgentUnavailable


@pytest.fixture
def ctx():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


@pytest.fixture
def endpoint():
    with tempfile.TemporaryDirectory(prefix="link-", dir="/tmp") as d:
        yield f"ipc://{d}/agent.sock"


def link(ctx, endpoint, clock, silent=lambda: False):
    return AgentLink(
        "test-agent",
        ctx,
        endpoint,
        timeout_ms=300,
        attempts=2,
        src="test",
        max_bytes=1 << 20,
        silent=silent,
        clock=clock,
    )


def test_an_absent_agent_fails_fast_and_backs_off(ctx, endpoint):
    now = [100.0]
    agent = link(ctx, endpoint, lambda: now[0])
    started = time.monotonic()
    with pytest.raises(AgentUnavailable):
        agent.call("ping")
    assert time.monotonic() - started < 3
    assert not agent.health().available and agent.next_try_in() == 1.0
    with pytest.raises(AgentUnavailable, match="unavailable"):
        agent.call("ping")  # in back-off: no wait at all
    now[0] += 1.0
    with pytest.raises(AgentUnavailable):
        agent.call("ping")
    assert agent.next_try_in() == 2.0  # doubled
    agent.heard()  # its heartbeats are back
    assert agent.due()
    agent.close()


def test_an_agent_that_answers_is_available_even_when_it_refuses(ctx, endpoint):
    def refuse(msg):
        raise ServiceError(ErrorCode.NOT_FOUND, "no such server")

    server = RepServer(ctx, endpoint, {"container.stop": refuse}, src="agent")
    agent = link(ctx, endpoint, time.monotonic)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            if server.socket.poll(50):
                server.handle_ready()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        agent.call("ping")
        assert agent.health().available and agent.health().error is None
        with pytest.raises(RemoteError):
            agent.call("container.stop", ContainerRef(server_id="x"))
        assert agent.health().available
    finally:
        stop.set()
        thread.join()
        server.close()
        agent.close()


def test_a_silent_agent_that_failed_is_not_asked_again(ctx, endpoint):
    silent = [False]
    now = [0.0]
    agent = link(ctx, endpoint, lambda: now[0], silent=lambda: silent[0])
    agent._answered()  # it was up
    silent[0] = True
    with pytest.raises(AgentUnavailable):
        agent.call("ping")  # the one request that finds it gone
    now[0] += 100.0
    assert not agent.due() and agent.wait_for_heartbeat()
    silent[0] = False
    agent.heard()
    assert agent.due()
    agent.close()


def test_an_agent_that_answers_again_after_a_failure_makes_its_state_forgotten(ctx, endpoint):
    """It may be a new process that has not yet published its new epoch: what the old one
    said (routes, containers) must not be shown as current meanwhile."""
    backs = []
    now = [0.0]
    agent = AgentLink(
        "alb-agent",
        ctx,
        endpoint,
        timeout_ms=300,
        attempts=1,
        src="test",
        max_bytes=1 << 20,
        on_back=lambda: backs.append(1),
        clock=lambda: now[0],
    )

    def answer_once():
        server = RepServer(ctx, endpoint, {}, src="agent")
        done = threading.Event()

        def serve():
            deadline = time.monotonic() + 10
            while not done.is_set() and time.monotonic() < deadline:
                if server.socket.poll(50):
                    server.handle_ready()
                    done.set()

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            agent.call("ping")
        finally:
            done.set()
            thread.join()
            server.close()

    answer_once()
    assert backs == []  # the first answer ever: nothing to forget
    with pytest.raises(AgentUnavailable):
        agent.call("ping")  # gone
    now[0] += 10  # past the back-off
    answer_once()
    assert backs == [1]  # back: forget before the reply is used
    agent.close()
