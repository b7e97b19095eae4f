"""ContainerInfo from what Docker says about a container: pure functions.

`LastExit` is the crash record the agent keeps in memory so that a server's last exit
code and stderr lines stay visible after its container is gone (recreated, removed),
until the server starts again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional

from common import server_ids
from common.container_labels import placement_of
from common.protocol import BridgeState, ContainerInfo, Operation
from common.secrets import redact, shown

# Docker's zero time: "never started / never finished".
_ZERO_TIME_PREFIX = "0001-01-01"
# stderr lines carried in a status reply or an exited event.
STATUS_TAIL_LINES = 10


@dataclass(frozen=True)
class LastExit:
    container_id: str
    exit_code: Optional[int]
    oom_killed: bool = False
    finished_at: Optional[str] = None
    stderr_tail: tuple[str, ...] = ()


def clean_lines(lines: Iterable[str], n: int) -> list[str]:
    """The last `n` lines, known secret values masked, each cut to a readable length."""
    return [shown(line) for line in (list(lines)[-n:] if n > 0 else [])]


def split_log(data: bytes) -> list[str]:
    """Lines of a `docker logs` answer (UTF-8, errors replaced, CR/LF dropped)."""
    text = data.decode("utf-8", "replace")
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    return [line.rstrip("\r") for line in lines]


def _time(value: Any) -> Optional[str]:
    if not isinstance(value, str) or not value or value.startswith(_ZERO_TIME_PREFIX):
        return None
    return value


def _int(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def status_fields(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a `docker inspect` that `container_info` reads: what the agent keeps
    per container between status reads (the whole inspect is about 27 KB of parsed
    JSON, the env values among it)."""
    state = attrs.get("State") or {}
    config = attrs.get("Config") or {}
    kept_state = {k: state.get(k) for k in ("Status", "ExitCode", "StartedAt", "FinishedAt", "OOMKilled")}
    health = state.get("Health")
    if isinstance(health, dict):
        kept_state["Health"] = {"Status": health.get("Status")}  # not its log of check outputs
    return {
        "Id": attrs.get("Id"),
        "Name": attrs.get("Name"),
        "RestartCount": attrs.get("RestartCount"),
        "State": kept_state,
        "Config": {"Labels": config.get("Labels") or {}, "Image": config.get("Image")},
    }


def container_info(
    server_id: str,
    attrs: Optional[Mapping[str, Any]],
    *,
    bridge: str = "",
    bridge_reason: str = "",
    last_exit: Optional[LastExit] = None,
    error: Optional[str] = None,
    pending: str = "",
    stderr_tail: Iterable[str] = (),
    mcp_version: Optional[str] = None,
) -> ContainerInfo:
    """The status of one server. `attrs`: `docker inspect` of its container (None: it
    has none). `bridge`: the bridge's state for it ("" when not served), and
    `bridge_reason` why it is not ready."""
    tail = clean_lines(stderr_tail, STATUS_TAIL_LINES)
    bridge = BridgeState(bridge) if bridge else None
    pending = Operation(pending) if pending else None
    bridge_reason = redact(bridge_reason)  # it may quote the server's own error message
    if attrs is None:
        return ContainerInfo(
            server_id=server_id,
            container_id=None,
            name=server_ids.container_name(server_id),
            state="missing",
            bridge=bridge,
            bridge_reason=bridge_reason,
            error=error,
            pending=pending,
            exit_code=last_exit.exit_code if last_exit else None,
            oom_killed=last_exit.oom_killed if last_exit else False,
            finished_at=last_exit.finished_at if last_exit else None,
            stderr_tail=tail or (clean_lines(last_exit.stderr_tail, STATUS_TAIL_LINES) if last_exit else []),
        )
    state = attrs.get("State") or {}
    config = attrs.get("Config") or {}
    placement = placement_of(config.get("Labels"))
    status = str(state.get("Status") or "")
    running = status in ("running", "paused", "restarting")
    health = state.get("Health") or {}
    return ContainerInfo(
        server_id=server_id,
        container_id=attrs.get("Id"),
        name=str(attrs.get("Name") or "").lstrip("/") or server_ids.container_name(server_id),
        image=str(config.get("Image") or ""),
        state=status,
        health=health.get("Status") or None,
        exit_code=None if running or status == "created" else _int(state.get("ExitCode")),
        host_port=placement.host_port if placement else None,
        spec_hash=placement.spec_hash if placement else "",
        started_at=_time(state.get("StartedAt")),
        finished_at=None if running else _time(state.get("FinishedAt")),
        restart_count=_int(attrs.get("RestartCount")) or 0,
        bridge=bridge,
        bridge_reason=bridge_reason,
        mcp_version=mcp_version if running else None,
        error=error,
        oom_killed=bool(state.get("OOMKilled")) and not running,
        stderr_tail=tail,
        pending=pending,
    )
