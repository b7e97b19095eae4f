"""Crash loops: when a server that keeps failing may be started again. Pure logic.

A failure is a run of the server's container that ended (seen by its exit record:
container id, finish time, exit code), a run whose MCP server did not answer initialize
(the bridge says "failed", with the reason; it is restarted like a crash), or a start
attempt the container-agent could not carry out (its error, tied to the attempt).
Failures are counted from what the container-agent reports, each once however often it
is observed. The first failure restarts at once (a killed container serves again in
seconds); from the second on the server is crash-looping and waits `first` seconds,
doubling up to `maximum`. A run that stays up and served for `stable_after` seconds, a
configuration change and a manual start or restart reset the count.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

from common.protocol import BridgeState, ContainerInfo

RUNNING_STATES = frozenset({"running", "paused", "restarting"})
# Kinds of failure that make a crash loop (a refused start is an error instead).
EXITED, UNREADY, REFUSED = "exit", "unready", "error"
# Bridge states of a run that does not count as up yet.
NOT_SERVED_YET = frozenset({BridgeState.STARTING, BridgeState.FAILED})


@dataclass(frozen=True)
class BackoffPolicy:
    first: float = 1.0  # delay before the second restart, seconds
    factor: float = 2.0
    maximum: float = 300.0
    stable_after: float = 30.0  # a run this long clears the failure count
    crash_loop_after: int = 2  # failures in a row that make a crash loop

    def delay(self, failures: int) -> float:
        """Seconds to wait before starting again after `failures` failures in a row."""
        if failures <= 1:
            return 0.0
        return min(self.first * self.factor ** (failures - 2), self.maximum)


@dataclass(frozen=True)
class CrashRecord:
    """What the scheduler remembers about one server's failures."""

    failures: int = 0
    next_start_at: float = 0.0  # wall clock; 0 = may start now
    delay: float = 0.0  # the delay that set next_start_at
    exit_code: Optional[int] = None
    oom_killed: bool = False
    error: Optional[str] = None  # why the last start or run failed (agent's words)
    stderr_tail: tuple[str, ...] = ()
    last_failure: Optional[str] = None  # identity of the last failure counted
    run: Optional[str] = None  # identity of the run seen running
    running_since: Optional[float] = None  # when that run was first seen running
    total_restarts: int = 0  # restarts caused by failures since start
    attempts: int = 0  # start attempts sent to the container-agent

    def crash_looping(self, policy: BackoffPolicy) -> bool:
        return self.failures >= policy.crash_loop_after

    @property
    def last_kind(self) -> Optional[str]:
        """EXITED, UNREADY or REFUSED: what the last failure counted was."""
        return self.last_failure.partition("|")[0] if self.last_failure else None

    def waiting(self, now: float) -> float:
        """Seconds until the server may be started again (0 when it may now)."""
        return max(0.0, self.next_start_at - now)


def run_identity(info: ContainerInfo) -> str:
    return f"{info.container_id}|{info.started_at}"


def exit_identity(info: ContainerInfo, attempts: int = 0) -> Optional[str]:
    """The identity of the failure `info` shows, None when it shows none.

    A container that ended has a finish time; a run whose server did not answer
    initialize is known by its start time; a start that failed leaves an error on a
    missing or never-started container. A container that was never started and has no
    error (created a moment ago) is not a failure.
    """
    if info.pending:
        return None
    if info.state in RUNNING_STATES:
        if info.bridge == BridgeState.FAILED:
            return f"{UNREADY}|{info.container_id}|{info.started_at}"
        return None
    if info.finished_at:
        return f"{EXITED}|{info.container_id}|{info.finished_at}|{info.exit_code}"
    if info.error:
        return f"{REFUSED}|{attempts}|{info.error}"
    return None


def observe(record: CrashRecord, info: Optional[ContainerInfo], now: float, policy: BackoffPolicy) -> CrashRecord:
    """`record` updated with the container-agent's latest view of the server."""
    if info is None:
        return record
    identity = exit_identity(info, record.attempts)
    if info.state in RUNNING_STATES and not info.pending and identity is None:
        run = run_identity(info)
        if run != record.run:
            record = replace(record, run=run, running_since=now)
        if (
            record.failures
            and record.running_since is not None
            and info.bridge not in NOT_SERVED_YET
            and now - record.running_since >= policy.stable_after
        ):
            record = replace(record, failures=0, next_start_at=0.0, delay=0.0, error=None)
        return record
    if identity is None or identity == record.last_failure:
        return record
    stderr_tail = tuple(info.stderr_tail) or record.stderr_tail
    if info.state in RUNNING_STATES:  # it runs, but its server did not answer initialize
        return _failed(
            record,
            identity,
            now,
            policy,
            exit_code=None,
            oom_killed=False,
            error=info.bridge_reason or "the MCP server is not ready",
            stderr_tail=stderr_tail,
        )
    return _failed(
        record,
        identity,
        now,
        policy,
        exit_code=info.exit_code,
        oom_killed=info.oom_killed,
        error=info.error,
        stderr_tail=stderr_tail,
    )


def attempted(record: CrashRecord) -> CrashRecord:
    """A start (ensure, start, restart) was sent for the server."""
    return replace(record, attempts=record.attempts + 1)


def _failed(
    record: CrashRecord,
    identity: str,
    now: float,
    policy: BackoffPolicy,
    *,
    exit_code: Optional[int],
    oom_killed: bool,
    error: Optional[str],
    stderr_tail: tuple[str, ...],
) -> CrashRecord:
    failures = record.failures + 1
    delay = policy.delay(failures)
    return replace(
        record,
        failures=failures,
        next_start_at=now + delay,
        delay=delay,
        exit_code=exit_code,
        oom_killed=oom_killed,
        error=error,
        stderr_tail=stderr_tail,
        last_failure=identity,
        run=None,
        running_since=None,
        total_restarts=record.total_restarts + 1,
    )


def acknowledge(record: CrashRecord, info: Optional[ContainerInfo]) -> CrashRecord:
    """Take the exit `info` shows as expected (a stop by hand): never counted later."""
    identity = exit_identity(info, record.attempts) if info is not None else None
    if identity is None:
        return record
    return replace(record, last_failure=identity, run=None, running_since=None)


def reset(record: CrashRecord) -> CrashRecord:
    """A fresh start (configuration changed, started or restarted by hand). The last
    failure stays known so that the same exit is not counted again."""
    return replace(record, failures=0, next_start_at=0.0, delay=0.0, error=None)


@dataclass
class CrashBook:
    """The records of every server (mutable holder; the logic above stays pure)."""

    policy: BackoffPolicy = field(default_factory=BackoffPolicy)
    records: dict[str, CrashRecord] = field(default_factory=dict)

    def get(self, server_id: str) -> CrashRecord:
        return self.records.get(server_id, CrashRecord())

    def observe(self, server_id: str, info: Optional[ContainerInfo], now: float) -> CrashRecord:
        record = observe(self.get(server_id), info, now, self.policy)
        self.records[server_id] = record
        return record

    def attempted(self, server_id: str) -> None:
        self.records[server_id] = attempted(self.get(server_id))

    def acknowledge(self, server_id: str, info: Optional[ContainerInfo]) -> None:
        self.records[server_id] = acknowledge(self.get(server_id), info)

    def reset(self, server_id: str) -> None:
        if server_id in self.records:
            self.records[server_id] = reset(self.records[server_id])

    def forget(self, server_id: str) -> None:
        self.records.pop(server_id, None)
