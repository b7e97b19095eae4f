"""The orchestrator's processes for end-to-end tests, and ways to look at the result.

`Orchestrator` is the harness's private cluster (harness/cluster.py) as the tests use
it: a short temporary directory, a cluster name of its own, a free port range, fast
heartbeats and short request timeouts, the test label on every container the agent
makes; `close()` removes its containers and directory too. The alb-agent works against
its own moto stand-in; `rules()` reads the listener rules back from it with plain
boto3 calls.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, Iterator, Optional

from common import container_labels as labels
from tests.harness.cluster import Cluster
from tests.harness.files import Sections, merged
from tests.harness.labels import TEST_LABEL
from tests.harness.ports import free_port_range
from tests.harness.processes import clean_env

FAST = {"zmq": {"heartbeat_interval_seconds": 0.3, "request_timeout_ms": 2000, "request_retries": 2}}


class Orchestrator(Cluster):
    def __init__(
        self,
        docker_client: Any,
        *,
        port_range: Optional[tuple[int, int]] = None,
        interval: int = 30,
        settings: Optional[Sections] = None,
        env: Optional[dict[str, str]] = None,
    ) -> None:
        super().__init__(
            # ipc paths must stay short (Unix socket paths take about 107 bytes).
            Path(tempfile.mkdtemp(prefix="sch-", dir="/tmp")),
            "t" + uuid.uuid4().hex[:8],
            port_range=port_range or free_port_range(12),
            labels={TEST_LABEL: "1"},
            interval=interval,
            settings=merged(FAST, settings or {}),
            docker=docker_client,
            env=env,
        )

    def close(self) -> None:
        super().close()
        self.remove_containers()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- Docker and the AWS stand-in -----------------------------------------------------

    def containers(self) -> dict[str, Any]:
        """server id -> container of this cluster (any state)."""
        found = self.docker.containers.list(all=True, filters={"label": f"{labels.CLUSTER}={self.cluster}"})
        return {c.labels[labels.SERVER_ID]: c for c in found}

    def standin_url(self) -> str:
        found = re.findall(r"local stand-in at (http://127\.0\.0\.1:\d+)", self.output("alb-agent"))
        assert found, self.output("alb-agent")
        return found[-1]

    @contextlib.contextmanager
    def node_agents(
        self, rig: Any, settings: Optional[Sections] = None, per_node: Optional[dict[str, Sections]] = None
    ) -> Iterator[dict[str, Cluster]]:
        """A container-agent on every node of a swarm rig (tests/harness/swarm_rig.py),
        inside the node's network namespace and on its engine, with this cluster's name
        and port range: node name -> its cluster (a directory of its own). The bridges
        listen on every address of the node, without tokens (the rig's network is the
        test's own). `per_node`: settings of one node by its name (its instance id)."""
        agents: dict[str, Cluster] = {}
        try:
            for node in rig.nodes:
                agent = Cluster(
                    Path(tempfile.mkdtemp(prefix=f"{node.name}-", dir="/tmp")),
                    self.cluster,
                    port_range=self.port_range,
                    labels={TEST_LABEL: "1"},
                    settings=merged(
                        FAST,
                        {"service": {"bridge_host": "0.0.0.0"}, "bridge": {"auth": "none"}},
                        settings or {},
                        (per_node or {}).get(node.name, {}),
                    ),
                    env=clean_env(DOCKER_HOST=node.socket),
                    prefix=node.prefix(),
                )
                agents[node.name] = agent
                agent.start("container-agent")
            yield agents
        finally:
            for agent in agents.values():
                agent.close()
                shutil.rmtree(agent.dir, ignore_errors=True)

    def aws(self, name: str) -> Any:
        """A boto3 client of the alb-agent's AWS stand-in."""
        import boto3

        session = boto3.session.Session(
            aws_access_key_id="standin", aws_secret_access_key="standin", region_name="us-west-2"
        )
        return session.client(name, endpoint_url=self.standin_url())

    def new_instances(self, count: int) -> list[str]:
        """EC2 instances made in the stand-in (the hosts of a swarm, as the ALB knows them)."""
        ec2 = self.aws("ec2")
        subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
        made = ec2.run_instances(ImageId="ami-12345678", MinCount=count, MaxCount=count, SubnetId=subnet)
        return [i["InstanceId"] for i in made["Instances"]]

    def target_instances(self, server_id: str) -> set[str]:
        """The instances registered (not draining) in the server's target group."""
        from services.alb_agent import naming

        elbv2 = self.aws("elbv2")
        name = naming.target_group_name(server_id, self.cluster)
        try:
            [group] = elbv2.describe_target_groups(Names=[name])["TargetGroups"]
        except elbv2.exceptions.TargetGroupNotFoundException:
            return set()
        health = elbv2.describe_target_health(TargetGroupArn=group["TargetGroupArn"])["TargetHealthDescriptions"]
        return {h["Target"]["Id"] for h in health if h["TargetHealth"]["State"] != "draining"}

    def rules(self) -> dict[str, tuple[str, int, tuple[str, ...]]]:
        """path pattern -> (rule ARN, priority, forward target groups) on the stand-in."""
        elbv2 = self.aws("elbv2")
        out = {}
        for lb in elbv2.describe_load_balancers()["LoadBalancers"]:
            for listener in elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]:
                for rule in elbv2.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]:
                    if rule["IsDefault"]:
                        continue
                    forwards = tuple(a["TargetGroupArn"] for a in rule["Actions"] if a.get("TargetGroupArn"))
                    for cond in rule["Conditions"]:
                        for path in cond.get("PathPatternConfig", {}).get("Values", []):
                            out[path] = (rule["RuleArn"], int(rule["Priority"]), forwards)
        return out
