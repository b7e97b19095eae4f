"""A local AWS stand-in for hosts without an ALB ([aws] alb_arn and listener_arn empty).

moto runs as an HTTP server on loopback, in a process of its own started by the
alb-agent (`python -m services.alb_agent.standin`: moto holds well over 100 MB, which the
agent itself need not), with a VPC, an instance, a load balancer and an HTTP listener
made for the occasion, so the whole product (routing view included) works on a laptop.
Nothing leaves the machine: the stand-in gets its own dummy credentials. The child
prints its URL, then serves until its standard input closes: when the alb-agent stops,
or dies however it dies, the stand-in goes with it.
"""

from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

import boto3

from common.process import die_with_parent
from common.settings import AwsSettings

log = logging.getLogger(__name__)

_CREDENTIALS = {"aws_access_key_id": "standin", "aws_secret_access_key": "standin"}
START_TIMEOUT = 60.0  # importing moto takes a few seconds on a slow machine
STOP_TIMEOUT = 5.0


class StandInError(Exception):
    pass


@dataclass(frozen=True)
class StandIn:
    url: str
    config: AwsSettings  # points at the stand-in's load balancer
    session: boto3.session.Session
    stop: Callable[[], None]


def start_standin(base: AwsSettings, *, python: str = sys.executable) -> StandIn:
    proc = _spawn(python, base.region)
    try:
        world = _read_world(proc)
    except BaseException:
        _stop(proc)
        raise
    url = world.pop("url")
    world.pop("subnet_ids", None)
    config = replace(base, endpoint_url=url, imds_endpoint=url, **world)
    session = boto3.session.Session(region_name=base.region, **_CREDENTIALS)
    log.warning("no ALB configured: routing goes to a local stand-in at %s (simulated, pid %d)", url, proc.pid)
    return StandIn(url, config, session, lambda: _stop(proc))


def _spawn(python: str, region: str) -> subprocess.Popen:
    try:
        return subprocess.Popen(
            [python, "-m", "services.alb_agent.standin", region],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            preexec_fn=die_with_parent,
        )
    except OSError as exc:
        raise StandInError(f"the local AWS stand-in could not be started: {exc.strerror}") from None


def _read_world(proc: subprocess.Popen) -> dict[str, Any]:
    """What the child prints once it serves (its URL and the ids of the world it built
    in it: the EC2 model is big, and only the child needs it), within START_TIMEOUT."""
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise StandInError(f"the local AWS stand-in did not start within {START_TIMEOUT:g} s")
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                code = proc.wait()
                raise StandInError(f"the local AWS stand-in exited at start (code {code}): see the lines above")
            line += chunk
    proc.stdout.close()  # the child writes nothing more there
    try:
        world = json.loads(line)
    except ValueError:
        world = None
    if not isinstance(world, dict) or not str(world.get("url", "")).startswith("http://127.0.0.1:"):
        raise StandInError("the local AWS stand-in said something else than its address")
    return world


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        proc.stdin.close()  # type: ignore[union-attr]  # the child's signal to stop
    except OSError:
        pass
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def serve(region: str, stdin: Optional[Any] = None, stdout: Optional[Any] = None) -> int:
    """The child: moto on a free loopback port with a world built in it, its URL and the
    world's ids on stdout as one JSON line, until stdin closes."""
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        print(
            "no ALB is configured ([aws] alb_arn, listener_arn) and the local stand-in needs "
            "moto[server], which is not installed",
            file=sys.stderr,
        )
        return 2
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    session = boto3.session.Session(region_name=region, **_CREDENTIALS)
    world = build_world(session.client("ec2", endpoint_url=url), session.client("elbv2", endpoint_url=url), region)
    print(json.dumps({"url": url, **world}), file=stdout, flush=True)
    if stdout is sys.stdout:  # nobody reads it any more: a print must not block on it
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    while stdin.read(4096):
        pass
    server.stop()
    return 0


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


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1]))
