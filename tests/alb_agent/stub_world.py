"""A small load balancer described as botocore Stubber responses.

For the failures moto cannot produce (throttling, access denied, quota errors, races):
the router under test talks to a Stubber that expects exactly the calls listed here.
"""

from __future__ import annotations

from typing import Any, Optional

from botocore.stub import ANY, Stubber

from common import server_ids
from common.settings import AwsSettings
from services.alb_agent import naming
from services.alb_agent.router import AlbRouter

ACCOUNT_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012"
ALB = f"{ACCOUNT_ARN}:loadbalancer/app/lb/50dc6c495c0c9188"
LISTENER = f"{ACCOUNT_ARN}:listener/app/lb/50dc6c495c0c9188/f2f7dc8efc522ab2"
INSTANCE = "i-0123456789abcdef0"
VPC = "vpc-0123456789abcdef0"
CLUSTER = "default"


def tg_arn(server_id: str) -> str:
    name = naming.target_group_name(server_id, CLUSTER)
    return f"{ACCOUNT_ARN}:targetgroup/{name}/{naming.short_hash('arn', server_id) * 2}"


def rule_arn(priority: int) -> str:
    return f"{ACCOUNT_ARN}:listener-rule/app/lb/50dc6c495c0c9188/f2f7dc8efc522ab2/{priority:016x}"


def stub_config(dead_url: str) -> AwsSettings:
    return AwsSettings(
        region="us-east-1",
        alb_arn=ALB,
        listener_arn=LISTENER,
        vpc_id=VPC,
        endpoint_url=dead_url,
        instance_id=INSTANCE,
        imds_endpoint=dead_url,
        api_max_attempts=1,
    )


def _tags(mapping: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in mapping.items()]


class StubWorld:
    """Servers routed on the stubbed listener: {server id: (port, priority)}."""

    def __init__(self, router: AlbRouter, routed: Optional[dict[str, tuple[int, int]]] = None) -> None:
        self.router = router
        self.stubber = Stubber(router.client)
        self.routed = dict(routed or {})

    def __enter__(self) -> "StubWorld":
        self.stubber.activate()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stubber.deactivate()

    # -- reads ---------------------------------------------------------------------------
    def expect_setup(self) -> None:
        self.stubber.add_response(
            "describe_listeners",
            {"Listeners": [{"ListenerArn": LISTENER, "LoadBalancerArn": ALB, "Port": 80, "Protocol": "HTTP"}]},
            {"ListenerArns": [LISTENER]},
        )

    def _group(self, sid: str, port: int) -> dict[str, Any]:
        return {
            "TargetGroupArn": tg_arn(sid),
            "TargetGroupName": naming.target_group_name(sid, CLUSTER),
            "Protocol": "HTTP",
            "Port": port,
            "VpcId": VPC,
            "TargetType": "instance",
            "HealthCheckProtocol": "HTTP",
            "HealthCheckPort": "traffic-port",
            "HealthCheckEnabled": True,
            "HealthCheckPath": server_ids.health_path(sid),
            "HealthCheckIntervalSeconds": 15,
            "HealthCheckTimeoutSeconds": 5,
            "HealthyThresholdCount": 2,
            "UnhealthyThresholdCount": 3,
            "Matcher": {"HttpCode": "200"},
            "LoadBalancerArns": [ALB],
        }

    def _rule(self, sid: str, priority: int) -> dict[str, Any]:
        return {
            "RuleArn": rule_arn(priority),
            "Priority": str(priority),
            "IsDefault": False,
            "Conditions": [
                {"Field": "path-pattern", "PathPatternConfig": {"Values": list(server_ids.path_patterns(sid))}}
            ],
            "Actions": [{"Type": "forward", "TargetGroupArn": tg_arn(sid)}],
        }

    def expect_read(self, with_tags: bool = True) -> None:
        self.stubber.add_response(
            "describe_target_groups",
            {"TargetGroups": [self._group(sid, port) for sid, (port, _) in sorted(self.routed.items())]},
            {"LoadBalancerArn": ALB},
        )
        default = {
            "RuleArn": rule_arn(0),
            "Priority": "default",
            "IsDefault": True,
            "Conditions": [],
            "Actions": [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
        }
        self.stubber.add_response(
            "describe_rules",
            {"Rules": [self._rule(sid, prio) for sid, (_, prio) in sorted(self.routed.items())] + [default]},
            {"ListenerArn": LISTENER},
        )
        if with_tags and self.routed:
            descriptions = []
            for sid, (port, prio) in sorted(self.routed.items()):
                descriptions.append(
                    {
                        "ResourceArn": tg_arn(sid),
                        "Tags": _tags(
                            {
                                **naming.ownership_tags(CLUSTER, sid),
                                naming.TAG_TARGET: naming.target_tag_value(INSTANCE, port),
                                naming.TAG_DEREGISTRATION_DELAY: "30",
                            }
                        ),
                    }
                )
            for sid, (port, prio) in sorted(self.routed.items()):
                descriptions.append({"ResourceArn": rule_arn(prio), "Tags": _tags(naming.ownership_tags(CLUSTER, sid))})
            self.stubber.add_response("describe_tags", {"TagDescriptions": descriptions})

    # -- writes of one new server --------------------------------------------------------
    def expect_new_group(self, sid: str, port: int) -> None:
        self.stubber.add_response(
            "create_target_group",
            {"TargetGroups": [self._group(sid, port)]},
            {
                "Name": naming.target_group_name(sid, CLUSTER),
                "Protocol": "HTTP",
                "Port": port,
                "VpcId": VPC,
                "TargetType": "instance",
                "Tags": ANY,
                "HealthCheckProtocol": "HTTP",
                "HealthCheckPort": "traffic-port",
                "HealthCheckEnabled": True,
                "HealthCheckPath": server_ids.health_path(sid),
                "HealthCheckIntervalSeconds": 15,
                "HealthCheckTimeoutSeconds": 5,
                "HealthyThresholdCount": 2,
                "UnhealthyThresholdCount": 3,
                "Matcher": {"HttpCode": "200"},
            },
        )

    def expect_delay(self, sid: str) -> None:
        self.stubber.add_response(
            "modify_target_group_attributes",
            {},
            {
                "TargetGroupArn": tg_arn(sid),
                "Attributes": [{"Key": "deregistration_delay.timeout_seconds", "Value": "30"}],
            },
        )

    def expect_register(self, sid: str, port: int) -> None:
        self.stubber.add_response(
            "register_targets", {}, {"TargetGroupArn": tg_arn(sid), "Targets": [{"Id": INSTANCE, "Port": port}]}
        )

    def expect_record(self, sid: str) -> None:
        self.stubber.add_response("add_tags", {}, {"ResourceArns": [tg_arn(sid)], "Tags": ANY})

    def expect_new_servers(self, ports: dict[str, int]) -> None:
        """Everything before the rules for new servers, in the plan's order."""
        for sid, port in sorted(ports.items()):
            self.expect_new_group(sid, port)
        for sid in sorted(ports):
            self.expect_delay(sid)
        for sid, port in sorted(ports.items()):
            self.expect_register(sid, port)
        for sid in sorted(ports):
            self.expect_record(sid)

    def expect_rule(self, sid: str, priority: int) -> None:
        self.stubber.add_response(
            "create_rule",
            {"Rules": [self._rule(sid, priority)]},
            {
                "ListenerArn": LISTENER,
                "Priority": priority,
                "Conditions": ANY,
                "Actions": [{"Type": "forward", "TargetGroupArn": tg_arn(sid)}],
                "Tags": ANY,
            },
        )

    def expect_rule_error(self, sid: str, priority: int, code: str, status: int = 400) -> None:
        self.stubber.add_client_error(
            "create_rule",
            code,
            f"{code} (stubbed)",
            status,
            {
                "ListenerArn": LISTENER,
                "Priority": priority,
                "Conditions": ANY,
                "Actions": [{"Type": "forward", "TargetGroupArn": tg_arn(sid)}],
                "Tags": ANY,
            },
        )

    # -- removal of one routed server ----------------------------------------------------
    def expect_delete_rule(self, sid: str) -> None:
        self.stubber.add_response("delete_rule", {}, {"RuleArn": rule_arn(self.routed[sid][1])})

    def expect_group_removal(self, sid: str) -> None:
        port = self.routed[sid][0]
        self.stubber.add_response(
            "deregister_targets", {}, {"TargetGroupArn": tg_arn(sid), "Targets": [{"Id": INSTANCE, "Port": port}]}
        )
        self.stubber.add_response("delete_target_group", {}, {"TargetGroupArn": tg_arn(sid)})
