"""moto as a real HTTP server on loopback (in this process, on a thread), an ALB in it,
and a counter of the API calls a boto3 client makes.

It stands for AWS: the alb-agent of the control-plane benchmarks reaches it over HTTP
like any endpoint, so its work is not counted in the agent's CPU or memory.
"""

from __future__ import annotations

import logging
import os
import urllib.request
from dataclasses import dataclass
from typing import Any, Optional

from services.alb_agent.standin import build_world

REGION = "us-east-1"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_SESSION_TOKEN": "bench",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}


@dataclass
class World:
    url: str
    vpc_id: str
    instance_id: str
    alb_arn: str
    listener_arn: str
    elbv2: Any  # the benchmark's own client: not counted

    def aws_settings(self) -> dict[str, str]:
        """The [aws] keys that point an alb-agent at this world."""
        return {
            "region": REGION,
            "alb_arn": self.alb_arn,
            "listener_arn": self.listener_arn,
            "vpc_id": self.vpc_id,
            "endpoint_url": self.url,
            "instance_id": self.instance_id,
            "imds_endpoint": self.url,
        }

    def rule_paths(self) -> set[str]:
        paths: set[str] = set()
        kwargs: dict[str, Any] = {"ListenerArn": self.listener_arn}
        while True:
            page = self.elbv2.describe_rules(**kwargs)
            for rule in page["Rules"]:
                for cond in rule.get("Conditions", []):
                    paths.update(cond.get("PathPatternConfig", {}).get("Values", []))
            marker = page.get("NextMarker")
            if not marker:
                return paths
            kwargs["Marker"] = marker


class Moto:
    """ThreadedMotoServer on 127.0.0.1, with AWS credentials for it in the environment."""

    def __init__(self) -> None:
        self.server: Any = None
        self.url = ""
        self._saved: dict[str, Optional[str]] = {}

    def start(self) -> "Moto":
        from moto.server import ThreadedMotoServer

        self._saved = {k: os.environ.get(k) for k in CREDENTIALS}
        os.environ.update(CREDENTIALS)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=30):
            pass

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name=REGION)

    def world(self) -> World:
        """A reset backend with a VPC, two subnets, an instance, an ALB and a listener."""
        self.reset()
        ec2, elbv2 = self.client("ec2"), self.client("elbv2")
        ids = build_world(ec2, elbv2, REGION, name="mcp-bench-alb")
        return World(self.url, ids["vpc_id"], ids["instance_id"], ids["alb_arn"], ids["listener_arn"], elbv2)
