"""A local AWS stand-in for hosts without an ALB ([aws] alb_arn and listener_arn empty).

moto runs as an HTTP server on loopback with a VPC, an instance, a load balancer and an
HTTP listener made for the occasion, so the whole product (routing view included) works
on a laptop. Nothing leaves the machine: the stand-in gets its own dummy credentials.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, Callable

import boto3

from common.settings import AwsSettings

log = logging.getLogger(__name__)

_CREDENTIALS = {"aws_access_key_id": "standin", "aws_secret_access_key": "standin"}


class StandInError(Exception):
    pass


@dataclass(frozen=True)
class StandIn:
    url: str
    config: AwsSettings  # points at the stand-in's load balancer
    session: boto3.session.Session
    stop: Callable[[], None]


def start_standin(base: AwsSettings) -> StandIn:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise StandInError(
            "no ALB is configured ([aws] alb_arn, listener_arn) and the local "
            "stand-in needs moto[server], which is not installed"
        ) from None
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    session = boto3.session.Session(region_name=base.region, **_CREDENTIALS)
    try:
        world = build_world(
            session.client("ec2", endpoint_url=url), session.client("elbv2", endpoint_url=url), base.region
        )
        ids = {k: v for k, v in world.items() if k != "subnet_ids"}
    except Exception:
        server.stop()
        raise
    config = replace(base, endpoint_url=url, imds_endpoint=url, **ids)
    log.warning("no ALB configured: routing goes to a local stand-in at %s (simulated)", url)
    return StandIn(url, config, session, server.stop)


def build_world(ec2: Any, elbv2: Any, region: str, name: str = "mcp-orchestrator-standin") -> dict[str, Any]:
    """In an empty AWS stand-in: a VPC, two subnets, an instance, an ALB and an HTTP
    listener whose default action is a 404. Tests and benchmarks build theirs here too."""
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{region}{zone}")["Subnet"][
            "SubnetId"
        ]
        for i, zone in ((1, "a"), (2, "b"))
    ]
    instance_id = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, SubnetId=subnets[0])["Instances"][
        0
    ]["InstanceId"]
    alb_arn = elbv2.create_load_balancer(Name=name, Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    listener_arn = elbv2.create_listener(
        LoadBalancerArn=alb_arn,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[
            {
                "Type": "fixed-response",
                "FixedResponseConfig": {
                    "StatusCode": "404",
                    "ContentType": "text/plain",
                    "MessageBody": "no such route",
                },
            }
        ],
    )["Listeners"][0]["ListenerArn"]
    return {
        "vpc_id": vpc_id,
        "subnet_ids": subnets,
        "instance_id": instance_id,
        "alb_arn": alb_arn,
        "listener_arn": listener_arn,
    }
