"""The harness the tests and benchmarks start the processes with: waiting, ports,
settings files and the command lines (the launcher's own)."""

from __future__ import annotations

import socket
import sys
import time

import pytest

from common.settings import load_settings
from services.cli.launcher import child_specs
from tests.harness.files import settings_text
from tests.harness.ports import free_port_range
from tests.harness.processes import Process, specs_for
from tests.harness.waiting import WaitTimeout, wait_for, wait_until


def test_wait_for_returns_the_first_truthy_value():
    values = iter([0, None, "", "yes", "later"])
    assert wait_for(lambda: next(values), 5, "a value", interval=0) == "yes"


def test_wait_for_asks_once_more_at_the_deadline_and_says_what_it_waited_for():
    asked = []
    with pytest.raises(WaitTimeout, match=r"timed out after 0.2 s waiting for the moon\nlogs here") as failed:
        wait_for(lambda: asked.append(time.monotonic()), 0.2, "the moon", interval=0.05, explain=lambda: "logs here")
    assert isinstance(failed.value, AssertionError)
    assert asked[-1] - asked[0] >= 0.2


def test_wait_for_ignores_only_the_errors_it_is_told_to_and_names_the_last():
    with pytest.raises(WaitTimeout, match=r"\(last error: 'gone'\)"):
        wait_for(lambda: {}["gone"], 0.1, "a key", ignoring=(KeyError,))
    with pytest.raises(KeyError):
        wait_for(lambda: {}["gone"], 0.1, "a key")


def test_wait_until_times_and_never_raises():
    value, took = wait_until(lambda: None, 0.1, interval=0.02)
    assert value is None and took >= 0.1
    assert wait_until(lambda: 7, 5)[0] == 7


def test_free_port_range_is_free_and_consecutive():
    first, last = free_port_range(5)
    assert last - first == 4
    for port in range(first, last + 1):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_settings_layers_add_and_replace_keys():
    text = settings_text({"zmq": {"a": 1, "b": 2}, "aws": {"x": "y"}}, {"zmq": {"b": 3}, "bridge": {"auth": "none"}})
    assert text == "[zmq]\na = 1\nb = 3\n[aws]\nx = y\n[bridge]\nauth = none\n"


def test_the_processes_start_as_the_launcher_starts_them(tmp_path):
    settings = tmp_path / "settings.conf"
    settings.write_text(f"[zmq]\nruntime_dir = {tmp_path}/run\n")
    config = tmp_path / "mcp.config.json"
    specs = specs_for(settings, config, labels={"k": "v"})
    assert list(specs) == ["container-agent", "alb-agent", "scheduler", "dashboard"]
    theirs = child_specs(
        load_settings(settings, environ={}), config, settings, dashboard=True, container_labels=["k=v"]
    )
    assert list(specs.values()) == theirs
    assert specs["scheduler"].endpoint == f"ipc://{tmp_path}/run/scheduler-control.sock"


def test_a_process_logs_to_its_file_and_stops(tmp_path):
    proc = Process(
        "sleeper", [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"], tmp_path / "s.log"
    )
    wait_for(lambda: "up" in proc.output(), 10, "the first line")
    assert proc.alive() and proc.stop(timeout=5) == -15 and not proc.alive()
