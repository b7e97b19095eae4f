"""What the bridge runs with: the `[bridge]` section itself (every key, its default and
its check are declared once, in common/settings.py) plus the values derived from it
and from `[service]`: the address to bind, the parsed tokens, origins and proxies."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlparse

from common.client_address import parse_networks
from common.mcp_auth import TokenSet
from common.settings import BridgeSettings, section_problems


@dataclass(frozen=True)
class BridgeConfig(BridgeSettings):
    # Address every server port is bound to ("0.0.0.0" behind the ALB; tests use loopback).
    bind_host: str = "0.0.0.0"
    # Tokens every MCP request must carry; empty: none is asked (loopback only, or
    # `[bridge] auth = none`: something in front authenticates).
    token_set: TokenSet = field(default_factory=TokenSet)
    # Proxies whose X-Forwarded-For names the client (the ALB's subnets).
    proxy_networks: tuple = ()
    # The host name of [service] public_base_url: a loopback bridge answers it too.
    public_host: str = ""
    # Record every request in its server's traffic numbers (/metrics, the dashboard's
    # charts). Always on in the product; off only to measure what counting costs.
    count_traffic: bool = True
    # [cluster] engine = swarm: this node (the start of its Swarm node id), named in the
    # session ids it makes, and the key they are signed with, derived from the cluster's
    # (every node can tell whose a session is; owner.py). Empty: one host, a key of its own.
    node: str = ""
    session_key: bytes = field(default=b"", repr=False)

    @classmethod
    def from_settings(cls, settings) -> "BridgeConfig":
        """The [bridge] section of settings.conf, bound to [service] bridge_host."""
        section = {name: getattr(settings.bridge, name) for name in BridgeSettings.__dataclass_fields__}
        return cls(
            **section,
            bind_host=settings.service.bridge_host,
            token_set=settings.bridge_tokens,
            proxy_networks=parse_networks(settings.service.trusted_proxies),
            public_host=urlparse(settings.service.public_base_url).hostname or "",
        )

    def __post_init__(self) -> None:
        # Built in code (tests, benchmarks): the section's own checks still apply.
        problems = section_problems(self)
        if problems:
            raise ValueError("invalid bridge settings: " + "; ".join(problems))

    @cached_property
    def origins(self) -> tuple[str, ...]:
        """Browser origins allowed to call the bridge ("*": any)."""
        return tuple(o.strip() for o in self.allowed_origins.split(",") if o.strip())
