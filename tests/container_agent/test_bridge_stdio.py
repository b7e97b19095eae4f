"""Attaching to real containers' stdio through the Docker API (services/container_agent/stdio.py)."""

from __future__ import annotations

import asyncio
import time

import pytest
from bridge_support import Containers, containers  # noqa: F401  (fixture)

from services.container_agent.stdio import AttachError, attach

pytestmark = pytest.mark.docker


class Collector:
    def __init__(self) -> None:
        self.stdout: list[bytes] = []
        self.stderr: list[bytes] = []
        self.closed: list[str] = []

    def kwargs(self) -> dict:
        return {
            "on_stdout_line": self.stdout.append,
            "on_stderr_line": self.stderr.append,
            "on_closed": self.closed.append,
        }


async def until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


ECHO_BOTH = 'while IFS= read -r l; do echo "out:$l"; echo "err:$l" >&2; done'


def test_lines_in_and_out_with_stderr_apart(docker_client, containers: Containers, busybox_image):
    container = containers.run(busybox_image, ["sh", "-c", ECHO_BOTH])

    async def run() -> None:
        got = Collector()
        stdio = await attach(docker_client, container.id, **got.kwargs())
        for n in range(50):
            assert stdio.write(f"line {n}\n".encode())
        await stdio.drain()
        await until(lambda: len(got.stdout) == 50 and len(got.stderr) == 50)
        assert got.stdout == [f"out:line {n}".encode() for n in range(50)]
        assert got.stderr == [f"err:line {n}".encode() for n in range(50)]
        stdio.close("test done")
        assert await stdio.wait_closed() == "test done"
        assert got.closed == ["test done"]

    asyncio.run(run())


def test_a_large_message_arrives_whole(docker_client, containers: Containers, busybox_image):
    container = containers.run(busybox_image, ["cat"])
    big = b'{"data":"' + b"x" * (3 * 1024 * 1024) + b'"}'

    async def run() -> None:
        got = Collector()
        stdio = await attach(docker_client, container.id, **got.kwargs())
        stdio.write(big + b"\n" + b"small\n")
        await stdio.drain()
        await until(lambda: len(got.stdout) == 2)
        assert got.stdout[0] == big and got.stdout[1] == b"small"
        stdio.close()

    asyncio.run(run())


def test_container_exit_closes_the_connection(docker_client, containers: Containers, busybox_image):
    container = containers.run(
        busybox_image, ["sh", "-c", 'IFS= read -r l; echo "bye $l"; echo "last words" >&2; exit 4']
    )

    async def run() -> None:
        got = Collector()
        stdio = await attach(docker_client, container.id, **got.kwargs())
        stdio.write(b"now\n")
        reason = await asyncio.wait_for(stdio.wait_closed(), 30)
        assert reason == "the container's output ended"
        assert got.stdout == [b"bye now"] and got.stderr == [b"last words"]
        assert got.closed == [reason]
        assert not stdio.is_open and stdio.write(b"more\n") is False

    asyncio.run(run())
    assert container.wait(timeout=30)["StatusCode"] == 4


def test_detach_keeps_the_container_and_allows_a_new_attach(docker_client, containers: Containers, busybox_image):
    container = containers.run(busybox_image, ["sh", "-c", ECHO_BOTH])

    async def run() -> None:
        for round_ in range(3):
            got = Collector()
            stdio = await attach(docker_client, container.id, **got.kwargs())
            stdio.write(f"round {round_}\n".encode())
            await until(lambda: got.stdout == [f"out:round {round_}".encode()])
            stdio.close()

    asyncio.run(run())
    container.reload()
    assert container.status == "running"


def test_nothing_is_lost_when_output_races_the_attach(docker_client, containers: Containers, busybox_image):
    # A server that writes without pause: bytes arriving with the upgrade answer
    # must reach the frame decoder, or it would read payload as headers.
    container = containers.run(busybox_image, ["sh", "-c", "while :; do echo tick; done"], log_config={"type": "none"})

    async def run() -> None:
        for _ in range(5):
            got = Collector()
            stdio = await attach(docker_client, container.id, **got.kwargs())
            await until(lambda: len(got.stdout) >= 200)
            stdio.close()
            # Attaching to a server in mid-write may begin inside a line: only the first
            # line may be the tail of "tick". Every later line is whole; a frame header
            # read as payload (or payload as a header) would garble one of them.
            first, rest = got.stdout[0], got.stdout[1:]
            assert b"tick".endswith(first), first
            assert set(rest) == {b"tick"}, set(rest)
            assert got.stderr == []

    asyncio.run(run())


def test_attach_to_a_missing_container_is_a_clear_error(docker_client):
    async def run() -> None:
        got = Collector()
        with pytest.raises(AttachError, match="does not exist"):
            await attach(docker_client, "no-such-container-" + "0" * 12, **got.kwargs())

    asyncio.run(run())
