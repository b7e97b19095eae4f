"""The alb-agent's view of the `[aws]` settings.

Field names mirror the `[aws]` keys of settings.conf, so the process can build this from the
parsed settings section with `AlbConfig.from_mapping(...)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from common.secrets import Secret

DEFAULT_IMDS_ENDPOINT = "http://169.254.169.254"


@dataclass(frozen=True)
class AlbConfig:
    region: str
    alb_arn: str
    listener_arn: str
    vpc_id: str = ""  # empty = the load balancer's VPC
    endpoint_url: str = ""  # moto / LocalStack; empty = real AWS
    instance_id: str = ""  # empty = ask instance metadata
    imds_endpoint: str = DEFAULT_IMDS_ENDPOINT
    cluster_name: str = "default"
    rule_priority_start: int = 10000
    rule_priority_end: int = 10999
    health_check_interval_seconds: int = 15
    health_check_timeout_seconds: int = 5
    healthy_threshold_count: int = 2
    unhealthy_threshold_count: int = 3
    deregistration_delay_seconds: int = 30
    api_max_attempts: int = 5
    api_timeout_seconds: float = 5.0
    # Controls the product puts on every rule of ours (validated with the settings).
    alb_source_cidrs: str = ""
    alb_authenticate: str = "none"  # none | oidc | cognito
    alb_on_unauthenticated: str = "deny"
    alb_oidc_issuer: str = ""
    alb_oidc_authorization_endpoint: str = ""
    alb_oidc_token_endpoint: str = ""
    alb_oidc_user_info_endpoint: str = ""
    alb_oidc_client_id: str = ""
    alb_oidc_client_secret: Secret = field(default=Secret(""), repr=False)
    alb_cognito_user_pool_arn: str = ""
    alb_cognito_client_id: str = ""
    alb_cognito_domain: str = ""

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "AlbConfig":
        """Build from a settings section (an object with these attributes or a mapping).

        Unknown keys are ignored; values given as strings (INI) are converted to the
        field's type.
        """
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if isinstance(values, Mapping):
                if f.name not in values:
                    continue
                raw = values[f.name]
            elif hasattr(values, f.name):
                raw = getattr(values, f.name)
            else:
                continue
            kwargs[f.name] = _convert(raw, f.type)
        return cls(**kwargs)

    def problems(self) -> list[str]:
        """Everything wrong with these values, as messages naming the key."""
        out: list[str] = []
        for key in ("region", "alb_arn", "listener_arn", "cluster_name"):
            if not getattr(self, key):
                out.append(f"[aws] {key} must not be empty")
        if not 1 <= self.rule_priority_start <= self.rule_priority_end <= 50000:
            out.append(
                f"[aws] rule priorities {self.rule_priority_start}..{self.rule_priority_end} "
                "must be an ascending range within 1..50000"
            )
        if self.health_check_timeout_seconds >= self.health_check_interval_seconds:
            out.append("[aws] health_check_timeout_seconds must be below health_check_interval_seconds")
        for key in ("healthy_threshold_count", "unhealthy_threshold_count"):
            if not 2 <= getattr(self, key) <= 10:
                out.append(f"[aws] {key} must be 2..10")
        if not 0 <= self.deregistration_delay_seconds <= 3600:
            out.append("[aws] deregistration_delay_seconds must be 0..3600")
        if self.api_max_attempts < 1:
            out.append("[aws] api_max_attempts must be at least 1")
        if self.api_timeout_seconds <= 0:
            out.append("[aws] api_timeout_seconds must be above 0")
        return out


def _convert(raw: Any, kind: Any) -> Any:
    if kind in ("int", int):
        return int(raw)
    if kind in ("float", float):
        return float(raw)
    if kind in ("Secret", Secret):
        return raw if isinstance(raw, Secret) else Secret(str(raw))
    return str(raw)
