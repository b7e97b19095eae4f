"""moto as a real HTTP server on loopback, a load balancer inside it, and a call counter.

Used by the fixtures in conftest.py and by tests that build more than one world.
"""
from __future__ import annotations

import urllib.request
from collections import Counter
from dataclasses import dataclass
from typing import Any

from services.alb_agent.config import AlbConfig

REGION = "us-east-1"


def reset_moto(url: str) -> None:
    request = urllib.request.Request(f"{url}/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status == 200


@dataclass
class AwsWorld:
    url: str
    ec2: Any
    elbv2: Any  # the test's own client: not counted, not the router's
    vpc_id: str
    subnet_ids: list[str]
    instance_id: str
    alb_arn: str
    listener_arn: str

    def config(self, **overrides: Any) -> AlbConfig:
        values: dict[str, Any] = dict(
            region=REGION, alb_arn=self.alb_arn, listener_arn=self.listener_arn,
            vpc_id=self.vpc_id, endpoint_url=self.url, instance_id=self.instance_id,
            imds_endpoint=self.url, api_max_attempts=2)
        values.update(overrides)
        return AlbConfig(**values)


def boto_client(service: str, url: str) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=url, region_name=REGION)


def make_world(moto_url: str) -> AwsWorld:
    """A reset moto backend with a VPC, two subnets, an instance, an ALB and a listener."""
    reset_moto(moto_url)
    ec2 = boto_client("ec2", moto_url)
    elbv2 = boto_client("elbv2", moto_url)
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{i}.0/24",
                                 AvailabilityZone=f"{REGION}{zone}")["Subnet"]["SubnetId"]
               for i, zone in ((1, "a"), (2, "b"))]
    instance_id = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1,
                                    SubnetId=subnets[0])["Instances"][0]["InstanceId"]
    alb_arn = elbv2.create_load_balancer(Name="mcp-test-alb", Subnets=subnets)[
        "LoadBalancers"][0]["LoadBalancerArn"]
    listener_arn = elbv2.create_listener(
        LoadBalancerArn=alb_arn, Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "fixed-response",
                         "FixedResponseConfig": {"StatusCode": "404"}}])["Listeners"][0][
        "ListenerArn"]
    return AwsWorld(moto_url, ec2, elbv2, vpc_id, subnets, instance_id, alb_arn, listener_arn)


class CallCounter:
    """Counts the API calls a client makes, by operation, through botocore's event hooks."""

    def __init__(self, client: Any) -> None:
        self.calls: Counter[str] = Counter()
        self.order: list[str] = []
        client.meta.events.register("before-call.*.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1
        self.order.append(model.name)

    @property
    def reads(self) -> int:
        return sum(n for op, n in self.calls.items() if op.startswith("Describe"))

    @property
    def writes(self) -> int:
        return sum(n for op, n in self.calls.items() if not op.startswith("Describe"))

    def reset(self) -> None:
        self.calls.clear()
        self.order.clear()

    def summary(self) -> str:
        return ", ".join(f"{op}={n}" for op, n in sorted(self.calls.items()))
