"""The steps that bring the Swarm services to the configuration (pure)."""

from __future__ import annotations

from services.scheduler.diff import Want
from services.scheduler.swarm_plan import ServiceStep, plan_services
from services.scheduler.swarm_services import ServiceState


def want(sid: str = "a", spec: str = "h1", port=8001, **kw) -> Want:
    return Want(server_id=sid, spec_hash=spec, host_port=port, **kw)


def service(sid: str = "a", spec: str = "h1", port=8001, desired: int = 2, held: bool = False) -> ServiceState:
    return ServiceState(
        server_id=sid,
        service_id=f"svc-{sid}",
        version=7,
        spec_hash=spec,
        host_port=port,
        desired=desired,
        running=desired,
        starting=0,
        nodes=(),
        held=held,
    )


def plan(wants, replicas, services, keep=()):
    return [(s.action, s.server_id, s.replicas) for s in plan_services(wants, replicas, services, keep)]


def test_a_new_server_is_created_with_its_replicas():
    assert plan({"a": want()}, {"a": 3}, {}) == [("create", "a", 3)]


def test_an_unchanged_service_gets_no_step():
    assert plan({"a": want()}, {"a": 2}, {"a": service()}) == []


def test_a_changed_spec_or_port_is_an_update_with_the_replicas():
    assert plan({"a": want(spec="h2")}, {"a": 2}, {"a": service()}) == [("update", "a", 2)]
    [step] = plan_services({"a": want(port=8002)}, {"a": 2}, {"a": service()})
    assert (step.action, step.reason) == ("update", "port 8001 -> 8002")


def test_replicas_alone_scale():
    [step] = plan_services({"a": want()}, {"a": 3}, {"a": service()})
    assert step == ServiceStep("scale", "a", "2 -> 3 replicas", 3)


def test_a_hand_stop_scales_to_zero_and_creates_nothing():
    [step] = plan_services({"a": want(held=True)}, {"a": 2}, {"a": service()})
    assert (step.action, step.replicas, step.held) == ("scale", 0, True)
    assert plan({"a": want(held=True)}, {"a": 2}, {"a": service(desired=0, held=True)}) == []
    assert plan({"a": want(held=True)}, {"a": 2}, {}) == []


def test_the_hand_stop_is_said_in_a_label_for_the_next_active_manager():
    # Scaled to 0 without the label (an older scheduler, a hand edit): the label is written.
    [step] = plan_services({"a": want(held=True)}, {"a": 2}, {"a": service(desired=0)})
    assert (step.action, step.replicas, step.held) == ("scale", 0, True)
    # A start: scaled back, the label dropped.
    [step] = plan_services({"a": want()}, {"a": 2}, {"a": service(desired=0, held=True)})
    assert (step.action, step.replicas, step.held) == ("scale", 2, False)
    # A spec change of a held server keeps it held.
    [step] = plan_services({"a": want(spec="h2", held=True)}, {"a": 2}, {"a": service(desired=0, held=True)})
    assert (step.action, step.replicas, step.held) == ("update", 0, True)


def test_a_hand_restart_replaces_the_tasks_of_a_running_service_only():
    assert plan({"a": want(restart=True)}, {"a": 2}, {"a": service()}) == [("restart", "a", 2)]
    # A spec change replaces every task anyway: one step, the update.
    assert plan({"a": want(spec="h2", restart=True)}, {"a": 2}, {"a": service()}) == [("update", "a", 2)]


def test_a_server_without_a_port_is_left_alone():
    assert plan({"a": want(port=None)}, {"a": 2}, {}) == []
    assert plan({"a": want(port=None)}, {"a": 2}, {"a": service()}) == []


def test_services_no_longer_wanted_are_removed_unless_protected():
    services = {"a": service("a"), "gone": service("gone"), "kept": service("kept")}
    assert plan({"a": want()}, {"a": 2}, services, keep={"kept"}) == [("remove", "gone", 0)]
