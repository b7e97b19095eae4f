"""The control plane on every manager of a real three-manager swarm (tests/harness/
swarm_rig.py): a scheduler, alb-agent, dashboard and container-agent in each node's
network namespace, on its engine, all against one AWS stand-in that every manager
reaches (as they would one ALB). One scheduler acts, the Swarm leader's; the others
stand by, say who is active, and refuse actions. When the leader's dockerd is killed,
and separately when the active scheduler process is killed, another manager's scheduler
takes over within seconds (printed), keeps a hand stop, and changes Swarm and the ALB
again: a server removed from the configuration loses its service and its route.

(It runs after the other swarm tests, whose checks of each node's containers are thrown
by a manager's engine killed and started again.)"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Optional

import boto3
import pytest

from common import curve
from common.reqrep import CodedError
from services.alb_agent import naming
from services.alb_agent.standin import build_world
from tests.dashboard.processes import PASSWORD, DashboardUser
from tests.harness.cluster import Cluster
from tests.harness.files import merged
from tests.harness.labels import TEST_LABEL
from tests.harness.ports import free_port_range
from tests.harness.processes import clean_env
from tests.harness.swarm_rig import GATEWAY
from tests.harness.waiting import wait_for
from tests.scheduler.support import FAST

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.swarm]

REGION = "us-west-2"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "standin", "AWS_SECRET_ACCESS_KEY": "standin", "AWS_DEFAULT_REGION": REGION}
LEASE_SECONDS = 4


class SharedAws:
    """One moto server on the rig's gateway address: the ALB every manager's alb-agent uses."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address=GATEWAY, port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        session = boto3.session.Session(
            aws_access_key_id="standin", aws_secret_access_key="standin", region_name=REGION
        )
        self.ec2 = session.client("ec2", endpoint_url=self.url)
        self.elbv2 = session.client("elbv2", endpoint_url=self.url)
        self.world = build_world(self.ec2, self.elbv2, REGION, name="mcp-swarm-control")
        made = self.ec2.run_instances(
            ImageId="ami-12345678", MinCount=3, MaxCount=3, SubnetId=self.world["subnet_ids"][0]
        )
        self.instances = [i["InstanceId"] for i in made["Instances"]]

    def settings(self, instance_id: str) -> dict:
        return {
            "region": REGION,
            "alb_arn": self.world["alb_arn"],
            "listener_arn": self.world["listener_arn"],
            "vpc_id": self.world["vpc_id"],
            "endpoint_url": self.url,
            "imds_endpoint": self.url,
            "instance_id": instance_id,
        }

    def paths(self) -> set[str]:
        rules = self.elbv2.describe_rules(ListenerArn=self.world["listener_arn"])["Rules"]
        return {
            path
            for rule in rules
            if not rule["IsDefault"]
            for cond in rule["Conditions"]
            for path in cond.get("PathPatternConfig", {}).get("Values", [])
        }

    def targets(self, server_id: str, cluster: str) -> Optional[set[str]]:
        """The instances registered (not draining) in the server's group; None: no group."""
        try:
            [group] = self.elbv2.describe_target_groups(Names=[naming.target_group_name(server_id, cluster)])[
                "TargetGroups"
            ]
        except self.elbv2.exceptions.TargetGroupNotFoundException:
            return None
        health = self.elbv2.describe_target_health(TargetGroupArn=group["TargetGroupArn"])["TargetHealthDescriptions"]
        return {h["Target"]["Id"] for h in health if h["TargetHealth"]["State"] != "draining"}

    def close(self) -> None:
        self.server.stop()


class Managers:
    """The orchestrator's four processes on every node of the rig (each node a manager)."""

    def __init__(self, rig: Any, keys: Path, aws: SharedAws) -> None:
        self.rig = rig
        self.name = "t" + __import__("uuid").uuid4().hex[:8]
        port_range = free_port_range(12)
        self.instance = {node.name: iid for node, iid in zip(rig.nodes, aws.instances)}
        self.clusters: dict[str, Cluster] = {}
        for node in rig.nodes:
            settings = merged(
                FAST,
                {
                    "service": {"bridge_host": "0.0.0.0", "reconciliation_interval_seconds": 30},
                    "bridge": {"auth": "none"},
                    "cluster": {
                        "engine": "swarm",
                        "keys_dir": keys,
                        "control_lease_seconds": LEASE_SECONDS,
                        "update_delay_seconds": 0.5,
                        "update_monitor_seconds": 2,
                    },
                    "aws": aws.settings(self.instance[node.name]),
                    "dashboard": {"host": "0.0.0.0", "password": PASSWORD},
                },
            )
            self.clusters[node.name] = Cluster(
                Path(tempfile.mkdtemp(prefix=f"c{node.name}-", dir="/tmp")),
                self.name,
                port_range=port_range,
                labels={TEST_LABEL: "1"},
                settings=settings,
                env=clean_env(DOCKER_HOST=node.socket, **CREDENTIALS),
                prefix=node.prefix(),
            )

    def start(self) -> None:
        for cluster in self.clusters.values():
            for name in ("container-agent", "alb-agent", "scheduler", "dashboard"):
                cluster.start(name)

    def write_config(self, servers: dict) -> None:
        """The same configuration file on every manager (as a deployment tool would)."""
        for cluster in self.clusters.values():
            cluster.write_config(servers)

    def controls(self) -> dict[str, Optional[dict]]:
        """node name -> its scheduler's control view (None: it does not answer)."""
        out = {}
        for name, cluster in self.clusters.items():
            state = cluster.status() if cluster.pid("scheduler") else None
            out[name] = ((state or {}).get("cluster") or {}).get("control") if state else None
        return out

    def active(self, among: Optional[set[str]] = None) -> Optional[str]:
        """The one node whose scheduler acts, when the others that answer agree on it."""
        controls = {n: c for n, c in self.controls().items() if c and (among is None or n in among)}
        acting = [n for n, c in controls.items() if c["role"] == "active"]
        if len(acting) != 1:
            return None
        if any(c["active_node"] != acting[0] for c in controls.values()):
            return None
        return acting[0]

    def dashboard(self, node_name: str) -> DashboardUser:
        user = DashboardUser(self.clusters[node_name].dashboard_port)
        user.base = user.base.replace("127.0.0.1", self.node(node_name).address)
        return user.login()

    def node(self, name: str) -> Any:
        return next(n for n in self.rig.nodes if n.name == name)

    def diagnosis(self) -> str:
        lines = [f"controls: {self.controls()}"]
        for name, cluster in self.clusters.items():
            for proc in ("scheduler", "alb-agent"):
                if proc in cluster.procs:
                    lines.append(f"--- {name} {proc} ---\n{cluster.output(proc, 15)}")
        return "\n".join(lines)

    def close(self) -> None:
        for cluster in self.clusters.values():
            cluster.close()
            shutil.rmtree(cluster.dir, ignore_errors=True)


@pytest.fixture
def managers(swarm_rig, tmp_path) -> Iterator[Managers]:
    keys = tmp_path / "keys"
    curve.create_keys(keys)
    aws = SharedAws()
    m = Managers(swarm_rig, keys, aws)
    m.aws = aws  # type: ignore[attr-defined]
    try:
        yield m
    finally:
        m.close()
        aws.close()
        for node in swarm_rig.nodes:  # whichever engine answers removes what the test left
            try:
                client = node.client(timeout=10)
                for service in client.api.services(filters={"label": f"mcp-orchestrator.cluster={m.name}"}):
                    client.api.remove_service(service["ID"])
                for config in client.api.configs(filters={"name": f"mcp-orchestrator-{m.name}-control"}):
                    client.api.remove_config(config["ID"])
                break
            except Exception:
                continue


def time_server(image: str, replicas: int) -> dict:
    return {"command": "docker", "args": ["run", "-i", "--rm", image], "orchestrator": {"replicas": replicas}}


def services_of(rig: Any, cluster: str, among: Optional[set[str]] = None) -> Optional[dict[str, int]]:
    """server id -> desired replicas of the test's services, read through a live manager."""
    for node in rig.nodes:
        if among is not None and node.name not in among:
            continue
        try:
            found = node.client(timeout=5).api.services(filters={"label": f"mcp-orchestrator.cluster={cluster}"})
        except Exception:
            continue
        return {
            s["Spec"]["Labels"]["mcp-orchestrator.server-id"]: s["Spec"]["Mode"]["Replicated"]["Replicas"]
            for s in found
        }
    return None


def test_one_manager_acts_and_another_takes_over_when_it_is_lost(managers: Managers, swarm_rig, time_server_image):
    m, rig, aws = managers, swarm_rig, managers.aws  # type: ignore[attr-defined]
    leader = next(
        n.name
        for n in rig.nodes
        if n.docker("node", "inspect", "self", "--format", "{{.ManagerStatus.Leader}}").stdout.strip() == "true"
    )
    m.write_config({"clock": time_server(time_server_image, 2), "paris": time_server(time_server_image, 1)})
    m.start()

    # One acts, the Swarm leader's; the others stand by and name it.
    active = wait_for(lambda: m.active(), 60, "one active control plane", explain=m.diagnosis)
    assert active == leader, (active, leader)
    wait_for(lambda: services_of(rig, m.name) == {"clock": 2, "paris": 1}, 120, "the services", explain=m.diagnosis)
    wait_for(
        lambda: {"/mcp/clock", "/mcp/paris"} <= {p.rstrip("/*") for p in aws.paths()},
        120,
        "both routed on the shared ALB",
        explain=m.diagnosis,
    )
    standby = next(name for name in m.clusters if name != active)
    with pytest.raises(CodedError) as refused:
        m.clusters[standby].action("stop", "paris")
    assert f"the active one is on {active}" in str(refused.value.message)
    # A hand stop on the active manager: said in Swarm, kept by whoever acts next.
    m.clusters[active].action("stop", "paris")
    wait_for(lambda: (services_of(rig, m.name) or {}).get("paris") == 0, 60, "paris stopped by hand")

    # The leader's dockerd killed: another manager's control plane acts.
    lost = m.node(active)
    moment = time.monotonic()
    rig.kill_daemon(lost)
    survivors = {name for name in m.clusters if name != active}
    took = wait_for(lambda: m.active(survivors), 90, "a surviving manager to act", explain=m.diagnosis)
    print(f"\ncontrol plane: {active}'s dockerd killed, {took} active after {time.monotonic() - moment:.1f} s")
    page = m.dashboard(next(iter(survivors - {took})))
    control = wait_for(
        lambda: (c := page.api("nodes")["scheduler"]["control"]) and c["active_node"] == took and c,
        30,
        "a standby's dashboard to name the new active node",
    )
    assert control["role"] == "standby"
    # It acts: a server removed from the configuration leaves Swarm and the ALB; the
    # hand stop stands.
    m.write_config({"paris": time_server(time_server_image, 1)})
    wait_for(
        lambda: services_of(rig, m.name, survivors) == {"paris": 0},
        60,
        "clock's service removed by the new active manager",
        explain=m.diagnosis,
    )
    wait_for(
        lambda: "/mcp/clock" not in {p.rstrip("/*") for p in aws.paths()} and aws.targets("clock", m.name) is None,
        60,
        "clock's route and target group removed",
        explain=m.diagnosis,
    )
    rig.restart_daemon(lost)
    wait_for(lambda: m.active() == took, 60, "the old leader's scheduler standing by", explain=m.diagnosis)

    # The active scheduler process killed (its node and engine fine): another takes over.
    moment = time.monotonic()
    m.clusters[took].kill9("scheduler")
    others = set(m.clusters) - {took}
    second = wait_for(lambda: m.active(others), 60, "another manager to act", explain=m.diagnosis)
    print(f"control plane: {took}'s scheduler killed, {second} active after {time.monotonic() - moment:.1f} s")
    m.write_config({"paris": time_server(time_server_image, 1), "clock": time_server(time_server_image, 2)})
    wait_for(
        lambda: services_of(rig, m.name) == {"paris": 0, "clock": 2},
        90,
        "clock made again by the third active manager, paris still stopped",
        explain=m.diagnosis,
    )
    # A scheduler started again on the node it left stands by.
    m.clusters[took].start("scheduler")
    wait_for(lambda: m.active() == second, 60, "the restarted scheduler standing by", explain=m.diagnosis)
