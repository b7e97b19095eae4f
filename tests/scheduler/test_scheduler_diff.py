"""The desired-vs-actual diff: container steps and route changes."""

from __future__ import annotations

from common.protocol import ContainerInfo, RouteInfo
from services.scheduler.diff import Want, plan_containers, plan_routes


def info(sid, state="running", hash_="h1", port=8000, bridge="ready", **kw):
    return ContainerInfo(
        server_id=sid, container_id=f"id-{sid}", state=state, spec_hash=hash_, host_port=port, bridge=bridge, **kw
    )


def want(sid, hash_="h1", port=8000, **kw):
    return Want(server_id=sid, spec_hash=hash_, host_port=port, **kw)


def actions(plan):
    return [(s.action, s.server_id) for s in plan.steps]


def test_converged_state_plans_nothing():
    plan = plan_containers({"a": want("a")}, {"a": info("a")})
    assert plan.steps == [] and plan.waiting == {}


def test_missing_changed_moved_exited_and_unwanted():
    wants = {
        "new": want("new", port=8001),
        "changed": want("changed", hash_="h2"),
        "moved": want("moved", port=8009),
        "dead": want("dead"),
    }
    observed = {
        "changed": info("changed"),
        "moved": info("moved"),
        "dead": info("dead", state="exited", exit_code=137),
        "gone": info("gone"),
        "forgotten": ContainerInfo(server_id="forgotten", state="missing"),
    }
    plan = plan_containers(wants, observed)
    assert actions(plan) == [
        ("recreate", "changed"),
        ("start", "dead"),
        ("recreate", "moved"),
        ("create", "new"),
        ("remove", "gone"),
    ]
    assert [s.request for s in plan.steps] == ["container.ensure"] * 4 + ["container.remove"]
    assert "137" in plan.steps[1].reason


def test_back_off_holds_starts_but_not_config_changes():
    wants = {"loop": want("loop", wait=4.0), "changed": want("changed", hash_="h2", wait=4.0)}
    observed = {"loop": info("loop", state="exited"), "changed": info("changed", state="exited")}
    plan = plan_containers(wants, observed)
    assert actions(plan) == [("recreate", "changed")]
    assert "back-off" in plan.waiting["loop"]


def test_hand_stop_and_restart():
    plan = plan_containers(
        {"held": want("held", held=True), "idle": want("idle", held=True)},
        {"held": info("held"), "idle": info("idle", state="exited")},
    )
    assert actions(plan) == [("stop", "held")]
    plan = plan_containers({"a": want("a", restart=True, wait=9.0)}, {"a": info("a")})
    assert actions(plan) == [("restart", "a")]
    plan = plan_containers({"a": want("a", restart=True, wait=9.0)}, {"a": info("a", state="exited")})
    assert actions(plan) == [("start", "a")]


def test_in_flight_operations_protected_servers_and_unserved_containers():
    observed = {"busy": info("busy", pending="ensure"), "kept": info("kept"), "unserved": info("unserved", bridge="")}
    wants = {"busy": want("busy", hash_="other"), "unserved": want("unserved"), "noport": want("noport", port=None)}
    plan = plan_containers(wants, observed, keep={"kept"})
    assert actions(plan) == [("adopt", "unserved")]
    assert "ensure in progress" in plan.waiting["busy"]
    recently = plan_containers({"unserved": want("unserved", adopt_ok=False)}, observed, keep={"kept", "busy"})
    assert recently.steps == []


def route(sid, port, error=None):
    return RouteInfo(server_id=sid, port=port, rule_arn=f"rule-{sid}", target_group_arn=f"tg-{sid}", error=error)


def test_routes_diff_lists_each_change():
    plan = plan_routes(
        {"a": 8000, "b": 8001, "c": 8002},
        {"a": route("a", 8000), "b": route("b", 8005), "old": route("old", 8003), "c": route("c", 8002, error="quota")},
    )
    assert [(s.action, s.server_id) for s in plan.changes] == [
        ("route-move", "b"),
        ("route-retry", "c"),
        ("route-remove", "old"),
    ]
    assert [(e.server_id, e.port) for e in plan.entries] == [("a", 8000), ("b", 8001), ("c", 8002)]
    assert plan.needed


def test_routes_in_place_need_nothing_and_unknown_routing_means_add():
    assert not plan_routes({"a": 8000}, {"a": route("a", 8000)}).needed
    unknown = plan_routes({"a": 8000}, None)
    assert [s.action for s in unknown.changes] == ["route-add"]
    assert "not known" in unknown.changes[0].reason
