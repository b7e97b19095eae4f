"""Crash loops: each failure counted once, growing bounded delays, resets."""

from __future__ import annotations

from common.protocol import ContainerInfo
from services.scheduler.backoff import BackoffPolicy, CrashBook, CrashRecord, acknowledge, attempted, observe, reset

POLICY = BackoffPolicy(first=1.0, factor=2.0, maximum=10.0, stable_after=30.0)


def exited(cid="c1", finished="2026-01-01T00:00:01Z", code=3, tail=("boom",)):
    return ContainerInfo(
        server_id="s", container_id=cid, state="exited", exit_code=code, finished_at=finished, stderr_tail=list(tail)
    )


def running(cid="c1", started="2026-01-01T00:00:00Z"):
    return ContainerInfo(server_id="s", container_id=cid, state="running", started_at=started)


def test_delays_double_from_the_second_failure_and_are_bounded():
    assert [POLICY.delay(n) for n in range(1, 8)] == [0.0, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_an_exit_is_counted_once_however_often_it_is_seen():
    r = observe(CrashRecord(), exited(), 100.0, POLICY)
    assert r.failures == 1 and r.exit_code == 3 and r.stderr_tail == ("boom",)
    assert r.waiting(100.0) == 0  # the first failure restarts at once
    assert observe(r, exited(), 101.0, POLICY) == r


def test_repeated_exits_make_a_crash_loop_with_growing_waits():
    r = CrashRecord()
    waits = []
    for n in range(1, 6):
        r = observe(r, exited(finished=f"2026-01-01T00:00:0{n}Z"), 100.0 * n, POLICY)
        waits.append(r.waiting(100.0 * n))
    assert r.failures == 5 and r.crash_looping(POLICY)
    assert waits == [0.0, 1.0, 2.0, 4.0, 8.0]
    assert r.total_restarts == 5


def test_a_stable_run_clears_the_count():
    r = observe(CrashRecord(), exited(), 0.0, POLICY)
    r = observe(r, exited(finished="2026-01-01T00:00:09Z"), 1.0, POLICY)
    assert r.failures == 2
    r = observe(r, running(started="x"), 5.0, POLICY)
    assert r.failures == 2  # not yet stable
    r = observe(r, running(started="x"), 35.0, POLICY)
    assert r.failures == 0 and r.waiting(35.0) == 0


def test_failed_starts_are_counted_per_attempt():
    missing = ContainerInfo(server_id="s", state="missing", error="image not found")
    r = attempted(CrashRecord())
    r = observe(r, missing, 0.0, POLICY)
    assert r.failures == 1 and r.error == "image not found"
    assert observe(r, missing, 1.0, POLICY).failures == 1  # same attempt
    r = observe(attempted(r), missing, 2.0, POLICY)
    assert r.failures == 2 and r.waiting(2.0) == 1.0


def test_pending_operations_and_fresh_containers_are_not_failures():
    r = observe(
        CrashRecord(),
        ContainerInfo(server_id="s", state="exited", pending="ensure", finished_at="t", container_id="c"),
        0.0,
        POLICY,
    )
    assert r.failures == 0
    created = ContainerInfo(server_id="s", container_id="c", state="created")
    assert observe(CrashRecord(), created, 0.0, POLICY).failures == 0


def test_acknowledged_exits_and_resets():
    r = acknowledge(CrashRecord(), exited())  # a stop by hand
    assert observe(r, exited(), 1.0, POLICY).failures == 0
    looping = CrashRecord(failures=4, next_start_at=50.0, delay=8.0)
    cleared = reset(looping)
    assert cleared.failures == 0 and cleared.waiting(0.0) == 0


def test_crash_book_keeps_records_per_server():
    book = CrashBook(POLICY)
    book.observe("a", exited(), 0.0)
    assert book.get("a").failures == 1 and book.get("b").failures == 0
    book.reset("a")
    assert book.get("a").failures == 0
    book.forget("a")
    assert "a" not in book.records
