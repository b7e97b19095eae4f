"""The rule of the control plane's lease (pure): who acts, who waits, who takes over."""

from __future__ import annotations

from services.scheduler.control_lease import CREATE, RENEW, TAKE, WAIT, Lease, Seen, decide

L = 4.0


def lease(holder: str = "n1") -> Lease:
    return Lease(object_id="cfg", version=9, holder=holder, holder_name=holder, term=3, spec={})


def seen(node: str, leader: bool, current, quiet: float = 0.0) -> Seen:
    return Seen(node_id=node, leader=leader, lease=current, quiet_for=quiet)


def test_the_first_lease_is_the_swarm_leaders_to_make():
    assert decide(seen("n1", True, None), L) == CREATE
    assert decide(seen("n2", False, None), L) == WAIT
    # ... or anyone's, when the leader runs no scheduler.
    assert decide(seen("n2", False, None, 1.5 * L), L) == CREATE


def test_the_holder_renews_and_so_does_its_successor_on_the_same_node():
    assert decide(seen("n1", False, lease("n1"), quiet=100), L) == RENEW
    assert decide(seen("n1", True, lease("n1")), L) == RENEW


def test_a_beating_holder_is_never_taken_over():
    for quiet in (0.0, 1.0, L - 0.01):
        assert decide(seen("n2", True, lease("n1"), quiet), L) == WAIT
        assert decide(seen("n3", False, lease("n1"), quiet), L) == WAIT


def test_a_silent_holder_is_replaced_by_the_leader_first_then_by_anyone():
    assert decide(seen("n2", True, lease("n1"), L), L) == TAKE
    assert decide(seen("n3", False, lease("n1"), L), L) == WAIT
    assert decide(seen("n3", False, lease("n1"), 1.5 * L), L) == TAKE


def test_a_released_lease_goes_to_the_leader_at_once_to_others_soon():
    assert decide(seen("n2", True, lease("")), L) == TAKE
    assert decide(seen("n3", False, lease("")), L) == WAIT
    assert decide(seen("n3", False, lease(""), L / 2), L) == TAKE
