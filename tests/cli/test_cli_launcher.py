"""The launcher for real: `mcp-orchestrator --one-shot` and `mcp-orchestrator run` start
the real processes (dashboard off), converge, report, and stop what they started."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys

import pytest

from common import container_labels as labels
from tests.harness.labels import TEST_LABEL
from tests.harness.ports import free_port_range
from tests.harness.processes import Process
from tests.harness.servers import echo_server
from tests.harness.waiting import wait_for
from tests.scheduler.support import Orchestrator

pytestmark = [pytest.mark.docker, pytest.mark.slow]

CLI = [sys.executable, "-m", "services.cli"]


@pytest.fixture
def orch(docker_client, busybox_image):
    o = Orchestrator(docker_client, port_range=free_port_range(4))
    o.busybox = busybox_image
    yield o
    o.close()


def cli(orch, *args, timeout=240):
    return subprocess.run(
        [*CLI, *args, "--settings", str(orch.settings), "--config", str(orch.config)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=orch.env,
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False


def test_one_shot_converges_skips_a_busy_port_and_exits_0(orch):
    a, b = f"{orch.cluster}-a", f"{orch.cluster}-b"
    orch.write_config({a: echo_server(orch.busybox, "a"), b: echo_server(orch.busybox, "b")})
    lo = orch.port_range[0]
    with socket.socket() as busy:  # something else holds the first port of the range
        busy.bind(("127.0.0.1", lo))
        busy.listen()
        done = cli(orch, "--one-shot", "--container-label", f"{TEST_LABEL}=1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "one-shot: converged" in done.stdout
    ports = {c.labels[labels.SERVER_ID]: int(c.labels[labels.HOST_PORT]) for c in orch.containers().values()}
    assert ports == {a: lo + 1, b: lo + 2}
    # It stopped what it started; the containers stay.
    assert "stopping scheduler" in done.stderr and "stopping container-agent" in done.stderr
    assert {c.status for c in orch.containers().values()} == {"running"}
    after = subprocess.run(
        [*CLI, "status", "--settings", str(orch.settings)], capture_output=True, text=True, timeout=60, env=orch.env
    )
    assert after.returncode == 1 and "does not answer" in after.stderr


def test_one_shot_with_an_impossible_config_exits_non_zero_with_the_reasons(orch):
    ok, missing, extra = (f"{orch.cluster}-{n}" for n in ("ok", "missing", "extra"))
    orch.write_config(
        {
            ok: echo_server(orch.busybox, "ok"),
            missing: {
                "command": "docker",
                "args": ["run", "-i", "--pull", "never", "mcp-orchestrator/no-such-image:never"],
            },
            extra: echo_server(orch.busybox, "extra"),
        }
    )
    lo = orch.port_range[0]
    orch.settings.write_text(
        orch.settings.read_text().replace(f"port_range_end = {orch.port_range[1]}", f"port_range_end = {lo + 1}")
    )
    done = cli(orch, "--one-shot", "--container-label", f"{TEST_LABEL}=1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "one-shot: failed" in done.stdout
    assert "no free host port" in done.stdout
    assert "not present locally" in done.stdout or "image" in done.stdout


def test_run_reports_and_restarts_a_dead_child_and_stops_cleanly(orch):
    sid = f"{orch.cluster}-run"
    orch.write_config({sid: echo_server(orch.busybox, "run")})
    proc = Process(
        "launcher",
        [
            *CLI,
            "run",
            "--no-dashboard",
            "--settings",
            str(orch.settings),
            "--config",
            str(orch.config),
            "--container-label",
            f"{TEST_LABEL}=1",
        ],
        orch.dir / "launcher.log",
        env=orch.env,
    )
    output = proc.output

    try:
        orch.wait_converged({sid}, timeout=120)
        pids = {name: int(pid) for name, pid in re.findall(r"started ([\w-]+) \(pid (\d+)\)", output())}
        assert set(pids) == {"container-agent", "alb-agent", "scheduler"}
        os.kill(pids["alb-agent"], signal.SIGKILL)
        wait_for(
            lambda: f"alb-agent (pid {pids['alb-agent']}) exited with signal 9" in output(),
            30,
            "the dead child to be reported",
        )
        wait_for(lambda: len(re.findall(r"started alb-agent", output())) == 2, 30, "the child to be started again")
        orch.wait_converged({sid}, timeout=120)
        proc.signal(signal.SIGINT)
        assert proc.wait(60) == 0
        children = {name: int(pid) for name, pid in re.findall(r"started ([\w-]+) \(pid (\d+)\)", output())}
        assert not [name for name, pid in children.items() if alive(pid)]
        assert "stopped (SIGINT)" in output()
    finally:
        if proc.alive():
            proc.kill9()
