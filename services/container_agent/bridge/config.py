"""Settings of the MCP bridge (the lead maps `settings.conf` keys onto these fields)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from common.client_address import parse_networks
from common.mcp_auth import TokenSet


@dataclass(frozen=True)
class BridgeConfig:
    # Address every server port is bound to ("0.0.0.0" behind the ALB; tests use loopback).
    bind_host: str = "0.0.0.0"
    # A request the server does not answer in this time gets a JSON-RPC error; a
    # progress notification for the request starts the time again.
    request_timeout_seconds: float = 300.0
    # How long the bridge waits for the server's answer to its own `initialize`.
    initialize_timeout_seconds: float = 60.0
    # A session with no request, no open stream and nothing pending for this long is dropped.
    session_idle_timeout_seconds: float = 1800.0
    # Sessions per server; past it the least recently used idle session is dropped.
    max_sessions_per_server: int = 10000
    # Comment lines on idle SSE streams, well under the ALB's 60 s idle timeout.
    sse_keepalive_seconds: float = 15.0
    # Largest HTTP request body accepted (413 above it).
    max_body_bytes: int = 4 * 1024 * 1024
    # Largest JSON-RPC line accepted from a server's stdout (longer lines are dropped).
    max_message_bytes: int = 32 * 1024 * 1024
    # stderr lines kept per server for the dashboard.
    stderr_lines: int = 200
    # Browser origins allowed to call the bridge; requests without Origin are always
    # allowed. "*" allows every origin.
    allowed_origins: tuple[str, ...] = field(default=())
    # Reverse-proxy mode: time to connect to the server inside the container.
    proxy_connect_timeout_seconds: float = 10.0
    # Bearer tokens every MCP request must carry; empty: none is asked (loopback only,
    # or `[bridge] auth = none`: something in front authenticates).
    tokens: TokenSet = field(default_factory=TokenSet)
    # A connection must deliver its first request's headers within this time.
    header_timeout_seconds: float = 10.0
    # Idle keep-alive connections are closed after this (above the ALB's 60 s).
    keepalive_timeout_seconds: float = 75.0
    # Open connections to all bridge ports together (lowered to fit the open-file
    # limit), and from one client address.
    max_connections: int = 4096
    max_connections_per_address: int = 512
    # Sessions per server one client address may hold.
    max_sessions_per_address: int = 1000
    # Proxies whose X-Forwarded-For names the client (the ALB's subnets).
    trusted_proxies: tuple = ()

    @classmethod
    def from_settings(cls, settings) -> "BridgeConfig":
        """The [bridge] section of settings.conf, bound to [service] bridge_host."""
        b = settings.bridge
        origins = tuple(o.strip() for o in b.allowed_origins.split(",") if o.strip())
        return cls(
            bind_host=settings.service.bridge_host,
            request_timeout_seconds=b.request_timeout_seconds,
            initialize_timeout_seconds=b.initialize_timeout_seconds,
            session_idle_timeout_seconds=b.session_idle_timeout_seconds,
            max_sessions_per_server=b.max_sessions_per_server,
            sse_keepalive_seconds=b.sse_keepalive_seconds,
            max_body_bytes=b.max_body_bytes,
            max_message_bytes=b.max_message_bytes,
            stderr_lines=b.stderr_lines,
            allowed_origins=origins,
            proxy_connect_timeout_seconds=b.proxy_connect_timeout_seconds,
            tokens=settings.bridge_tokens,
            header_timeout_seconds=b.header_timeout_seconds,
            keepalive_timeout_seconds=b.keepalive_timeout_seconds,
            max_connections=b.max_connections,
            max_connections_per_address=b.max_connections_per_address,
            max_sessions_per_address=b.max_sessions_per_address,
            trusted_proxies=parse_networks(settings.service.trusted_proxies),
        )

    def __post_init__(self) -> None:
        problems = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("bind_host", "allowed_origins", "tokens", "trusted_proxies"):
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                problems.append(f"{f.name} must be a positive number, got {value!r}")
        if not isinstance(self.allowed_origins, tuple) or not all(isinstance(o, str) for o in self.allowed_origins):
            problems.append("allowed_origins must be a tuple of strings")
        if isinstance(self.sse_keepalive_seconds, (int, float)) and self.sse_keepalive_seconds >= 60:
            problems.append("sse_keepalive_seconds must stay under the ALB idle timeout (60 s)")
        if problems:
            raise ValueError("invalid bridge settings: " + "; ".join(problems))
