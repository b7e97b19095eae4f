"""The scheduler's view of each server, as published and shown: pure functions.

`server_state` folds what the scheduler knows about one server (its configuration,
port, container, crash record, route, hand stop) into one `ServerState`. Statuses:

    running        the container runs (health: the bridge's or Docker's)
    starting       an operation is in flight, or the bridge has not initialized yet
    pending        wanted, nothing running yet
    crash-looping  exits (or does not answer initialize) again and again: restarted
                   with a growing back-off
    error          cannot be started (no port, image missing, the agent refused), or
                   runs but its server did not answer initialize (restarted at once)
    stopped        stopped by hand (stays so until started or reconfigured)
    disabled       "disabled": true in the configuration
    invalid        invalid in the configuration and never good: left alone
    unknown        the container-agent has not answered yet, or no good configuration
                   was ever read (then its container is left as it is)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping, Optional

from common import server_ids
from common.config import ServerConfig
from common.protocol import BridgeState, ContainerInfo, Operation, RouteInfo, RouteState, ServerState, ServerStatus
from common.settings import Settings

from .backoff import EXITED, RUNNING_STATES, UNREADY, BackoffPolicy, CrashRecord
from .swarm_services import ServiceState


@dataclass(frozen=True)
class ServerFacts:
    server_id: str
    config: Optional[ServerConfig] = None  # the spec in force (None: not configured)
    protected: bool = False  # invalid, never good
    config_error: Optional[str] = None  # error of the file while a last good runs
    port: Optional[int] = None
    port_error: Optional[str] = None
    container: Optional[ContainerInfo] = None
    containers_known: bool = False  # the container-agent answered at least once
    crash: CrashRecord = CrashRecord()
    held: bool = False
    route: Optional[RouteInfo] = None
    routes_known: bool = False
    route_wanted: bool = False
    call_error: Optional[str] = None  # the last failed request about this server
    config_usable: bool = True  # False: no good configuration was ever read
    # [cluster] engine = swarm: the server's service instead of a container.
    swarm: bool = False
    service: Optional[ServiceState] = None
    services_known: bool = False  # the manager's engine answered at least once
    node_names: Mapping[str, str] = field(default_factory=dict)  # node id -> host name
    served_by: Optional[list[str]] = None  # nodes whose bridge serves it; None: not asked yet


def _mounts(config: Optional[ServerConfig]) -> list[str]:
    if config is None:
        return []
    spec = config.spec
    out = [v.spec for v in spec.volumes]
    out += [f"{m.type}:{m.source or '-'}:{m.target}{':ro' if m.read_only else ''}" for m in spec.mounts]
    return out


def _route_view(f: ServerFacts) -> tuple[RouteState, Optional[str]]:
    """(route state, route error)."""
    r = f.route
    if not f.routes_known:
        return RouteState.UNKNOWN, None
    error = r.error if r is not None else None
    routed = r is not None and r.enabled and bool(r.rule_arn) and bool(r.target_group_arn)
    if f.route_wanted:
        if error:
            return RouteState.ERROR, error
        if routed and r.port == f.port:
            return RouteState.ROUTED, None
        return RouteState.PENDING, None
    if routed:
        return RouteState.REMOVING, error
    return RouteState.NONE, error


def _health(info: Optional[ContainerInfo]) -> Optional[str]:
    if info is None:
        return None
    if info.health:
        return info.health
    return str(info.bridge) if info.bridge else None


def public_url(settings: Settings, server_id: str, port: Optional[int]) -> str:
    """Where MCP clients reach the server, as these settings say."""
    return server_ids.public_url(settings.service.public_base_url, settings.service.bridge_host, server_id, port)


def server_state(f: ServerFacts, settings: Settings, policy: BackoffPolicy, now: float) -> ServerState:
    if f.swarm:
        return _service_state(f, settings, policy)
    info = f.container
    config = f.config
    running = info is not None and info.state in RUNNING_STATES and bool(info.container_id)
    crash = f.crash
    route, route_error = _route_view(f)
    if config is None and not f.config_usable:
        status = ServerStatus.UNKNOWN  # no good configuration yet: its container is left alone
    elif config is None and f.protected:
        status = ServerStatus.INVALID
    elif config is not None and config.disabled:
        status = ServerStatus.DISABLED
    elif config is None:
        status = ServerStatus.REMOVED
    elif not f.containers_known:
        status = ServerStatus.UNKNOWN
    elif info is not None and info.pending:
        status = ServerStatus.STOPPING if info.pending in (Operation.STOP, Operation.REMOVE) else ServerStatus.STARTING
    elif f.held:
        status = ServerStatus.STOPPING if running else ServerStatus.STOPPED
    elif f.port_error:
        status = ServerStatus.ERROR
    elif running and info.bridge == BridgeState.FAILED:
        # It runs, but its server did not answer initialize: a failure, restarted as one.
        status = ServerStatus.CRASH_LOOPING if crash.crash_looping(policy) else ServerStatus.ERROR
    elif running:
        # The bridge initializes the MCP session after the container started.
        status = ServerStatus.STARTING if info.bridge == BridgeState.STARTING else ServerStatus.RUNNING
    elif crash.crash_looping(policy) and crash.last_kind in (EXITED, UNREADY):
        status = ServerStatus.CRASH_LOOPING
    elif crash.error or f.call_error:
        status = ServerStatus.ERROR
    else:
        status = ServerStatus.PENDING

    last_error = f.port_error or f.call_error or (info.error if info is not None else None) or crash.error
    if not f.config_usable:
        last_error = "no usable configuration yet: left as it is"
    if running and not f.port_error:
        last_error = f.call_error or (info.error if info is not None else None)
        if info is not None and info.bridge in (BridgeState.FAILED, BridgeState.DOWN):
            last_error = last_error or info.bridge_reason or None
    exit_code = info.exit_code if info is not None and info.exit_code is not None else crash.exit_code
    stderr = list(info.stderr_tail) if info is not None and info.stderr_tail else list(crash.stderr_tail)
    waiting = crash.waiting(now)
    spec = config.spec if config is not None else None
    enabled = config is not None and not config.disabled
    return ServerState(
        server_id=f.server_id,
        status=status,
        enabled=enabled,
        removed=config is None and not f.protected and f.config_usable,
        image=spec.image if spec is not None else (info.image if info is not None else ""),
        host_port=f.port if f.port is not None else (info.host_port if info is not None else None),
        container_id=info.container_id if info is not None else None,
        health=_health(info) if running else None,
        route=route,
        restarts=crash.total_restarts,
        exit_code=None if running else exit_code,
        last_error=last_error,
        next_restart_at=crash.next_start_at if waiting > 0 and not f.held else None,
        env_names=list(spec.env_names()) if spec is not None else [],
        container_name=server_ids.container_name(f.server_id),
        started_at=info.started_at if running and info is not None else None,
        url=public_url(settings, f.server_id, f.port) if enabled else "",
        transport=("http" if config.http else "stdio") if config is not None else "",
        bridge=info.bridge if info is not None else None,
        spec_hash=config.spec_hash if config is not None else "",
        stderr_tail=stderr,
        mounts=_mounts(config),
        failures=crash.failures,
        backoff_seconds=crash.delay if crash.failures >= policy.crash_loop_after else None,
        oom_killed=bool(info.oom_killed) if info is not None else crash.oom_killed,
        stopped_by_hand=f.held,
        config_error=f.config_error,
        route_priority=f.route.priority if f.route is not None else None,
        mcp_version=info.mcp_version if running and info is not None else None,
        route_target_group=f.route.target_group_name if f.route is not None else None,
        route_health=f.route.health if f.route is not None else None,
        route_error=route_error,
    )


def _config_status(f: ServerFacts) -> Optional[ServerStatus]:
    """The status the configuration alone decides, whatever runs."""
    if f.config is None and not f.config_usable:
        return ServerStatus.UNKNOWN
    if f.config is None:
        return ServerStatus.INVALID if f.protected else ServerStatus.REMOVED
    if f.config.disabled:
        return ServerStatus.DISABLED
    return None


def _service_status(f: ServerFacts, policy: BackoffPolicy) -> tuple[ServerStatus, Optional[str]]:
    """(status, last error) of a server run as a Swarm service."""
    svc = f.service
    running = svc.running if svc is not None else 0
    if not f.services_known:
        return ServerStatus.UNKNOWN, f.call_error
    if f.port_error:
        return ServerStatus.ERROR, f.port_error
    if f.held:
        return (ServerStatus.STOPPING if running else ServerStatus.STOPPED), f.call_error
    if svc is None:
        return (ServerStatus.ERROR if f.call_error else ServerStatus.PENDING), f.call_error
    if svc.update.startswith("rollback") or svc.update == "paused":
        # The new spec failed and Swarm went back (or stopped): the old one may still serve.
        why = f"the update of its service was rolled back or paused: {svc.update_message or svc.update}"
        return (ServerStatus.RUNNING if running else ServerStatus.ERROR), f.call_error or why
    if running and f.served_by == []:
        # Its replicas run, but no node's bridge serves one yet (initializing, or no agent).
        return ServerStatus.STARTING, f.call_error
    if running:
        short = running < svc.desired and svc.error
        return ServerStatus.RUNNING, f.call_error or (svc.error if short else None)
    if svc.starting:
        return ServerStatus.STARTING, f.call_error or svc.error or None
    if svc.failed >= policy.crash_loop_after:
        return ServerStatus.CRASH_LOOPING, f.call_error or svc.error or None
    if svc.failed or f.call_error:
        return ServerStatus.ERROR, f.call_error or svc.error or None
    return ServerStatus.PENDING, None


def _service_state(f: ServerFacts, settings: Settings, policy: BackoffPolicy) -> ServerState:
    config, svc = f.config, f.service
    decided = _config_status(f)
    status, last_error = (decided, None) if decided is not None else _service_status(f, policy)
    if not f.config_usable:
        last_error = "no usable configuration yet: left as it is"
    spec = config.spec if config is not None else None
    enabled = config is not None and not config.disabled
    route, route_error = _route_view(f)
    return ServerState(
        server_id=f.server_id,
        status=status,
        enabled=enabled,
        removed=config is None and not f.protected and f.config_usable,
        image=spec.image if spec is not None else "",
        host_port=f.port if f.port is not None else (svc.host_port if svc is not None else None),
        container_id=svc.service_id if svc is not None else None,
        route=route,
        last_error=last_error,
        env_names=list(spec.env_names()) if spec is not None else [],
        container_name=server_ids.container_name(f.server_id),
        url=public_url(settings, f.server_id, f.port) if enabled else "",
        transport=("http" if config.http else "stdio") if config is not None else "",
        spec_hash=config.spec_hash if config is not None else "",
        mounts=_mounts(config),
        failures=svc.failed if svc is not None else 0,
        stopped_by_hand=f.held,
        config_error=f.config_error,
        route_priority=f.route.priority if f.route is not None else None,
        route_target_group=f.route.target_group_name if f.route is not None else None,
        route_health=f.route.health if f.route is not None else None,
        route_error=route_error,
        replicas=svc.desired if svc is not None else None,
        replicas_running=svc.running if svc is not None else None,
        nodes=sorted(f.node_names.get(n, n[:12]) for n in svc.nodes) if svc is not None else [],
        served_by=list(f.served_by or []),
    )


def same_state(a: ServerState, b: ServerState) -> bool:
    """Equal apart from the time stamp (what decides whether to publish)."""
    return replace(a, updated_at=None) == replace(b, updated_at=None)
