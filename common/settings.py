"""settings.conf: the orchestrator's own settings (INI).

Every key has a typed default here, so an empty or missing file is a valid
configuration. The file is read the way users already write it (inline `#`
comments after values included). A typo is an error, never silently ignored:
unknown sections and keys are reported with the closest known name.

Any key can be overridden from the environment as
``MCP_ORCHESTRATOR_<SECTION>_<KEY>`` (for example
``MCP_ORCHESTRATOR_DASHBOARD_PASSWORD``), which is how systemd's
``EnvironmentFile=`` keeps the dashboard password out of settings.conf.
"""

from __future__ import annotations

import configparser
import dataclasses
import difflib
import functools
import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional
from urllib.parse import urlparse

from common.client_address import networks_problem
from common.mcp_auth import TokenSet, parse_tokens, tokens_problem

ENV_PREFIX = "MCP_ORCHESTRATOR_"
# Environment variables with the prefix that are not setting overrides.
ENV_NOT_SETTINGS = {"MCP_ORCHESTRATOR_CONFIG", "MCP_ORCHESTRATOR_SETTINGS"}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_PASSWORD = "changeme"


class SettingsError(Exception):
    """One or more problems in settings; `problems` lists each, already worded."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


# --- field helpers ---------------------------------------------------------------


def _setting(
    default: Any,
    help: str,
    check: Optional[Callable[[Any], Optional[str]]] = None,
    secret: bool = False,
    upper: bool = False,
):
    return field(
        default=default, repr=not secret, metadata={"help": help, "check": check, "secret": secret, "upper": upper}
    )


def _between(lo: int, hi: int) -> Callable[[int], Optional[str]]:
    return lambda v: None if lo <= v <= hi else f"must be between {lo} and {hi}"


def _port(v: int) -> Optional[str]:
    return _between(1, 65535)(v)


def _url(v: str) -> Optional[str]:
    if not v:
        return None
    parsed = urlparse(v)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return "must be an http:// or https:// URL"
    return None


def _arn(kind: str) -> Callable[[str], Optional[str]]:
    pattern = re.compile(r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:" + kind + r"/app/")
    return lambda v: (
        None
        if not v or pattern.match(v)
        else (
            f"must be an Application Load Balancer {kind} ARN "
            f"(arn:aws:elasticloadbalancing:REGION:ACCOUNT:{kind}/app/...)"
        )
    )


def _dashboard_path(v: str) -> Optional[str]:
    if not v.startswith("/"):
        return "must start with '/'"
    if v != "/" and v.endswith("/"):
        return "must not end with '/'"
    if not re.fullmatch(r"/[A-Za-z0-9._~/-]*", v) or "//" in v:
        return "may contain only letters, digits, '.', '_', '~', '-' and single '/' separators"
    return None


def _log_level(v: str) -> Optional[str]:
    return None if v in LOG_LEVELS else f"must be one of {', '.join(LOG_LEVELS)}"


def _endpoint(v: str) -> Optional[str]:
    if re.match(r"^(ipc|tcp)://.+", v):
        return None
    return "must be an ipc://PATH or tcp://HOST:PORT ZeroMQ endpoint"


def _cluster(v: str) -> Optional[str]:
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", v):
        return None
    return "must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"


def _nonempty(v: str) -> Optional[str]:
    return None if v else "must not be empty"


# --- sections --------------------------------------------------------------------

ALB_SOURCE_CIDRS_MAX = 3  # the ALB allows 5 condition values per rule; 2 are our paths
ALB_AUTHENTICATE_KEYS = {
    "oidc": (
        "alb_oidc_issuer",
        "alb_oidc_authorization_endpoint",
        "alb_oidc_token_endpoint",
        "alb_oidc_user_info_endpoint",
        "alb_oidc_client_id",
        "alb_oidc_client_secret",
    ),
    "cognito": ("alb_cognito_user_pool_arn", "alb_cognito_client_id", "alb_cognito_domain"),
}


def _source_cidrs_problem(v: str) -> Optional[str]:
    items = [i.strip() for i in v.split(",") if i.strip()]
    for item in items:
        try:
            ipaddress.ip_network(item, strict=True)
        except ValueError:
            try:
                net = ipaddress.ip_network(item, strict=False)
            except ValueError:
                return f"{item!r} is not a CIDR block (e.g. 10.0.0.0/8, 203.0.113.7/32)"
            return f"{item!r} has host bits set: write {net.with_prefixlen}"
    if len(items) > ALB_SOURCE_CIDRS_MAX:
        return (
            f"has {len(items)} CIDRs; at most {ALB_SOURCE_CIDRS_MAX} fit in a rule (the ALB "
            f"allows 5 condition values per rule and the two path patterns use 2)"
        )
    return None


def _https_url(v: str) -> Optional[str]:
    if not v:
        return None
    parsed = urlparse(v)
    return None if parsed.scheme == "https" and parsed.netloc else "must be an https:// URL"


def _cognito_pool_arn(v: str) -> Optional[str]:
    if not v or re.fullmatch(r"arn:aws[a-z-]*:cognito-idp:[a-z0-9-]+:\d{12}:userpool/[\w-]+", v):
        return None
    return "must be a Cognito user pool ARN (arn:aws:cognito-idp:REGION:ACCOUNT:userpool/ID)"


def _alb_authenticate_problems(aws: "AwsSettings") -> list[str]:
    """The keys of the chosen authenticate action are all set, and no other's is."""
    problems = []
    wanted = ALB_AUTHENTICATE_KEYS.get(aws.alb_authenticate, ())
    missing = [k for k in wanted if not getattr(aws, k)]
    if missing:
        problems.append(
            f"[aws] alb_authenticate = {aws.alb_authenticate} needs {', '.join(missing)} (missing or invalid)"
        )
    for mode, keys in ALB_AUTHENTICATE_KEYS.items():
        stray = [k for k in keys if mode != aws.alb_authenticate and getattr(aws, k)]
        if stray:
            problems.append(
                f"[aws] {', '.join(stray)} set but alb_authenticate = "
                f"{aws.alb_authenticate}: set alb_authenticate = {mode} or remove "
                f"{'it' if len(stray) == 1 else 'them'}"
            )
    return problems


@dataclass(frozen=True)
class AwsSettings:
    region: str = _setting("us-west-2", "AWS region", _nonempty)
    alb_arn: str = _setting(
        "",
        "ARN of your Application Load Balancer; empty = routing is simulated by a local AWS stand-in",
        _arn("loadbalancer"),
    )
    listener_arn: str = _setting("", "ARN of the ALB listener that gets the /mcp/{id} rules", _arn("listener"))
    vpc_id: str = _setting("", "VPC of the target groups (default: the load balancer's VPC)")
    endpoint_url: str = _setting(
        "", "ELBv2/EC2 endpoint for an AWS stand-in (moto, LocalStack); empty = real AWS", _url
    )
    instance_id: str = _setting("", "EC2 instance registered as target; empty = ask instance metadata (IMDSv2)")
    imds_endpoint: str = _setting("http://169.254.169.254", "instance metadata endpoint", _url)
    cluster_name: str = _setting(
        "default", "name in the ownership tags: orchestrators with different names can share a listener", _cluster
    )
    rule_priority_start: int = _setting(10000, "first listener rule priority we may use", _between(1, 50000))
    rule_priority_end: int = _setting(10999, "last listener rule priority we may use", _between(1, 50000))
    max_rules: int = _setting(
        100,
        "listener rules the load balancer may hold (default rules not counted): AWS's quota, 100 unless raised "
        "for your account; one rule per routed server, the operator's own rules count too",
        _between(1, 5000),
    )
    health_check_interval_seconds: int = _setting(15, "target group health check interval", _between(5, 300))
    health_check_timeout_seconds: int = _setting(5, "target group health check timeout", _between(2, 120))
    healthy_threshold_count: int = _setting(2, "checks before a target is healthy", _between(2, 10))
    unhealthy_threshold_count: int = _setting(3, "checks before a target is unhealthy", _between(2, 10))
    deregistration_delay_seconds: int = _setting(
        30,
        "draining time of a deregistered target; with [cluster] engine = swarm also how long a replica being "
        "stopped may drain before its own stop",
        _between(0, 3600),
    )
    stickiness_seconds: int = _setting(
        86400,
        "[cluster] engine = swarm: load-balancer cookie (lb_cookie) stickiness of each target group, so a "
        "handshake-era session stays on the host that holds it; 0 = off",
        _between(0, 604800),
    )
    api_max_attempts: int = _setting(5, "attempts per AWS call (throttling, transient errors)", _between(1, 20))
    api_timeout_seconds: float = _setting(
        5.0,
        "connect and read timeout of each AWS call; an endpoint silent for this long shows as degraded",
        lambda v: None if 0.5 <= v <= 120 else "must be between 0.5 and 120",
    )
    alb_source_cidrs: str = _setting(
        "",
        "CIDRs allowed to reach the servers through the ALB, "
        "comma-separated (a source-ip condition on each of "
        "our rules; at most 3); empty = any",
        lambda v: _source_cidrs_problem(v),
    )
    alb_authenticate: str = _setting(
        "none",
        "none, oidc or cognito: an authenticate action on each of our rules (needs an HTTPS listener)",
        lambda v: _one_of("none", "oidc", "cognito")(v),
    )
    alb_on_unauthenticated: str = _setting(
        "deny",
        "what the authenticate action does without "
        "a login session: deny (401; API clients "
        "cannot follow a login), authenticate "
        "(redirect to the login page) or allow",
        lambda v: _one_of("deny", "authenticate", "allow")(v),
    )
    alb_oidc_issuer: str = _setting("", "OIDC issuer (https://...)", lambda v: _https_url(v))
    alb_oidc_authorization_endpoint: str = _setting("", "OIDC authorization endpoint", lambda v: _https_url(v))
    alb_oidc_token_endpoint: str = _setting("", "OIDC token endpoint", lambda v: _https_url(v))
    alb_oidc_user_info_endpoint: str = _setting("", "OIDC user info endpoint", lambda v: _https_url(v))
    alb_oidc_client_id: str = _setting("", "OIDC client id")
    alb_oidc_client_secret: str = _setting(
        "", "OIDC client secret; keep it in the environment (MCP_ORCHESTRATOR_AWS_ALB_OIDC_CLIENT_SECRET)", secret=True
    )
    alb_cognito_user_pool_arn: str = _setting("", "ARN of the Cognito user pool", lambda v: _cognito_pool_arn(v))
    alb_cognito_client_id: str = _setting("", "Cognito user pool app client id")
    alb_cognito_domain: str = _setting("", "Cognito user pool domain prefix (or custom domain)")


@dataclass(frozen=True)
class ServiceSettings:
    reconciliation_interval_seconds: int = _setting(
        60, "full reconcile period; events trigger one at once anyway", _between(1, 86400)
    )
    parallel_steps: int = _setting(
        8,
        "container steps (create, start, stop, remove) a reconcile pass has the container-agent work on at once; "
        "1 = one after another",
        _between(1, 64),
    )
    port_range_start: int = _setting(8000, "first host port for MCP servers", _port)
    port_range_end: int = _setting(9000, "last host port for MCP servers", _port)
    bridge_host: str = _setting(
        "127.0.0.1", "address the MCP bridges listen on (0.0.0.0 behind an ALB: see [bridge] auth)", _nonempty
    )
    public_base_url: str = _setting(
        "", "URL clients use to reach the servers (e.g. https://mcp.example.com); empty = http://HOST:PORT", _url
    )
    trusted_proxies: str = _setting(
        "",
        "addresses or CIDRs of proxies in front (the ALB's "
        "subnets) whose X-Forwarded-For names the client; "
        "comma-separated",
        networks_problem,
    )


@dataclass(frozen=True)
class DashboardSettings:
    username: str = _setting("admin", "dashboard login username", _nonempty)
    password: str = _setting(DEFAULT_PASSWORD, "dashboard login password (change this!)", _nonempty, secret=True)
    path: str = _setting("/monitor", "URL path of the dashboard", _dashboard_path)
    host: str = _setting("0.0.0.0", "address the dashboard listens on", _nonempty)
    port: int = _setting(5000, "port the dashboard listens on", _port)
    threads: int = _setting(8, "waitress worker threads", _between(1, 64))
    session_minutes: int = _setting(
        480, "how long a login lasts (a dashboard restart also ends every session)", _between(5, 10080)
    )
    login_failures_per_address: int = _setting(
        5, "failed logins from one client address before it must wait", _between(1, 1000)
    )
    login_failures_total: int = _setting(
        50, "failed logins from all addresses before every login must wait", _between(1, 100000)
    )
    login_window_seconds: int = _setting(300, "how long a failed login counts against the limits", _between(10, 86400))
    header_timeout_seconds: float = _setting(
        10.0,
        "a connection must send a complete request (headers and body) within this time, else it is closed",
        _between(1, 300),
    )
    idle_timeout_seconds: float = _setting(
        75.0, "idle keep-alive connections are closed after this (above the ALB's 60 s idle timeout)", _between(1, 3600)
    )
    max_connections: int = _setting(
        1000,
        "open connections to the dashboard, lowered to fit the process's open-file limit; 503 above",
        _between(16, 100000),
    )
    max_connections_per_address: int = _setting(
        100, "open connections from one client address; 429 above", _between(1, 100000)
    )


@dataclass(frozen=True)
class LoggingSettings:
    level: str = _setting("INFO", "DEBUG, INFO, WARNING, ERROR or CRITICAL", _log_level, upper=True)


@dataclass(frozen=True)
class ZmqSettings:
    runtime_dir: str = _setting(
        "",
        "directory of the ipc:// sockets (owner-only); empty = "
        "/run/mcp-orchestrator as root, else a per-user directory",
    )
    scheduler_control: str = _setting(
        "ipc://{runtime_dir}/scheduler-control.sock", "scheduler REP (dashboard and CLI requests)", _endpoint
    )
    scheduler_state: str = _setting(
        "ipc://{runtime_dir}/scheduler-state.sock", "scheduler PUB (state and events)", _endpoint
    )
    containers: str = _setting("ipc://{runtime_dir}/containers.sock", "container-agent REP", _endpoint)
    container_events: str = _setting("ipc://{runtime_dir}/container-events.sock", "container-agent PUB", _endpoint)
    routes: str = _setting("ipc://{runtime_dir}/routes.sock", "alb-agent REP", _endpoint)
    route_events: str = _setting("ipc://{runtime_dir}/route-events.sock", "alb-agent PUB", _endpoint)
    request_timeout_ms: int = _setting(2500, "how long a request waits for its reply", _between(50, 600000))
    request_retries: int = _setting(3, "attempts per request before an agent counts as unavailable", _between(1, 20))
    heartbeat_interval_seconds: float = _setting(
        1.0, "publishers' heartbeat period", lambda v: None if 0.05 <= v <= 60 else "must be between 0.05 and 60"
    )
    max_message_bytes: int = _setting(4 * 1024 * 1024, "largest message accepted", _between(1024, 256 * 1024 * 1024))
    between_hosts: str = _setting(
        "curve",
        "tcp:// links to other hosts: curve (encrypted, only peers holding the cluster key from "
        "[cluster] keys_dir) or plain (neither: only on a network you trust)",
        lambda v: _one_of("curve", "plain")(v),
    )


def _positive(v: float) -> Optional[str]:
    return None if v > 0 else "must be above 0"


def _origins(v: str) -> Optional[str]:
    for origin in (o.strip() for o in v.split(",") if o.strip()):
        if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
            return f"{origin!r} is not an origin: write scheme://host[:port] (comma-separated), or * for any"
    return None


def _one_of(*choices: str) -> Callable[[str], Optional[str]]:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}"


BRIDGE_AUTH_BEARER = "bearer"
BRIDGE_AUTH_NONE = "none"


def _listen_address(v: str) -> Optional[str]:
    if not v:
        return None
    host, sep, port = v.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        return "must be HOST:PORT (an address and a port from 1 to 65535), or empty for none"
    return None


@dataclass(frozen=True)
class MetricsSettings:
    """Where each process serves its Prometheus /metrics (HOST:PORT; empty: not served)."""

    scheduler: str = _setting("", "the scheduler's /metrics, e.g. 127.0.0.1:9464", _listen_address)
    container_agent: str = _setting(
        "", "the container-agent's /metrics (the bridges' traffic), e.g. 127.0.0.1:9465", _listen_address
    )
    alb_agent: str = _setting("", "the alb-agent's /metrics, e.g. 127.0.0.1:9466", _listen_address)
    dashboard: str = _setting("", "the dashboard's /metrics, e.g. 127.0.0.1:9467", _listen_address)


@dataclass(frozen=True)
class BridgeSettings:
    auth: str = _setting(
        BRIDGE_AUTH_BEARER,
        "bearer: every MCP request needs a token from `tokens`; none: something in front (the ALB) authenticates",
        _one_of(BRIDGE_AUTH_BEARER, BRIDGE_AUTH_NONE),
    )
    tokens: str = _setting(
        "",
        "bearer tokens, TOKEN (every server) or SERVER-ID:TOKEN, comma-"
        "separated; set it in the environment "
        "(MCP_ORCHESTRATOR_BRIDGE_TOKENS)",
        tokens_problem,
        secret=True,
    )
    request_timeout_seconds: float = _setting(
        300.0, "a request the server does not answer in time gets a JSON-RPC error", _positive
    )
    initialize_timeout_seconds: float = _setting(
        60.0,
        "how long a starting server may take to "
        "answer initialize; past it the server is "
        "not ready (503) and is restarted with the "
        "crash back-off",
        _positive,
    )
    restart_wait_seconds: float = _setting(
        5.0,
        "a request for a server whose container is being restarted waits this long for it (then 503); 0: never waits",
        _between(0, 120),
    )
    drain_seconds: float = _setting(
        10.0,
        "on stop, requests in flight get this long to finish (new connections wait for the next "
        "process); under the unit's 20 s stop timeout",
        _between(0, 15),
    )
    session_idle_timeout_seconds: float = _setting(1800.0, "idle MCP sessions are dropped after this", _positive)
    max_sessions_per_server: int = _setting(
        10000, "sessions per server; past it the least recently used idle one is dropped", _between(1, 1000000)
    )
    sse_keepalive_seconds: float = _setting(
        15.0,
        "keep-alive comments on idle SSE streams (under the ALB's 60 s idle timeout)",
        lambda v: None if 0 < v < 60 else "must be above 0 and below 60",
    )
    max_body_bytes: int = _setting(
        4 * 1024 * 1024, "largest HTTP request body (413 above)", _between(1024, 1024 * 1024 * 1024)
    )
    max_message_bytes: int = _setting(
        32 * 1024 * 1024, "largest JSON-RPC line accepted from a server", _between(1024, 1 << 31)
    )
    stderr_lines: int = _setting(200, "stderr lines kept per server for the dashboard", _between(1, 100000))
    access_log_level: str = _setting(
        "info",
        "level of the one line per MCP request (server, method, tool, era, status, duration, "
        "client, traceparent; never arguments): off, debug, info, warning",
        _one_of("off", "debug", "info", "warning"),
    )
    allowed_origins: str = _setting(
        "",
        "browser origins allowed to call the bridges "
        "(comma-separated, * = any), besides the bridge's own names; "
        "requests without Origin are always allowed",
        _origins,
    )
    proxy_connect_timeout_seconds: float = _setting(
        10.0, "reverse-proxy mode: time to connect to the server in the container", _positive
    )
    header_timeout_seconds: float = _setting(
        10.0, "a connection must send a request's headers within this time", _positive
    )
    keepalive_timeout_seconds: float = _setting(
        75.0, "idle keep-alive connections are closed after this (above the ALB's 60 s)", _positive
    )
    max_connections: int = _setting(
        4096, "open connections to all bridges (kept below the open-file limit); 503 above", _between(16, 1000000)
    )
    max_connections_per_address: int = _setting(
        512, "open connections from one client address; 429 above", _between(1, 1000000)
    )
    max_sessions_per_address: int = _setting(
        1000,
        "sessions per server held by one client address; past it its own least recently used idle one is dropped",
        _between(1, 1000000),
    )


def _label_name(v: str) -> Optional[str]:
    if not v or re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,127}", v):
        return None
    return "must be a node label name (letters, digits, '.', '_', '/', '-'), or empty for no spread"


@dataclass(frozen=True)
class ClusterSettings:
    """One host (docker) or every node of a Docker Swarm (swarm)."""

    engine: str = _setting(
        "docker",
        "docker: the servers run as containers of this host's engine; swarm: as replicated Docker Swarm "
        "services over the swarm's nodes (the orchestrator installed on each)",
        _one_of("docker", "swarm"),
    )
    default_replicas: int = _setting(
        2, 'replicas of a server whose config has no "orchestrator": {"replicas": N} (swarm)', _between(1, 100)
    )
    zone_label: str = _setting(
        "zone", "node label the replicas are spread over, e.g. one value per availability zone (swarm)", _label_name
    )
    max_replicas_per_node: int = _setting(
        1, "replicas of one server a node may run; 0 = no limit (swarm)", _between(0, 100)
    )
    restart_delay_seconds: float = _setting(
        5.0, "Swarm waits this long before restarting a replica that exited (swarm)", _between(0, 3600)
    )
    update_delay_seconds: float = _setting(
        5.0, "pause between replicas in a rolling update of a server's spec (swarm)", _between(0, 3600)
    )
    update_monitor_seconds: float = _setting(
        10.0,
        "a new replica that fails within this time rolls the update back by itself (swarm)",
        _between(0, 3600),
    )
    agent_port: int = _setting(
        7451,
        "TCP port of each node's container-agent for the scheduler (requests; the next port: its events), "
        "on every address of the node, CurveZMQ-secured (swarm)",
        _port,
    )
    control_lease_seconds: float = _setting(
        4.0,
        "the managers' control planes: the active one renews its lease in Swarm every quarter of this; "
        "silent this long, it is replaced (by the Swarm leader's; another manager's after half as long again) (swarm)",
        _between(2, 60),
    )
    keys_dir: str = _setting(
        "/etc/mcp-orchestrator/keys",
        "directory of the cluster key pair (`mcp-orchestrator keys`), the same on every host (swarm)",
        _nonempty,
    )


SECTIONS: dict[str, type] = {
    "aws": AwsSettings,
    "service": ServiceSettings,
    "dashboard": DashboardSettings,
    "logging": LoggingSettings,
    "zmq": ZmqSettings,
    "bridge": BridgeSettings,
    "metrics": MetricsSettings,
    "cluster": ClusterSettings,
}


@dataclass(frozen=True)
class Settings:
    aws: AwsSettings = field(default_factory=AwsSettings)
    service: ServiceSettings = field(default_factory=ServiceSettings)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    zmq: ZmqSettings = field(default_factory=ZmqSettings)
    bridge: BridgeSettings = field(default_factory=BridgeSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    source: str = ""  # the file these came from ("" = defaults only)

    @property
    def links_between_hosts(self) -> bool:
        """ZeroMQ links leave this host: a swarm, or a tcp:// endpoint not on loopback."""
        if self.cluster.engine == "swarm":
            return True
        for f in dataclasses.fields(ZmqSettings):
            value = getattr(self.zmq, f.name)
            if f.metadata.get("check") is _endpoint and value.startswith("tcp://") and not is_loopback_endpoint(value):
                return True
        return False

    @property
    def routing_simulated(self) -> bool:
        """No real ALB configured: the alb-agent works against a local stand-in."""
        return not (self.aws.alb_arn and self.aws.listener_arn)

    @property
    def bridge_tokens(self) -> TokenSet:
        """The tokens the bridges ask for (empty: none is asked)."""
        if self.bridge.auth == BRIDGE_AUTH_NONE:
            return TokenSet()
        return parse_tokens(self.bridge.tokens)

    @property
    def bridge_open(self) -> bool:
        """MCP requests are served without a token of ours (loopback only, or auth = none)."""
        return not self.bridge_tokens

    @property
    def default_password(self) -> bool:
        return self.dashboard.password == DEFAULT_PASSWORD

    def port_in_range(self, port: int) -> bool:
        return self.service.port_range_start <= port <= self.service.port_range_end

    def public_dict(self) -> dict:
        """All settings as plain data, secret values masked."""
        out: dict[str, dict] = {}
        for name in SECTIONS:
            section = getattr(self, name)
            out[name] = {
                f.name: ("***" if f.metadata.get("secret") else getattr(section, f.name))
                for f in dataclasses.fields(section)
            }
        return out


# --- loading ---------------------------------------------------------------------


def default_runtime_dir() -> str:
    # systemd's RuntimeDirectory= (the units set it; several may be listed).
    if os.environ.get("RUNTIME_DIRECTORY"):
        return os.environ["RUNTIME_DIRECTORY"].split(":")[0]
    if os.geteuid() == 0:
        return "/run/mcp-orchestrator"
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base:
        return os.path.join(base, "mcp-orchestrator")
    return f"/tmp/mcp-orchestrator-{os.getuid()}"


def _convert(raw: str, kind: Any) -> Any:
    kind = {"int": int, "float": float, "str": str, "bool": bool}.get(kind, kind)
    if kind is int:
        try:
            return int(raw, 10)
        except ValueError:
            raise ValueError("must be a whole number") from None
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise ValueError("must be a number") from None
    return raw


def _describe(section: str, key: str, raw: str, secret: bool, origin: str) -> str:
    shown = "***" if secret else raw
    return f"{origin}: [{section}] {key} = {shown!r}"


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _read_ini(path: Path, problems: list[str]) -> Optional[configparser.ConfigParser]:
    parser = configparser.ConfigParser(
        interpolation=None,
        inline_comment_prefixes=("#", ";"),
        comment_prefixes=("#", ";"),
        strict=True,
        empty_lines_in_values=False,
        default_section="\x00no-default-section",  # "DEFAULT" is not special here
    )
    parser.optionxform = str  # keep the key as written, so errors quote it exactly
    try:
        with open(path, encoding="utf-8") as fh:
            parser.read_file(fh, source=str(path))
    except FileNotFoundError:
        problems.append(f"{path}: file not found")
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: cannot read: {exc}")
        return None
    except configparser.MissingSectionHeaderError as exc:
        problems.append(
            f"{path}: line {exc.lineno}: a key outside any [section]: "
            f"put it under {', '.join('[' + name + ']' for name in SECTIONS)}"
        )
        return None
    except configparser.DuplicateSectionError as exc:
        problems.append(f"{path}: line {exc.lineno}: section [{exc.section}] appears twice")
        return None
    except configparser.DuplicateOptionError as exc:
        problems.append(f"{path}: line {exc.lineno}: [{exc.section}] {exc.option} is set twice")
        return None
    except configparser.ParsingError as exc:
        lines = ", ".join(str(lineno) for lineno, _ in exc.errors)
        problems.append(f"{path}: cannot parse line(s) {lines}: expected 'key = value'")
        return None
    return parser


def load_settings(path: Optional[os.PathLike | str] = None, environ: Optional[Mapping[str, str]] = None) -> Settings:
    """Read settings from `path` (None: defaults only) and `environ` overrides.

    Raises SettingsError listing every problem found.
    """
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    values: dict[str, dict[str, tuple[str, str]]] = {name: {} for name in SECTIONS}

    if path is not None:
        parser = _read_ini(Path(path), problems)
        if parser is not None:
            for section in parser.sections():
                name = section.strip().lower()
                if name not in SECTIONS:
                    problems.append(
                        f"{path}: unknown section [{section}]"
                        f"{_suggest(name, SECTIONS)}; known sections: "
                        f"{', '.join('[' + s + ']' for s in SECTIONS)}"
                    )
                    continue
                for key, raw in parser.items(section):
                    values[name][key] = (raw.strip(), str(path))

    for var, raw in environ.items():
        if not var.startswith(ENV_PREFIX) or var in ENV_NOT_SETTINGS:
            continue
        rest = var[len(ENV_PREFIX) :].lower()
        section = next((s for s in SECTIONS if rest.startswith(s + "_")), None)
        if section is None:
            problems.append(f"environment: {var} does not name a setting (expected {ENV_PREFIX}<SECTION>_<KEY>)")
            continue
        values[section][rest[len(section) + 1 :]] = (raw.strip(), f"environment {var}")

    sections: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        known = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, (raw, origin) in values[name].items():
            f = known.get(key)
            if f is None:
                problems.append(f"{origin}: unknown key {key!r} in [{name}]{_suggest(key, known)}")
                continue
            secret = bool(f.metadata.get("secret"))
            if f.metadata.get("upper"):
                raw = raw.upper()
            try:
                value = _convert(raw, f.type)
            except ValueError as exc:
                problems.append(f"{_describe(name, key, raw, secret, origin)}: {exc}")
                continue
            check = f.metadata.get("check")
            reason = check(value) if check else None
            if reason:
                problems.append(f"{_describe(name, key, raw, secret, origin)}: {reason}")
                continue
            kwargs[key] = value
        sections[name] = cls(**kwargs)

    settings = Settings(**sections, source=str(path) if path is not None else "")
    problems.extend(_cross_checks(settings))
    if problems:
        raise SettingsError(problems)
    return _resolve_endpoints(settings)


def section_problems(section: Any) -> list[str]:
    """What each key's own check says about a section built in code (load_settings
    checks what it reads the same way)."""
    name = next((n for n, cls in SECTIONS.items() if isinstance(section, cls)), type(section).__name__)
    problems = []
    kinds = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        kind = kinds.get(f.type if isinstance(f.type, str) else f.type.__name__)
        if kind is not None and (not isinstance(value, kind) or (bool not in kind and isinstance(value, bool))):
            problems.append(f"[{name}] {f.name} must be a {f.type if isinstance(f.type, str) else f.type.__name__}")
            continue
        check = f.metadata.get("check")
        reason = check(value) if check else None
        if reason:
            shown = "***" if f.metadata.get("secret") else repr(value)
            problems.append(f"[{name}] {f.name} = {shown}: {reason}")
    return problems


def _cross_checks(s: Settings) -> list[str]:
    problems = []
    svc, aws, dash = s.service, s.aws, s.dashboard
    if svc.port_range_start > svc.port_range_end:
        problems.append(
            f"[service] port_range_start ({svc.port_range_start}) is above "
            f"port_range_end ({svc.port_range_end}): the port range is empty"
        )
    elif s.port_in_range(dash.port):
        problems.append(
            f"[dashboard] port {dash.port} lies inside the MCP server port range "
            f"{svc.port_range_start}-{svc.port_range_end}"
        )
    if aws.rule_priority_start > aws.rule_priority_end:
        problems.append(
            f"[aws] rule_priority_start ({aws.rule_priority_start}) is above "
            f"rule_priority_end ({aws.rule_priority_end}): no priority is available"
        )
    if bool(aws.alb_arn) != bool(aws.listener_arn):
        problems.append(
            "[aws] alb_arn and listener_arn must be set together "
            "(both empty = routing simulated by a local AWS stand-in)"
        )
    problems.extend(_alb_authenticate_problems(aws))
    if aws.health_check_timeout_seconds >= aws.health_check_interval_seconds:
        problems.append(
            f"[aws] health_check_timeout_seconds ({aws.health_check_timeout_seconds})"
            f" must be less than health_check_interval_seconds "
            f"({aws.health_check_interval_seconds})"
        )
    if s.bridge.auth == BRIDGE_AUTH_BEARER and not s.bridge.tokens.strip() and not is_loopback_host(svc.bridge_host):
        problems.append(
            f"[service] bridge_host = {svc.bridge_host} makes the MCP bridges reachable "
            f"from other hosts, and [bridge] tokens is empty: set tokens "
            f"(MCP_ORCHESTRATOR_BRIDGE_TOKENS in the environment file), or bind "
            f"bridge_host to 127.0.0.1, or set [bridge] auth = none if something in "
            f"front of the bridges authenticates every request"
        )
    endpoints = {
        f.name: getattr(s.zmq, f.name) for f in dataclasses.fields(ZmqSettings) if f.metadata.get("check") is _endpoint
    }
    seen: dict[str, str] = {}
    for key, endpoint in endpoints.items():
        if endpoint in seen:
            problems.append(f"[zmq] {key} and {seen[endpoint]} use the same endpoint {endpoint}")
        seen[endpoint] = key
    return problems


@functools.lru_cache(maxsize=1024)
def is_loopback_host(host: str) -> bool:
    """`localhost` or a loopback address. Cached: the bridge asks for every request's
    Host, and parsing an address costs more than the rest of that check."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_endpoint(endpoint: str) -> bool:
    """A tcp:// ZeroMQ endpoint on this host only (tcp://127.0.0.1:7001, tcp://[::1]:*)."""
    return is_loopback_host(urlparse(endpoint).hostname or "")


def _resolve_endpoints(s: Settings) -> Settings:
    runtime_dir = s.zmq.runtime_dir or default_runtime_dir()
    changes = {"runtime_dir": runtime_dir}
    for f in dataclasses.fields(ZmqSettings):
        value = getattr(s.zmq, f.name)
        if isinstance(value, str) and "{runtime_dir}" in value:
            changes[f.name] = value.replace("{runtime_dir}", runtime_dir)
    return dataclasses.replace(s, zmq=dataclasses.replace(s.zmq, **changes))


def reference_rows() -> list[tuple[str, str, Any, str]]:
    """(section, key, default, help) for every setting: the README's reference table."""
    rows = []
    for name, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            rows.append((name, f.name, f.default, f.metadata.get("help", "")))
    return rows
