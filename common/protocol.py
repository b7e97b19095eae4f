"""The wire protocol of the orchestrator: one envelope, every message type, msgpack.

Every message between the four processes is defined here and nowhere else. A message
is a msgpack map (``use_bin_type=True`` / ``raw=False``, never pickle):

    request   {v, type, id, ts, src, body}
    reply     {v, type, id, reply_to, ok, ts, src, body}            ok = true
              {v, type="error", id, reply_to, ok, ts, src, error}   ok = false,
                                                                    error = {code, message}
    published {v, type, id, seq, epoch, ts, src, body}   sent as two frames [topic, payload]
                                                         where topic == type (dotted)

Bodies are frozen dataclasses of plain data (str, int, float, bool, None, lists, maps
and nested records), registered by type name in MESSAGE_TYPES. Decoding validates the
field types, fills defaults and ignores unknown fields, so fields can be added without
a version bump; PROTOCOL_VERSION changes only when a change is not additive. Anything
the protocol refuses (malformed, too large, unknown type, wrong field type, a Secret in
a body) raises ProtocolError with a specific ErrorCode. Error texts name fields and
types, never values.
"""

from __future__ import annotations

import functools
import time
import uuid
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from enum import Enum
from typing import Any, Literal, Mapping, Optional, Sequence, Union, get_args, get_origin, get_type_hints

import msgpack

from common.secrets import Secret

PROTOCOL_VERSION = 1
# Decoders refuse bigger payloads before unpacking anything.
DEFAULT_MAX_BYTES = 1024 * 1024
# Plain data nested deeper than this is refused (msgpack's own limit is far higher
# and validating it recursively would exhaust Python's stack).
MAX_DEPTH = 32
# The reply type of every failed request.
ERROR_TYPE = "error"
# Longest id accepted when reading one back from a message that cannot be decoded.
_MAX_ID_LEN = 128


class ErrorCode(str, Enum):
    """Why a request failed or a message was refused. Compares equal to its string."""

    BAD_MESSAGE = "bad_message"  # not msgpack, not an envelope, wrong frames
    TOO_LARGE = "too_large"  # over the size limit
    UNKNOWN_TYPE = "unknown_type"  # type not registered, or not served here
    VERSION_MISMATCH = "version_mismatch"  # peer speaks another PROTOCOL_VERSION
    INVALID_BODY = "invalid_body"  # body fields missing or of the wrong type
    INVALID_ARGUMENT = "invalid_argument"  # well-formed, but not acceptable
    NOT_FOUND = "not_found"  # no such server / container / route
    CONFLICT = "conflict"  # clashes with the current state
    QUOTA_EXCEEDED = "quota_exceeded"  # an AWS or local limit was hit
    UNAVAILABLE = "unavailable"  # a dependency (Docker, AWS, an agent) is down
    TIMEOUT = "timeout"  # no answer in time
    FAILED = "failed"  # attempted, and Docker or AWS said no
    INTERNAL = "internal"  # a bug on the answering side

    def __str__(self) -> str:
        return self.value


def as_error_code(code: Union[str, ErrorCode]) -> Union[ErrorCode, str]:
    """The ErrorCode for `code`, or the string itself if a newer peer sent an unknown one."""
    try:
        return ErrorCode(code)
    except ValueError:
        return str(code)


class CodedError(Exception):
    """An error that travels: it has a code from ErrorCode and a message without secrets."""

    def __init__(self, code: Union[str, ErrorCode], message: str) -> None:
        self.code = as_error_code(code)
        self.message = message
        super().__init__(f"{self.code}: {message}")


class ProtocolError(CodedError):
    """A message was refused: malformed, too large, of an unknown type or invalid body.

    `msg_id` is the id of the offending message when it could still be read, so that a
    server can point its error reply at the request.
    """

    def __init__(self, code: Union[str, ErrorCode], message: str, *, msg_id: Optional[str] = None) -> None:
        super().__init__(code, message)
        self.msg_id = msg_id


class ServiceError(CodedError):
    """A domain error raised by a request handler; the client gets it as RemoteError."""


class Kind(str, Enum):
    REQUEST = "request"
    REPLY = "reply"
    EVENT = "event"  # published on a PUB socket; the topic is the type name

    def __str__(self) -> str:
        return self.value


# --------------------------------------------------------------------------- bodies
# Checks in __post_init__ run on both sides: building a body and decoding one. Their
# messages name the field and the rule, never the value.


def _check_port(name: str, port: Optional[int]) -> None:
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"{name} must be a port between 1 and 65535")


# Generic


@dataclass(frozen=True)
class Empty:
    """A body without fields (ping, pong, snapshot.get, status queries without filter)."""


@dataclass(frozen=True)
class Snapshot:
    """A publisher's whole state, consistent with its stream at `seq` of `epoch`."""

    epoch: str
    seq: int
    state: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Heartbeat:
    """Published every `interval` seconds; seq is the publisher's current seq."""

    interval: float

    def __post_init__(self) -> None:
        if not self.interval > 0:
            raise ValueError("interval must be positive")


# Container-agent


@dataclass(frozen=True)
class ContainerEnsure:
    """Make the container of `server_id` run the spec whose hash is `spec_hash`, served
    on `host_port`. A running container with the same hash is kept (adopted).

    Secret values never travel: the container-agent creates the container from its own
    reading of mcp.config.json (re-read when its hash of the server differs from
    `spec_hash`)."""

    server_id: str
    host_port: int
    spec_hash: str

    def __post_init__(self) -> None:
        _check_port("host_port", self.host_port)


@dataclass(frozen=True)
class ContainerRef:
    """Body of container.stop / start / restart / remove."""

    server_id: str


@dataclass(frozen=True)
class ContainerStatusQuery:
    server_id: Optional[str] = None  # None: every managed container


class Operation(str, Enum):
    """A container-agent operation on one server's container (ContainerInfo.pending)."""

    ENSURE = "ensure"
    START = "start"
    STOP = "stop"
    RESTART = "restart"
    REMOVE = "remove"

    def __str__(self) -> str:
        return self.value


class BridgeState(str, Enum):
    """The bridge's state of a served server (ContainerInfo.bridge; "" when not served)."""

    STARTING = "starting"  # attached; the server has not answered initialize yet
    READY = "ready"  # initialized (or reverse-proxied): requests are served
    FAILED = "failed"  # runs, but did not answer initialize in time (or refused it)
    DOWN = "down"  # not attached: the container ended, or the attach failed
    DRAINING = "draining"  # swarm: being stopped; serves what comes until its node is out of the target group

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ContainerInfo:
    """What the container-agent knows about one server's container."""

    server_id: str
    container_id: Optional[str] = None
    name: str = ""
    image: str = ""
    state: str = ""  # Docker state, or "missing"
    health: Optional[str] = None  # Docker health status, if the image has a check
    exit_code: Optional[int] = None
    host_port: Optional[int] = None
    spec_hash: str = ""
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    restart_count: int = 0
    bridge: Optional[BridgeState] = None  # None: the bridge does not serve it
    error: Optional[str] = None  # why the last operation on this server failed
    oom_killed: bool = False  # the last exit was the kernel's OOM killer
    # The last stderr lines of the last run (kept after the container is gone, until
    # the next start); secret values masked.
    stderr_tail: list[str] = field(default_factory=list)
    # An operation still running when the reply was sent: its outcome follows as events.
    pending: Optional[Operation] = None
    # Why the bridge does not serve it (failed, down, starting); "" when ready.
    bridge_reason: str = ""
    # The MCP revision its server speaks to the bridge (2026-07-28: the stateless era).
    mcp_version: Optional[str] = None


@dataclass(frozen=True)
class NodeIdentity:
    """A container-agent's node in a swarm (what the scheduler registers at the ALB)."""

    node_id: str = ""  # the Swarm node id of its engine
    hostname: str = ""
    instance_id: str = ""  # the EC2 instance ("" when unknown: see instance_error)
    instance_error: str = ""


@dataclass(frozen=True)
class ClusterSync:
    """A swarm's scheduler to each node's container-agent: every server of the cluster and
    its port (a host without a replica answers 503 there); the reply is its status."""

    ports: dict[str, int] = field(default_factory=dict)
    # The ready nodes, Swarm node id -> address: where a session's owner is reached.
    nodes: dict[str, str] = field(default_factory=dict)
    # Each routed server's registered targets (EC2 instance ids): a draining replica is
    # let go once its node is no longer one.
    targets: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerList:
    containers: list[ContainerInfo] = field(default_factory=list)
    node: Optional[NodeIdentity] = None  # [cluster] engine = swarm: who answers


@dataclass(frozen=True)
class ContainerEvent:
    """Body of container.started / exited / oom / health / bridge.

    container.exited means "the server's container is not running any more": it exited
    (`exit_code`, `stderr_tail`), vanished while the agent was not watching (state
    "missing"), or an operation that should have started it failed (`message`)."""

    server_id: str
    container_id: Optional[str] = None
    state: str = ""
    exit_code: Optional[int] = None
    health: Optional[str] = None
    bridge: Optional[str] = None  # container.bridge: "up", "failed" or "down"
    message: str = ""
    oom_killed: bool = False
    stderr_tail: list[str] = field(default_factory=list)  # exited: secret values masked
    host_port: Optional[int] = None
    # exited: the orchestrator asked for it (stop, restart, recreate, remove): not a crash.
    requested: bool = False


# Alb-agent


@dataclass(frozen=True)
class RouteEntry:
    server_id: str
    port: int
    enabled: bool = True
    # The EC2 instances that serve it ([cluster] engine = swarm: the nodes running a ready
    # replica); None: the alb-agent's own instance (one host).
    targets: Optional[list[str]] = None

    def __post_init__(self) -> None:
        _check_port("port", self.port)


@dataclass(frozen=True)
class RoutesApply:
    """The full wanted routing: servers not listed lose their rule and target group."""

    routes: list[RouteEntry] = field(default_factory=list)
    dry_run: bool = False


@dataclass(frozen=True)
class RoutesStatusQuery:
    server_id: Optional[str] = None


@dataclass(frozen=True)
class RouteChange:
    action: str  # create / modify / delete / register / deregister
    resource: str  # target-group / rule / target
    server_id: Optional[str] = None
    detail: str = ""


@dataclass(frozen=True)
class RouteInfo:
    server_id: str
    port: Optional[int] = None
    enabled: bool = True
    target_group_arn: Optional[str] = None
    target_group_name: Optional[str] = None
    rule_arn: Optional[str] = None
    priority: Optional[int] = None
    health: Optional[str] = None  # ELBv2 target health state
    error: Optional[str] = None
    targets: list[str] = field(default_factory=list)  # instances registered (not draining)


@dataclass(frozen=True)
class RoutesResult:
    dry_run: bool = False
    changes: list[RouteChange] = field(default_factory=list)
    routes: list[RouteInfo] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    pending: bool = False  # still being applied when the reply was sent: route.* events follow


@dataclass(frozen=True)
class ListenerInfo:
    arn: str = ""
    protocol: Optional[str] = None
    port: Optional[int] = None


@dataclass(frozen=True)
class RuleInfo:
    """One rule of the listener, ours or not. Kinds only for conditions and actions (an
    action's fields may name an identity provider's client)."""

    arn: str
    priority: Optional[int] = None  # None: the listener's default rule
    owned: bool = False
    server_id: Optional[str] = None  # ours: the server it routes
    path_patterns: list[str] = field(default_factory=list)
    target_group_arns: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TargetInfo:
    instance_id: str
    port: int
    state: str = ""  # ELBv2 target health state
    reason: Optional[str] = None
    description: Optional[str] = None


@dataclass(frozen=True)
class TargetGroupInfo:
    server_id: str
    name: str
    arn: str
    health_check_path: str = ""
    targets: list[TargetInfo] = field(default_factory=list)


@dataclass(frozen=True)
class AwsProblem:
    """An AWS error: for one server (`server_id`), or one that stopped a whole apply or
    read (`operation`)."""

    code: str
    message: str
    server_id: Optional[str] = None
    operation: str = ""


@dataclass(frozen=True)
class ApplySummary:
    ok: bool
    at: float  # wall-clock time it finished
    changes: int = 0  # AWS changes made


@dataclass(frozen=True)
class RoutingStatus:
    """The alb-agent's whole view: listener, rules (ours and foreign), target groups
    with their targets and health. AWS ids only, never a secret. While AWS cannot be
    read, the last good view comes back with `stale` set."""

    known: bool = False  # False until AWS was read once
    cluster: str = ""
    load_balancer_arn: str = ""
    listener: ListenerInfo = field(default_factory=ListenerInfo)
    instance_id: str = ""
    vpc_id: str = ""
    priority_range: list[int] = field(default_factory=list)  # [first, last]
    rules: list[RuleInfo] = field(default_factory=list)  # by priority, the default last
    target_groups: list[TargetGroupInfo] = field(default_factory=list)
    degraded: bool = False  # the last AWS call failed
    stale: bool = False
    failure: Optional[AwsProblem] = None  # what stopped the last apply or read
    errors: list[AwsProblem] = field(default_factory=list)  # per server, from the last apply
    busy: bool = False  # an apply is queued or running
    last_apply: Optional[ApplySummary] = None


@dataclass(frozen=True)
class RoutesList:
    routes: list[RouteInfo] = field(default_factory=list)
    status: RoutingStatus = field(default_factory=RoutingStatus)


@dataclass(frozen=True)
class RouteEvent:
    """Body of route.created / changed / removed / health / error / quota."""

    server_id: Optional[str] = None
    target_group_arn: Optional[str] = None
    rule_arn: Optional[str] = None
    priority: Optional[int] = None
    health: Optional[str] = None
    code: Optional[str] = None
    message: str = ""


# Scheduler

ControlActionName = Literal["start", "stop", "restart", "sync", "reload"]
_SERVER_ACTIONS = ("start", "stop", "restart")


@dataclass(frozen=True)
class ControlStatusQuery:
    server_id: Optional[str] = None


@dataclass(frozen=True)
class ControlAction:
    """start / stop / restart one server; sync all servers (or one); reload the config."""

    action: ControlActionName
    server_id: Optional[str] = None

    def __post_init__(self) -> None:
        if self.action in _SERVER_ACTIONS and not self.server_id:
            raise ValueError(f"action '{self.action}' needs a server_id")
        if self.action == "reload" and self.server_id is not None:
            raise ValueError("action 'reload' applies to the whole configuration, not one server")


@dataclass(frozen=True)
class ControlAccepted:
    action: str
    server_id: Optional[str] = None
    message: str = ""


class ServerStatus(str, Enum):
    """The one word the scheduler says about a server (ServerState.status)."""

    PENDING = "pending"  # wanted, not started yet
    STARTING = "starting"  # being created or started, or its server not initialized yet
    RUNNING = "running"  # runs and its bridge serves it
    STOPPING = "stopping"
    STOPPED = "stopped"  # by hand: stays stopped until started
    CRASH_LOOPING = "crash-looping"  # keeps failing: restarted with a back-off
    ERROR = "error"
    INVALID = "invalid"  # its configuration entry is wrong: the last good spec (if any) runs
    DISABLED = "disabled"
    REMOVED = "removed"  # left the configuration
    UNKNOWN = "unknown"  # not known yet (no usable configuration, or the agent not heard)

    def __str__(self) -> str:
        return self.value


class RouteState(str, Enum):
    """A server's route at the ALB (ServerState.route)."""

    UNKNOWN = "unknown"  # the alb-agent has not answered yet
    NONE = "none"  # not routed, and not wanted
    PENDING = "pending"  # wanted, not in place yet
    ROUTED = "routed"
    REMOVING = "removing"  # in place, no longer wanted
    ERROR = "error"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ServerState:
    """The scheduler's view of one server (published as state.server)."""

    server_id: str
    status: ServerStatus = ServerStatus.UNKNOWN
    enabled: bool = True
    removed: bool = False  # the server left the configuration
    image: str = ""
    host_port: Optional[int] = None
    container_id: Optional[str] = None
    health: Optional[str] = None
    route: Optional[RouteState] = None
    restarts: int = 0
    exit_code: Optional[int] = None
    last_error: Optional[str] = None
    next_restart_at: Optional[float] = None
    env_names: list[str] = field(default_factory=list)  # names only, never values
    updated_at: Optional[float] = None
    # Added for the dashboard and the CLI (consumers treat a missing field as unknown).
    container_name: str = ""
    started_at: Optional[str] = None  # Docker's StartedAt of the running container
    url: str = ""  # where MCP clients reach it (/mcp/{id}/mcp)
    transport: str = ""  # stdio | http (inside the container)
    bridge: Optional[BridgeState] = None  # None: not served by a bridge
    spec_hash: str = ""  # of the spec in force
    stderr_tail: list[str] = field(default_factory=list)  # last stderr lines (secrets masked)
    mounts: list[str] = field(default_factory=list)  # volumes and mounts, as written
    failures: int = 0  # consecutive failed starts (crash loop)
    backoff_seconds: Optional[float] = None  # the current restart delay while crash-looping
    oom_killed: bool = False
    stopped_by_hand: bool = False  # held stopped until started or reconfigured
    config_error: Optional[str] = None  # the file's problem while the last good spec runs
    route_priority: Optional[int] = None
    mcp_version: Optional[str] = None  # the MCP revision the server speaks (its era)
    route_target_group: Optional[str] = None
    route_health: Optional[str] = None  # the ALB's target health
    route_error: Optional[str] = None
    # [cluster] engine = swarm: the server's service.
    replicas: Optional[int] = None  # replicas asked for (None: one host, one container)
    replicas_running: Optional[int] = None
    nodes: list[str] = field(default_factory=list)  # host names of the nodes running one
    served_by: list[str] = field(default_factory=list)  # ... whose bridge serves it (the ALB targets)


@dataclass(frozen=True)
class ConfigState:
    """The configuration in force (published as state.config)."""

    path: str = ""
    ok: bool = True
    loaded_at: Optional[float] = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    server_ids: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # True while the file on disk is unusable and the last good configuration stays in force.
    kept_last_good: bool = False
    checked_at: Optional[float] = None  # when the file was last read
    settings_path: str = ""


@dataclass(frozen=True)
class AgentsState:
    """Whether the scheduler reaches its agents (published as state.agents)."""

    agents: dict[str, str] = field(default_factory=dict)  # agent name -> available/unavailable
    agent_errors: dict[str, str] = field(default_factory=dict)  # why an agent is unavailable


@dataclass(frozen=True)
class RoutingView:
    """Routing as the scheduler knows it (published as state.routing)."""

    simulated: bool = False  # no ALB configured: the local AWS stand-in
    known: bool = False  # the alb-agent answered since it (or the scheduler) started
    routes: list[RouteInfo] = field(default_factory=list)
    error: Optional[str] = None  # why the last routes.apply failed
    alb: RoutingStatus = field(default_factory=RoutingStatus)


@dataclass(frozen=True)
class StateEvent:
    """Something worth showing in the dashboard's event list (published as state.event)."""

    message: str
    level: Literal["info", "warning", "error"] = "info"
    server_id: Optional[str] = None
    code: Optional[str] = None
    ts: Optional[float] = None  # when the scheduler noted it


@dataclass(frozen=True)
class NodeView:
    """One host of a swarm as the scheduler sees it (published in state.cluster)."""

    node_id: str
    hostname: str = ""
    address: str = ""
    zone: str = ""
    role: str = ""  # manager | worker
    leader: bool = False
    state: str = ""  # Swarm's: ready | down | unknown | disconnected
    availability: str = ""  # active | pause | drain
    reachable: Optional[bool] = None  # its container-agent answered (None: not asked)
    error: str = ""  # why it did not
    instance_id: str = ""
    serves: list[str] = field(default_factory=list)  # servers its bridge serves (ready)


@dataclass(frozen=True)
class ControlView:
    """Which manager's control plane acts ([cluster] engine = swarm): this scheduler's role
    and the node that holds the lease (services/scheduler/control_lease.py)."""

    role: str = "active"  # active | standby (one host: always active)
    node_id: str = ""  # this scheduler's node
    hostname: str = ""
    active_node: str = ""  # host name of the node whose control plane acts ("" = none known)
    since: Optional[float] = None  # when this role began
    reason: str = ""  # why standing by


@dataclass(frozen=True)
class ClusterView:
    """The hosts ([cluster] engine = swarm; one host: engine docker and no nodes)."""

    engine: str = "docker"
    nodes: list[NodeView] = field(default_factory=list)
    control: ControlView = field(default_factory=ControlView)


@dataclass(frozen=True)
class ControlState:
    """The scheduler's whole state: the control.status reply and its snapshot."""

    servers: list[ServerState] = field(default_factory=list)
    config: ConfigState = field(default_factory=ConfigState)
    agents: dict[str, str] = field(default_factory=dict)  # agent name -> available/unavailable
    routing: RoutingView = field(default_factory=RoutingView)
    agent_errors: dict[str, str] = field(default_factory=dict)  # why an agent is unavailable
    events: list[StateEvent] = field(default_factory=list)  # the most recent, oldest first
    reconciles: int = 0  # reconcile passes completed since start
    last_reconcile_at: Optional[float] = None
    started_at: Optional[float] = None  # when the scheduler started
    port_range: list[int] = field(default_factory=list)  # [first, last]
    cluster: ClusterView = field(default_factory=ClusterView)


@dataclass(frozen=True)
class PlanStep:
    action: str
    server_id: Optional[str] = None
    reason: str = ""


@dataclass(frozen=True)
class ControlPlan:
    steps: list[PlanStep] = field(default_factory=list)


@dataclass(frozen=True)
class TrafficQuery:
    """Body of container.traffic and control.traffic: every served server's numbers, or
    one server's; with `detail`, also its tools, prompts and resources and recent calls."""

    server_id: Optional[str] = None
    detail: bool = False


@dataclass(frozen=True)
class TrafficSeries:
    """A chart: per bucket of the report's `bucket_seconds` from `start` (epoch seconds,
    oldest first), the calls that ended in it, how many failed, and their p95 (None: no
    calls). Columns, not a record per point: 200 servers' charts are 200 records."""

    start: float = 0.0
    calls: list[int] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)
    p95_ms: list[Optional[float]] = field(default_factory=list)


@dataclass(frozen=True)
class TrafficWindow:
    """The last `seconds`: what the overview shows."""

    seconds: int
    calls: int = 0
    errors: int = 0
    calls_per_minute: float = 0.0
    error_rate: float = 0.0
    p50_ms: Optional[float] = None
    p95_ms: Optional[float] = None


@dataclass(frozen=True)
class ToolTraffic:
    tool: str
    calls: int = 0
    errors: int = 0
    p50_ms: Optional[float] = None
    p95_ms: Optional[float] = None
    series: TrafficSeries = field(default_factory=TrafficSeries)


@dataclass(frozen=True)
class RecentCall:
    """One answered request: never its arguments or result."""

    t: float
    method: str
    tool: str = ""
    era: str = ""
    outcome: str = ""
    status: Optional[int] = None  # the HTTP status
    ms: float = 0.0


@dataclass(frozen=True)
class CatalogTool:
    name: str
    title: Optional[str] = None
    description: str = ""
    input_schema_json: str = ""  # indented JSON text (any depth), bounded in size


@dataclass(frozen=True)
class CatalogPromptArgument:
    name: str
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class CatalogPrompt:
    name: str
    description: str = ""
    arguments: list[CatalogPromptArgument] = field(default_factory=list)


@dataclass(frozen=True)
class CatalogResource:
    name: str
    uri: str = ""
    description: str = ""
    mime_type: Optional[str] = None


@dataclass(frozen=True)
class Catalog:
    """What a server offers, from the bridge's cached list results."""

    tools: list[CatalogTool] = field(default_factory=list)
    prompts: list[CatalogPrompt] = field(default_factory=list)
    resources: list[CatalogResource] = field(default_factory=list)
    error: Optional[str] = None  # why the lists could not be read (or were cut)


@dataclass(frozen=True)
class ServerTrafficReport:
    """What the bridge served for one server (see the bridge's traffic.ServerTraffic)."""

    server_id: str
    window: TrafficWindow
    bucket_seconds: int = 10
    now: float = 0.0
    series: TrafficSeries = field(default_factory=TrafficSeries)
    tools: Optional[list[ToolTraffic]] = None  # with detail only, like the next two
    recent: Optional[list[RecentCall]] = None  # newest first
    catalog: Optional[Catalog] = None


@dataclass(frozen=True)
class TrafficReport:
    """Reply to container.traffic and control.traffic."""

    servers: list[ServerTrafficReport] = field(default_factory=list)


# ------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class MessageType:
    name: str
    body: type
    kind: Kind
    reply: Optional[str] = None  # for a request: the type of its successful reply


def _registry(*types: MessageType) -> Mapping[str, MessageType]:
    table: dict[str, MessageType] = {}
    for t in types:
        if t.name in table or t.name == ERROR_TYPE:
            raise ValueError(f"message type '{t.name}' defined twice (or reserved)")
        if not (is_dataclass(t.body) and t.body.__dataclass_params__.frozen):
            raise ValueError(f"body of '{t.name}' must be a frozen dataclass")
        table[t.name] = t
    for t in types:
        if t.kind is Kind.REQUEST and (t.reply not in table or table[t.reply].kind is not Kind.REPLY):
            raise ValueError(f"request '{t.name}' names no reply type")
    return table


_R, _P, _E = Kind.REQUEST, Kind.REPLY, Kind.EVENT

MESSAGE_TYPES: Mapping[str, MessageType] = _registry(
    # generic
    MessageType("ping", Empty, _R, reply="pong"),
    MessageType("pong", Empty, _P),
    MessageType("snapshot.get", Empty, _R, reply="snapshot"),
    MessageType("snapshot", Snapshot, _P),
    MessageType("heartbeat", Heartbeat, _E),
    # container-agent: REP `containers`, PUB `container-events`
    MessageType("container.ensure", ContainerEnsure, _R, reply="container.info"),
    MessageType("container.stop", ContainerRef, _R, reply="container.info"),
    MessageType("container.start", ContainerRef, _R, reply="container.info"),
    MessageType("container.restart", ContainerRef, _R, reply="container.info"),
    MessageType("container.remove", ContainerRef, _R, reply="container.info"),
    MessageType("container.status", ContainerStatusQuery, _R, reply="container.list"),
    MessageType("cluster.sync", ClusterSync, _R, reply="container.list"),
    MessageType("container.info", ContainerInfo, _P),
    MessageType("container.list", ContainerList, _P),
    MessageType("container.traffic", TrafficQuery, _R, reply="container.traffic_report"),
    MessageType("container.traffic_report", TrafficReport, _P),
    MessageType("container.started", ContainerEvent, _E),
    MessageType("container.exited", ContainerEvent, _E),
    MessageType("container.oom", ContainerEvent, _E),
    MessageType("container.health", ContainerEvent, _E),
    MessageType("container.bridge", ContainerEvent, _E),
    # alb-agent: REP `routes`, PUB `route-events`
    MessageType("routes.apply", RoutesApply, _R, reply="routes.result"),
    MessageType("routes.status", RoutesStatusQuery, _R, reply="routes.list"),
    MessageType("routes.result", RoutesResult, _P),
    MessageType("routes.list", RoutesList, _P),
    MessageType("route.created", RouteEvent, _E),
    MessageType("route.changed", RouteEvent, _E),
    MessageType("route.removed", RouteEvent, _E),
    MessageType("route.health", RouteEvent, _E),
    MessageType("route.error", RouteEvent, _E),
    MessageType("route.aws_error", RouteEvent, _E),
    MessageType("route.quota", RouteEvent, _E),
    MessageType("route.recovered", RouteEvent, _E),
    # scheduler: REP `control`, PUB `state`
    MessageType("control.status", ControlStatusQuery, _R, reply="control.state"),
    MessageType("control.action", ControlAction, _R, reply="control.accepted"),
    MessageType("control.plan", Empty, _R, reply="control.plan_result"),
    MessageType("control.state", ControlState, _P),
    MessageType("control.accepted", ControlAccepted, _P),
    MessageType("control.plan_result", ControlPlan, _P),
    MessageType("control.traffic", TrafficQuery, _R, reply="control.traffic_report"),
    MessageType("control.traffic_report", TrafficReport, _P),
    MessageType("state.server", ServerState, _E),
    MessageType("state.config", ConfigState, _E),
    MessageType("state.event", StateEvent, _E),
    MessageType("state.agents", AgentsState, _E),
    MessageType("state.routing", RoutingView, _E),
    MessageType("state.cluster", ClusterView, _E),
)


def message_type(name: str, kind: Optional[Kind] = None) -> MessageType:
    """The registered type `name` (of `kind`, if given), else ProtocolError(unknown_type)."""
    spec = MESSAGE_TYPES.get(name)
    if spec is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {_shown(name)}")
    if kind is not None and spec.kind is not kind:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"'{name}' is a {spec.kind}, not a {kind}")
    return spec


# ------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class ErrorInfo:
    code: Union[ErrorCode, str]
    message: str


@dataclass(frozen=True)
class Message:
    """One decoded message: a request, a reply or a published event."""

    type: str
    id: str
    src: str
    ts: float
    body: Any = None  # an instance of the type's body class; None on error
    v: int = PROTOCOL_VERSION
    reply_to: Optional[str] = None  # replies
    ok: Optional[bool] = None  # replies
    error: Optional[ErrorInfo] = None  # replies with ok=False
    seq: Optional[int] = None  # published
    epoch: Optional[str] = None  # published

    @property
    def kind(self) -> Kind:
        if self.type == ERROR_TYPE:
            return Kind.REPLY
        return MESSAGE_TYPES[self.type].kind


def new_id() -> str:
    return uuid.uuid4().hex


def request(type: str, body: Any = None, src: str = "") -> Message:
    """A new request of `type`; `body` None means the body class's defaults."""
    spec = message_type(type, Kind.REQUEST)
    return Message(type=type, id=new_id(), src=src, ts=time.time(), body=_body_for(spec, body))


def reply_ok(req: Message, body: Any = None, src: str = "") -> Message:
    """The successful reply to `req`; `body` must be of the request's reply type."""
    spec = MESSAGE_TYPES[message_type(req.type, Kind.REQUEST).reply]
    return Message(
        type=spec.name, id=new_id(), src=src, ts=time.time(), body=_body_for(spec, body), reply_to=req.id, ok=True
    )


def reply_error(req: Union[Message, str, None], code: Union[ErrorCode, str], message: str, src: str = "") -> Message:
    """The error reply to `req` (a request, its id, or None when no id could be read)."""
    reply_to = req.id if isinstance(req, Message) else (req or "")
    return Message(
        type=ERROR_TYPE,
        id=new_id(),
        src=src,
        ts=time.time(),
        reply_to=reply_to,
        ok=False,
        error=ErrorInfo(as_error_code(code), message),
    )


def published(type: str, body: Any, *, src: str, seq: int, epoch: str) -> Message:
    """An event for a PUB socket (the Publisher stamps seq and epoch)."""
    spec = message_type(type, Kind.EVENT)
    return Message(type=type, id=new_id(), src=src, ts=time.time(), body=_body_for(spec, body), seq=seq, epoch=epoch)


def _body_for(spec: MessageType, body: Any) -> Any:
    if body is None:
        try:
            return spec.body()
        except (TypeError, ValueError):
            raise ProtocolError(
                ErrorCode.INVALID_BODY, f"'{spec.name}' needs a body of type {spec.body.__name__}"
            ) from None
    if not isinstance(body, spec.body):
        raise ProtocolError(
            ErrorCode.INVALID_BODY,
            f"'{spec.name}' takes a body of type {spec.body.__name__}, not {type(body).__name__}",
        )
    return body


# ------------------------------------------------------------------------- encoding


def encode(msg: Message, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """`msg` as msgpack bytes; ProtocolError if it is not valid or over `max_bytes`."""
    envelope: dict[str, Any] = {"v": PROTOCOL_VERSION, "type": msg.type, "id": msg.id}
    if msg.type == ERROR_TYPE:
        if msg.ok is not False or msg.error is None or not isinstance(msg.reply_to, str):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "an error reply needs reply_to, ok=False and error")
        envelope.update(reply_to=msg.reply_to, ok=False)
    else:
        spec = message_type(msg.type)
        if spec.kind is Kind.REPLY:
            if msg.ok is not True or not isinstance(msg.reply_to, str):
                raise ProtocolError(ErrorCode.BAD_MESSAGE, f"reply '{msg.type}' needs reply_to and ok=True")
            envelope.update(reply_to=msg.reply_to, ok=True)
        elif spec.kind is Kind.EVENT:
            if not _is_int(msg.seq) or msg.seq < 0 or not isinstance(msg.epoch, str):
                raise ProtocolError(ErrorCode.BAD_MESSAGE, f"event '{msg.type}' needs seq and epoch")
            envelope.update(seq=msg.seq, epoch=msg.epoch)
    if not (_is_int(msg.ts) or isinstance(msg.ts, float)):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"'{msg.type}' needs a numeric ts")
    envelope.update(ts=float(msg.ts), src=_text(msg.src, msg.type, "src"))
    if msg.type == ERROR_TYPE:
        envelope["error"] = {
            "code": _text(str(msg.error.code), msg.type, "error code"),
            "message": _text(msg.error.message, msg.type, "error message"),
        }
    else:
        try:
            envelope["body"] = _to_wire(_body_for(spec, msg.body), spec.body, "", 0)
        except _Invalid as exc:
            raise ProtocolError(ErrorCode.INVALID_BODY, exc.describe(msg.type)) from None
    try:
        data = msgpack.packb(envelope, use_bin_type=True, default=_refuse)
    except (TypeError, ValueError, OverflowError) as exc:
        # Only the class name: an exception text could quote the offending value.
        raise ProtocolError(ErrorCode.INVALID_BODY, f"'{msg.type}' cannot be encoded ({type(exc).__name__})") from None
    if len(data) > max_bytes:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"'{msg.type}' is {len(data)} bytes, over the limit of {max_bytes}")
    return data


def encode_published(msg: Message, max_bytes: int = DEFAULT_MAX_BYTES) -> list[bytes]:
    """The two frames [topic, payload] of an event."""
    if message_type(msg.type).kind is not Kind.EVENT:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"'{msg.type}' is not an event")
    return [msg.type.encode(), encode(msg, max_bytes)]


def _text(value: Any, mtype: str, what: str) -> str:
    if isinstance(value, Secret):
        raise ProtocolError(
            ErrorCode.INVALID_BODY, f"'{mtype}': {what} holds a Secret: secret values are never sent in messages"
        )
    if not isinstance(value, str):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"'{mtype}': {what} must be str, got {_kind_of(value)}")
    return str.__str__(value)


def _refuse(obj: Any) -> Any:
    # msgpack calls this for anything it cannot pack; _to_wire already let through
    # only plain data, so this is a safety net. Never put the value in the message.
    raise TypeError(f"cannot pack {type(obj).__name__}")


# ------------------------------------------------------------------------- decoding


def decode(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Message:
    """The Message in `data`; ProtocolError if it is too large, malformed or invalid."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"expected bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise ProtocolError(
            ErrorCode.TOO_LARGE, f"message of {len(data)} bytes is over the limit of {max_bytes}", msg_id=peek_id(data)
        )
    limit = max(len(data), 1)
    try:
        raw = msgpack.unpackb(
            bytes(data),
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_str_len=limit,
            max_bin_len=limit,
            max_array_len=limit,
            max_map_len=limit,
            max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises many kinds; none may escape as a crash
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"not a msgpack message ({type(exc).__name__})") from None
    return _from_envelope(raw)


def decode_published(frames: Sequence[bytes], max_bytes: int = DEFAULT_MAX_BYTES) -> Message:
    """The event in the frames [topic, payload] received on a SUB socket."""
    if len(frames) != 2:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"expected 2 frames [topic, payload], got {len(frames)}")
    msg = decode(frames[1], max_bytes)
    if msg.kind is not Kind.EVENT:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"'{msg.type}' is not an event", msg_id=msg.id)
    if bytes(frames[0]) != msg.type.encode():
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"topic does not match type '{msg.type}'", msg_id=msg.id)
    return msg


def peek_id(data: bytes) -> Optional[str]:
    """The `id` of an envelope without unpacking the rest (for errors about big messages)."""
    try:
        unpacker = msgpack.Unpacker(
            raw=False,
            max_buffer_size=4096,
            max_str_len=256,
            max_bin_len=256,
            max_array_len=64,
            max_map_len=64,
            max_ext_len=0,
        )
        unpacker.feed(bytes(data[:4096]))
        for _ in range(min(unpacker.read_map_header(), 8)):
            key = unpacker.unpack()
            if key == "id":
                value = unpacker.unpack()
                return value if isinstance(value, str) and 0 < len(value) <= _MAX_ID_LEN else None
            unpacker.skip()
    except Exception:  # the id is a courtesy: anything unreadable means "no id"
        return None
    return None


def _from_envelope(raw: Any) -> Message:
    if not isinstance(raw, dict):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"message is a {_kind_of(raw)}, not a map")
    msg_id = raw.get("id")
    if not isinstance(msg_id, str) or not msg_id or len(msg_id) > _MAX_ID_LEN:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "message has no valid 'id'")
    v = raw.get("v")
    if not _is_int(v):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "message has no valid 'v'", msg_id=msg_id)
    if v != PROTOCOL_VERSION:
        raise ProtocolError(
            ErrorCode.VERSION_MISMATCH,
            f"protocol version {v} is not supported (this side speaks {PROTOCOL_VERSION})",
            msg_id=msg_id,
        )
    mtype = raw.get("type")
    if not isinstance(mtype, str):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "message has no valid 'type'", msg_id=msg_id)
    ts, src = raw.get("ts"), raw.get("src", "")
    if not (_is_int(ts) or isinstance(ts, float)) or not isinstance(src, str):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "message has no valid 'ts' or 'src'", msg_id=msg_id)
    common = dict(type=mtype, id=msg_id, src=src, ts=float(ts), v=v)

    if mtype == ERROR_TYPE:
        reply_to, error = raw.get("reply_to"), raw.get("error")
        if (
            not isinstance(reply_to, str)
            or raw.get("ok") is not False
            or not isinstance(error, dict)
            or not isinstance(error.get("code"), str)
            or not isinstance(error.get("message"), str)
        ):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "malformed error reply", msg_id=msg_id)
        return Message(
            **common, reply_to=reply_to, ok=False, error=ErrorInfo(as_error_code(error["code"]), error["message"])
        )

    try:
        spec = message_type(mtype)
    except ProtocolError as exc:
        raise ProtocolError(exc.code, exc.message, msg_id=msg_id) from None
    extra: dict[str, Any] = {}
    if spec.kind is Kind.REPLY:
        if not isinstance(raw.get("reply_to"), str) or raw.get("ok") is not True:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"reply '{mtype}' needs reply_to and ok=true", msg_id=msg_id)
        extra = dict(reply_to=raw["reply_to"], ok=True)
    elif spec.kind is Kind.EVENT:
        seq, epoch = raw.get("seq"), raw.get("epoch")
        if not _is_int(seq) or seq < 0 or not isinstance(epoch, str):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"event '{mtype}' needs seq and epoch", msg_id=msg_id)
        extra = dict(seq=seq, epoch=epoch)
    try:
        body = _from_wire(raw.get("body", {}), spec.body, "", 0)
    except _Invalid as exc:
        raise ProtocolError(ErrorCode.INVALID_BODY, exc.describe(mtype), msg_id=msg_id) from None
    return Message(**common, body=body, **extra)


# --------------------------------------------------------------- field validation


class _Invalid(Exception):
    """A body field is wrong; `path` names it (e.g. routes[0].port). Never holds a value."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path = path
        self.reason = reason

    def describe(self, mtype: str) -> str:
        where = f"field '{self.path}'" if self.path else "body"
        return f"'{mtype}': {where} {self.reason}"


@dataclass(frozen=True)
class _Field:
    name: str
    type: Any
    required: bool


@functools.lru_cache(maxsize=None)
def _fields_of(cls: type) -> tuple[_Field, ...]:
    hints = get_type_hints(cls)
    return tuple(
        _Field(f.name, hints[f.name], f.default is MISSING and f.default_factory is MISSING)
        for f in fields(cls)
        if f.init
    )


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _kind_of(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, Secret):
        return "Secret"
    return {
        bool: "bool",
        int: "int",
        float: "float",
        str: "str",
        bytes: "bytes",
        list: "list",
        tuple: "list",
        dict: "map",
    }.get(type(v), type(v).__name__)


def _expected(tp: Any) -> str:
    origin = get_origin(tp)
    if tp is Any:
        return "plain data"
    if origin is Union:
        return " or ".join("null" if a is type(None) else _expected(a) for a in get_args(tp))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin is list or tp is list:
        return "a list"
    if origin is dict or tp is dict:
        return "a map"
    if is_dataclass(tp):
        return f"a {tp.__name__} map"
    if isinstance(tp, type) and issubclass(tp, Enum):
        return "one of " + ", ".join(repr(m.value) for m in tp)
    return getattr(tp, "__name__", str(tp))


def _enum(value: Any, tp: type, path: str) -> Any:
    # Sent as the plain value; received as the member. A value this side does not know
    # is refused like any other wrong field.
    if isinstance(value, str):
        try:
            return tp(value)
        except ValueError:
            pass
    raise _Invalid(path, f"must be {_expected(tp)}")


def _scalar(value: Any, tp: Any, path: str) -> Any:
    if tp is str and isinstance(value, str):
        return str.__str__(value)  # a str subclass (an Enum) goes out as its plain value
    if tp is int and _is_int(value):
        return int(value)
    if tp is float and (_is_int(value) or isinstance(value, float)):
        return float(value)
    if tp is bool and isinstance(value, bool):
        return value
    if tp is type(None) and value is None:
        return None
    raise _Invalid(path, f"must be {_expected(tp)}, got {_kind_of(value)}")


_ANY, _UNION, _LITERAL, _LIST, _DICT, _RECORD, _ENUM, _SCALAR = range(8)


@functools.lru_cache(maxsize=None)
def _type_kind(tp: Any) -> int:
    """How a declared field type is converted (looked up once per type: the hot path
    of every message)."""
    origin = get_origin(tp)
    if tp is Any:
        return _ANY
    if origin is Union:
        return _UNION
    if origin is Literal:
        return _LITERAL
    if origin is list or tp is list:
        return _LIST
    if origin is dict or tp is dict:
        return _DICT
    if is_dataclass(tp):
        return _RECORD
    if isinstance(tp, type) and issubclass(tp, Enum):
        return _ENUM
    return _SCALAR


def _to_wire(value: Any, tp: Any, path: str, depth: int) -> Any:
    """Plain msgpack-ready data for `value` of declared type `tp` (validating it)."""
    if isinstance(value, Secret):
        raise _Invalid(path, "holds a Secret: secret values are never sent in messages")
    if depth > MAX_DEPTH:
        raise _Invalid(path, "is nested too deeply")
    kind = _type_kind(tp)
    if kind == _SCALAR:
        return _scalar(value, tp, path)
    if kind == _UNION:
        return _union(value, tp, path, depth, _to_wire)
    if kind == _RECORD:
        if not isinstance(value, tp):
            raise _Invalid(path, f"must be {_expected(tp)}, got {_kind_of(value)}")
        return {
            f.name: _to_wire(getattr(value, f.name), f.type, _join(path, f.name), depth + 1) for f in _fields_of(tp)
        }
    if kind == _LIST:
        if not isinstance(value, (list, tuple)):
            raise _Invalid(path, f"must be a list, got {_kind_of(value)}")
        (item,) = get_args(tp) or (Any,)
        return [_to_wire(v, item, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    if kind == _ENUM:
        return str.__str__(_enum(value, tp, path).value)
    if kind == _ANY:
        return _plain(value, path, depth, to_wire=True)
    if kind == _LITERAL:
        return _literal(value, tp, path)
    return _map(value, tp, path, depth, _to_wire)


def _from_wire(value: Any, tp: Any, path: str, depth: int) -> Any:
    """The typed value for received plain data `value` of declared type `tp`."""
    if depth > MAX_DEPTH:
        raise _Invalid(path, "is nested too deeply")
    kind = _type_kind(tp)
    if kind == _SCALAR:
        return _scalar(value, tp, path)
    if kind == _UNION:
        return _union(value, tp, path, depth, _from_wire)
    if kind == _RECORD:
        if not isinstance(value, dict):
            raise _Invalid(path, f"must be {_expected(tp)}, got {_kind_of(value)}")
        kwargs = {}
        for f in _fields_of(tp):
            if f.name in value:
                kwargs[f.name] = _from_wire(value[f.name], f.type, _join(path, f.name), depth + 1)
            elif f.required:
                raise _Invalid(_join(path, f.name), "is missing")
        try:
            return tp(**kwargs)
        except (TypeError, ValueError) as exc:  # __post_init__ checks; their texts hold no values
            raise _Invalid(path, f"is not valid: {exc}") from None
    if kind == _LIST:
        if not isinstance(value, list):
            raise _Invalid(path, f"must be a list, got {_kind_of(value)}")
        (item,) = get_args(tp) or (Any,)
        return [_from_wire(v, item, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    if kind == _ENUM:
        return _enum(value, tp, path)
    if kind == _ANY:
        return _plain(value, path, depth, to_wire=False)
    if kind == _LITERAL:
        return _literal(value, tp, path)
    return _map(value, tp, path, depth, _from_wire)


@functools.lru_cache(maxsize=None)
def _members(tp: Any) -> tuple[tuple[Any, ...], bool]:
    """A Union's types other than None, and whether None is one of them."""
    args = get_args(tp)
    return tuple(a for a in args if a is not type(None)), type(None) in args


def _union(value: Any, tp: Any, path: str, depth: int, convert) -> Any:
    members, optional = _members(tp)
    if value is None and optional:
        return None
    for arg in members:
        try:
            return convert(value, arg, path, depth)
        except _Invalid:
            if len(members) == 1:
                raise
    raise _Invalid(path, f"must be {_expected(tp)}, got {_kind_of(value)}")


def _literal(value: Any, tp: Any, path: str) -> Any:
    for allowed in get_args(tp):
        if type(value) is type(allowed) and value == allowed:
            return allowed
        if isinstance(allowed, str) and isinstance(value, str) and value == allowed:
            return allowed
    raise _Invalid(path, f"must be {_expected(tp)}")


def _map(value: Any, tp: Any, path: str, depth: int, convert) -> dict:
    if not isinstance(value, dict):
        raise _Invalid(path, f"must be a map, got {_kind_of(value)}")
    key_tp, val_tp = get_args(tp) or (str, Any)
    out = {}
    for k, v in value.items():
        if not isinstance(k, str):
            raise _Invalid(path, f"must have str keys, got {_kind_of(k)}")
        out[str.__str__(k)] = convert(v, val_tp, _join(path, _shown_key(k)), depth + 1)
    return out


def _plain(value: Any, path: str, depth: int, *, to_wire: bool) -> Any:
    """Validate free-form plain data (fields typed Any, e.g. a spec or a state map)."""
    if depth > MAX_DEPTH:
        raise _Invalid(path, "is nested too deeply")
    if isinstance(value, Secret):
        raise _Invalid(path, "holds a Secret: secret values are never sent in messages")
    if value is None or isinstance(value, (bool, float)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, list) or (to_wire and isinstance(value, tuple)):
        return [_plain(v, f"{path}[{i}]", depth + 1, to_wire=to_wire) for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise _Invalid(path, f"must have str keys, got {_kind_of(k)}")
            out[str.__str__(k)] = _plain(v, _join(path, _shown_key(k)), depth + 1, to_wire=to_wire)
        return out
    raise _Invalid(path, f"holds {_kind_of(value)}, which is not plain data")


def _shown_key(key: str) -> str:
    # Map keys are names (server ids, env names), but cut them short in messages.
    return key if len(key) <= 40 else key[:37] + "..."


def _shown(name: Any) -> str:
    text = name if isinstance(name, str) else type(name).__name__
    return repr(text if len(text) <= 64 else text[:61] + "...")


# ------------------------------------------------------------------ plain helpers


def to_plain(body: Any) -> dict[str, Any]:
    """A body dataclass as plain data (what goes on the wire), e.g. for a state map or JSON."""
    if not is_dataclass(body) or isinstance(body, type):
        raise TypeError(f"expected a body dataclass, got {type(body).__name__}")
    try:
        return _to_wire(body, type(body), "", 0)
    except _Invalid as exc:
        raise ProtocolError(ErrorCode.INVALID_BODY, exc.describe(type(body).__name__)) from None


def from_plain(cls: type, data: Any) -> Any:
    """The body dataclass `cls` from plain data, validated like a received body."""
    try:
        return _from_wire(data, cls, "", 0)
    except _Invalid as exc:
        raise ProtocolError(ErrorCode.INVALID_BODY, exc.describe(cls.__name__)) from None
