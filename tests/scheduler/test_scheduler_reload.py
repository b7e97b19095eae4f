"""Configuration reloads: last good kept, per-server last good, protected servers, and the
model's reactions (hand stops end on a new spec, plans follow the configuration)."""

from __future__ import annotations

import json

from common.config import load_config
from common.protocol import ContainerInfo, RouteInfo
from common.settings import Settings
from services.scheduler.config_keeper import apply_loaded
from services.scheduler.model import Model

IMAGE = "mcp-orchestrator/busybox:test"


def server(*extra, disabled=False):
    return {"command": "docker", "args": ["run", "-i", *extra, IMAGE, "cat"], "disabled": disabled}


def load(tmp_path, servers=None, text=None):
    path = tmp_path / "mcp.config.json"
    path.write_text(text if text is not None else json.dumps({"mcpServers": servers}))
    return load_config(path, environ={})


def test_first_load_and_an_unusable_file_keeps_the_last_good(tmp_path):
    good, events = apply_loaded(None, load(tmp_path, {"a": server(), "b": server()}), 1.0)
    assert good.usable and set(good.enabled) == {"a", "b"} and good.state.ok
    bad, events = apply_loaded(good, load(tmp_path, text="{not json"), 2.0)
    assert bad.usable and bad.servers == good.servers
    assert bad.state.kept_last_good and not bad.state.ok and bad.state.errors
    assert bad.state.loaded_at == 1.0 and bad.state.checked_at == 2.0
    assert any(e.level == "error" and "last good" in e.message for e in events)


def test_unusable_from_the_start_touches_nothing(tmp_path):
    active, events = apply_loaded(None, load(tmp_path, text="[]"), 1.0)
    assert not active.usable and not active.servers and not active.state.ok
    model = Model(Settings())
    model.set_config(active)
    model.observe_containers([ContainerInfo(server_id="x", container_id="c", state="running", host_port=8000)])
    containers, routes = model.plan()
    assert containers.steps == [] and routes is None
    assert "no usable configuration" in model.plan_steps()[0].reason


def test_an_invalid_server_keeps_its_last_good_spec_or_is_protected(tmp_path):
    good, _ = apply_loaded(None, load(tmp_path, {"a": server(), "b": server()}), 1.0)
    broken = {"a": server("--no-such-flag"), "b": server(), "c": server("--no-such-flag")}
    active, events = apply_loaded(good, load(tmp_path, broken), 2.0)
    assert active.servers["a"] == good.servers["a"] and "a" in active.kept
    assert "c" in active.protected and "c" not in active.servers
    assert not active.state.ok
    assert {e.server_id for e in events if e.level == "error"} == {"a", "c"}


def test_disabled_and_removed_servers_are_no_longer_wanted(tmp_path):
    good, _ = apply_loaded(None, load(tmp_path, {"a": server(), "b": server(), "c": server()}), 1.0)
    later, events = apply_loaded(good, load(tmp_path, {"a": server(), "b": server(disabled=True)}), 2.0)
    assert set(later.enabled) == {"a"} and later.disabled == {"b"}
    messages = " ".join(e.message for e in events)
    assert "b: disabled" in messages and "c: removed" in messages


def model_with(tmp_path, servers):
    model = Model(Settings(), clock=lambda: 100.0)
    active, _ = apply_loaded(None, load(tmp_path, servers), 1.0)
    model.set_config(active)
    return model


def test_model_plans_from_config_and_observations(tmp_path):
    model = model_with(tmp_path, {"a": server(), "b": server(), "off": server(disabled=True)})
    assert model.plan() == (model.plan()[0], None) and not model.plan()[0].steps  # no agent yet
    model.observe_routes([RouteInfo(server_id="b", port=8005, rule_arn="r", target_group_arn="t")])
    model.observe_containers(
        [
            ContainerInfo(
                server_id="a",
                container_id="ca",
                state="running",
                host_port=8003,
                spec_hash=model.active.servers["a"].spec_hash,
                bridge="ready",
            ),
            ContainerInfo(server_id="off", container_id="co", state="running", host_port=8000),
        ]
    )
    assert model.ports == {"a": 8003, "b": 8005}
    containers, routes = model.plan()
    assert [(s.action, s.server_id) for s in containers.steps] == [("create", "b"), ("remove", "off")]
    assert [(c.action, c.server_id) for c in routes.changes] == [("route-add", "a")]
    states = model.server_states()
    assert states["a"].status == "running" and states["a"].host_port == 8003
    assert states["off"].status == "disabled" and states["b"].status == "pending"
    assert states["a"].url == "http://127.0.0.1:8003/mcp/a/mcp"


def test_a_new_spec_ends_a_hand_stop_and_a_crash_back_off(tmp_path):
    model = model_with(tmp_path, {"a": server()})
    for n in range(3):
        model.observe_containers(
            [ContainerInfo(server_id="a", container_id="c", state="exited", exit_code=1, finished_at=f"t{n}")]
        )
    assert model.crashes.get("a").failures == 3 and model.wants(100.0)["a"].wait > 0
    active, _ = apply_loaded(model.active, load(tmp_path, {"a": server("-e", "X=1")}), 2.0)
    model.set_config(active)
    assert model.crashes.get("a").failures == 0 and model.wants(100.0)["a"].wait == 0
    model.hold("a")
    assert model.wants(0)["a"].held
    active, _ = apply_loaded(model.active, load(tmp_path, {"a": server("-e", "X=2")}), 3.0)
    model.set_config(active)
    assert not model.wants(0)["a"].held
    model.hold("a")
    model.release("a", restart=True)
    assert model.wants(0)["a"].restart and not model.wants(0)["a"].held
