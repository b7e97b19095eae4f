"""What on a listener rule of ours is ours, and what belongs to the operator.

Ours on every rule we own: the path-pattern condition and the forward to our target
group. Optionally, from `[aws]` settings, also a source-ip condition (`alb_source_cidrs`)
and an authenticate action (`alb_authenticate`). Every other condition or action on the
rule was added by an operator (an authenticate action, a source-ip or header condition,
...): it is kept, in its order, whenever we write the rule, and never counts as drift.

The rule's controls tag records which optional kinds we put there, so that turning a
setting off removes what we added and nothing an operator added. A kind the settings ask
for is ours even when an operator added it first (the ALB allows one of each).

Plain functions over plain data, used by the planner (what to write) and the applier
(the ELBv2 parameters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional

from common.client_address import parse_networks
from common.settings import AwsSettings
from services.alb_agent.model import ObservedRule, RuleControl

TAG_CONTROLS = "mcp-orchestrator:controls"
NO_CONTROLS = "none"

SOURCE_IP = "source-ip"  # the condition's Field
AUTHENTICATE = "authenticate"  # either authenticate action type
OIDC = "authenticate-oidc"
COGNITO = "authenticate-cognito"
# The ALB allows exactly one of these per rule, last; ours is the forward.
FINAL_ACTIONS = ("forward", "redirect", "fixed-response")
DEFAULT_SESSION_COOKIE = "AWSELBAuthSessionCookie"


@dataclass(frozen=True)
class ProductControls:
    """The optional controls the settings put on every rule of ours."""

    source_cidrs: tuple[str, ...] = ()
    authenticate: Optional[RuleControl] = None  # never holds the OIDC client secret

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(([SOURCE_IP] if self.source_cidrs else []) + ([AUTHENTICATE] if self.authenticate else []))

    @property
    def tag_value(self) -> str:
        return ",".join(sorted(self.kinds)) or NO_CONTROLS

    @property
    def writes_client_secret(self) -> bool:
        """AWS never shows an OIDC client secret: it can only be written, not compared."""
        return self.authenticate is not None and self.authenticate.kind == OIDC


NO_PRODUCT_CONTROLS = ProductControls()


def controls_from_config(config: AwsSettings) -> ProductControls:
    """The settings' controls (the settings were validated when they were loaded)."""
    cidrs = tuple(net.with_prefixlen for net in parse_networks(config.alb_source_cidrs))
    authenticate: Optional[RuleControl] = None
    if config.alb_authenticate == "oidc":
        authenticate = RuleControl(
            OIDC,
            {
                "Type": OIDC,
                "AuthenticateOidcConfig": {
                    "Issuer": config.alb_oidc_issuer,
                    "AuthorizationEndpoint": config.alb_oidc_authorization_endpoint,
                    "TokenEndpoint": config.alb_oidc_token_endpoint,
                    "UserInfoEndpoint": config.alb_oidc_user_info_endpoint,
                    "ClientId": config.alb_oidc_client_id,
                    "SessionCookieName": DEFAULT_SESSION_COOKIE,
                    "OnUnauthenticatedRequest": config.alb_on_unauthenticated,
                },
            },
        )
    elif config.alb_authenticate == "cognito":
        authenticate = RuleControl(
            COGNITO,
            {
                "Type": COGNITO,
                "AuthenticateCognitoConfig": {
                    "UserPoolArn": config.alb_cognito_user_pool_arn,
                    "UserPoolClientId": config.alb_cognito_client_id,
                    "UserPoolDomain": config.alb_cognito_domain,
                    "SessionCookieName": DEFAULT_SESSION_COOKIE,
                    "OnUnauthenticatedRequest": config.alb_on_unauthenticated,
                },
            },
        )
    return ProductControls(source_cidrs=cidrs, authenticate=authenticate)


def kind_of(control: RuleControl) -> str:
    """The kind a setting can own: authenticate actions are one kind, whichever IdP."""
    return AUTHENTICATE if control.kind in (OIDC, COGNITO) else control.kind


def tagged_kinds(tags: Mapping[str, str]) -> frozenset[str]:
    value = tags.get(TAG_CONTROLS, "")
    return frozenset(k for k in (p.strip() for p in value.split(",")) if k and k != NO_CONTROLS)


@dataclass(frozen=True)
class RuleParts:
    """The optional controls of one of our rules, split into ours and the operator's."""

    our_conditions: tuple[RuleControl, ...]
    our_actions: tuple[RuleControl, ...]
    kept_conditions: tuple[RuleControl, ...]  # the operator's, in their order
    kept_actions: tuple[RuleControl, ...]

    def condition_values(self) -> int:
        return sum(c.values() for c in self.kept_conditions)

    @property
    def kept_final_action(self) -> Optional[RuleControl]:
        """An operator's redirect or fixed-response (the ALB's single final action)."""
        return next((a for a in self.kept_actions if a.kind in FINAL_ACTIONS), None)


def split_rule(rule: ObservedRule, controls: ProductControls) -> RuleParts:
    ours = controls.kinds | tagged_kinds(rule.tags)
    return RuleParts(
        our_conditions=tuple(c for c in rule.conditions if kind_of(c) in ours),
        our_actions=tuple(a for a in rule.actions if kind_of(a) in ours),
        kept_conditions=tuple(c for c in rule.conditions if kind_of(c) not in ours),
        kept_actions=tuple(a for a in rule.actions if kind_of(a) not in ours),
    )


def _values(control: RuleControl, config_key: str) -> list[Any]:
    return list((control.raw.get(config_key) or {}).get("Values") or control.raw.get("Values") or [])


def _same_authenticate(observed: RuleControl, wanted: RuleControl) -> bool:
    """Every field we set has our value (AWS may add defaults; the secret is not shown)."""
    if observed.kind != wanted.kind:
        return False
    key = "AuthenticateOidcConfig" if wanted.kind == OIDC else "AuthenticateCognitoConfig"
    have = observed.raw.get(key) or {}
    return all(have.get(k) == v for k, v in wanted.raw[key].items())


def ours_in_place(parts: RuleParts, controls: ProductControls) -> bool:
    """The optional controls of ours on the rule are exactly what the settings ask."""
    if controls.source_cidrs:
        if len(parts.our_conditions) != 1 or parts.our_conditions[0].kind != SOURCE_IP:
            return False
        have = _values(parts.our_conditions[0], "SourceIpConfig")
        if sorted(have) != sorted(controls.source_cidrs):
            return False
    elif parts.our_conditions:
        return False
    if controls.authenticate is not None:
        return len(parts.our_actions) == 1 and _same_authenticate(parts.our_actions[0], controls.authenticate)
    return not parts.our_actions


# -- ELBv2 parameters (the applier's side) ----------------------------------------------


def rule_conditions(
    path_patterns: Iterable[str], source_cidrs: Iterable[str], kept: Iterable[RuleControl]
) -> list[dict[str, Any]]:
    """The operator's conditions as they were, then ours."""
    out = [dict(c.raw) for c in kept]
    cidrs = list(source_cidrs)
    if cidrs:
        out.append({"Field": SOURCE_IP, "SourceIpConfig": {"Values": cidrs}})
    out.append({"Field": "path-pattern", "PathPatternConfig": {"Values": list(path_patterns)}})
    return out


def rule_actions(
    target_group_arn: str, authenticate: Optional[RuleControl], kept: Iterable[RuleControl], client_secret: str = ""
) -> list[dict[str, Any]]:
    """Our authenticate action, the operator's actions in their order, our forward last
    (the ALB performs actions by Order and wants the forward last)."""
    actions: list[dict[str, Any]] = []
    if authenticate is not None:
        action = _deep_copy(authenticate.raw)
        if authenticate.kind == OIDC:
            action["AuthenticateOidcConfig"]["ClientSecret"] = client_secret
        actions.append(action)
    for control in kept:
        action = _deep_copy(control.raw)
        if control.kind == OIDC:  # theirs: AWS keeps the secret it has
            action.setdefault("AuthenticateOidcConfig", {})["UseExistingClientSecret"] = True
        actions.append(action)
    actions.append({"Type": "forward", "TargetGroupArn": target_group_arn})
    if len(actions) > 1:
        for order, action in enumerate(actions, start=1):
            action["Order"] = order
    return actions


def _deep_copy(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: _deep_copy(v)
        if isinstance(v, Mapping)
        else [(_deep_copy(i) if isinstance(i, Mapping) else i) for i in v]
        if isinstance(v, (list, tuple))
        else v
        for k, v in raw.items()
    }
