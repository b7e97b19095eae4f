"""moto as a real HTTP server on loopback, a load balancer inside it, and a call counter.

Used by the fixtures in conftest.py and by tests that build more than one world.
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from typing import Any

from common.settings import AwsSettings
from services.alb_agent.standin import build_world

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

    def config(self, **overrides: Any) -> AwsSettings:
        values: dict[str, Any] = dict(
            region=REGION,
            alb_arn=self.alb_arn,
            listener_arn=self.listener_arn,
            vpc_id=self.vpc_id,
            endpoint_url=self.url,
            instance_id=self.instance_id,
            imds_endpoint=self.url,
            api_max_attempts=2,
        )
        values.update(overrides)
        return AwsSettings(**values)


def boto_client(service: str, url: str) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=url, region_name=REGION)


def make_world(moto_url: str) -> AwsWorld:
    """A reset moto backend with a VPC, two subnets, an instance, an ALB and a listener."""
    reset_moto(moto_url)
    ec2 = boto_client("ec2", moto_url)
    elbv2 = boto_client("elbv2", moto_url)
    return AwsWorld(moto_url, ec2, elbv2, **build_world(ec2, elbv2, REGION, name="mcp-test-alb"))
