"""The host port allocator: stable ports, recovery, busy ports skipped, exhaustion."""

from __future__ import annotations

import socket

from services.scheduler.ports import allocate_ports, port_is_free


def test_new_servers_get_the_lowest_free_ports_in_id_order():
    got = allocate_ports(["b", "a", "c"], (8000, 8010))
    assert got.ports == {"a": 8000, "b": 8001, "c": 8002}
    assert not got.errors


def test_current_ports_are_kept_and_new_ones_fill_gaps():
    got = allocate_ports(["a", "b", "new"], (8000, 8010), current={"a": 8005, "b": 8000})
    assert got.ports == {"a": 8005, "b": 8000, "new": 8001}


def test_ports_are_recovered_from_containers_before_routes():
    got = allocate_ports(["a", "b", "c"], (8000, 8010), recovered=[{"a": 8007}, {"a": 8003, "b": 8004}])
    assert got.ports == {"a": 8007, "b": 8004, "c": 8000}


def test_a_recovered_port_outside_the_range_or_taken_twice_is_replaced():
    got = allocate_ports(["a", "b", "c"], (8000, 8010), recovered=[{"a": 7000, "b": 8002, "c": 8002}])
    assert got.ports["b"] == 8002  # first in id order keeps it
    assert got.ports["a"] == 8000 and got.ports["c"] == 8001


def test_reserved_ports_and_busy_ports_are_skipped():
    busy = {8000, 8002}
    got = allocate_ports(["a", "b"], (8000, 8010), reserved=[8001], is_free=lambda port: port not in busy)
    assert got.ports == {"a": 8003, "b": 8004}
    assert set(got.skipped) == {8000, 8002}


def test_a_busy_port_does_not_move_a_server_that_holds_it():
    # The server's own bridge listens there: it must keep it.
    got = allocate_ports(["a"], (8000, 8010), current={"a": 8000}, is_free=lambda port: False)
    assert got.ports == {"a": 8000}


def test_exhausted_range_names_the_servers_that_did_not_fit():
    got = allocate_ports(["a", "b", "c"], (8000, 8001))
    assert got.ports == {"a": 8000, "b": 8001}
    assert set(got.errors) == {"c"}
    assert "8000-8001" in got.errors["c"] and "port_range" in got.errors["c"]


def test_allocation_is_stable_across_calls():
    first = allocate_ports(["x", "y"], (9000, 9100))
    again = allocate_ports(["x", "y", "z"], (9000, 9100), current=first.ports)
    assert {k: again.ports[k] for k in first.ports} == first.ports


def test_port_is_free_sees_a_real_listener():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not port_is_free("127.0.0.1", port)
        assert not port_is_free("0.0.0.0", port)
    assert port_is_free("127.0.0.1", port)
