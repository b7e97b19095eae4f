"""The orchestrator's real processes for the control-plane benchmarks.

The harness's private cluster (harness/cluster.py): the container-agent, the
alb-agent, the scheduler (and the dashboard when asked) run as the launcher starts
them, with settings of their own: ipc:// endpoints in the run's temporary directory,
a cluster name of their own (so they touch no other container), a free port range on
127.0.0.1, the ALB in the benchmark's moto server, and otherwise the product's
defaults. Every container the agent creates carries the run's labels.
"""

from __future__ import annotations

import asyncio
from typing import Optional

from tests.harness.cluster import Cluster
from tests.harness.ports import free_port_range
from tests.harness.processes import clean_env

from .aws_world import CREDENTIALS, World
from .context import Context
from .mcp_client import HttpSession

TIME_ARGS = {"timezone": "UTC"}


class Orchestra(Cluster):
    REQUEST_TIMEOUT_MS = 5000

    def __init__(
        self,
        ctx: Context,
        world: World,
        *,
        ports: int,
        interval: int = 60,
        log_level: str = "INFO",
        name: str = "orch",
        keep_sockets: bool = False,
    ) -> None:
        super().__init__(
            ctx.work / name,
            f"b{ctx.run_id}{name[:4]}",
            port_range=free_port_range(ports),
            labels=ctx.labels,
            interval=interval,
            settings={
                "aws": world.aws_settings(),
                "dashboard": {"password": f"bench-{ctx.run_id}"},
                "logging": {"level": log_level},
            },
            env=clean_env(**CREDENTIALS),
            docker=ctx.docker,
            keep_sockets=keep_sockets,
        )
        self.world = world

    def counts(self, wanted: set[str]) -> str:
        """How far the wanted servers are: running / served / routed (for progress lines)."""
        servers = self.servers()
        got = [servers.get(sid, {}) for sid in wanted]
        return (
            f"{sum(s.get('status') == 'running' for s in got)} running, "
            f"{sum(s.get('bridge') == 'ready' for s in got)} served, "
            f"{sum(s.get('route') == 'routed' for s in got)} routed of {len(wanted)}"
        )

    def run_of(self, server_id: str) -> Optional[tuple[str, str]]:
        """(container id, StartedAt) of the server's running container; None if none runs."""
        import docker.errors

        cid = self.container_ids().get(server_id)
        if cid is None:
            return None
        try:
            state = self.docker.api.inspect_container(cid)["State"]
        except docker.errors.NotFound:
            return None
        return (cid, state.get("StartedAt", "")) if state.get("Running") else None


async def _call(port: int, server_id: str, tool: str, arguments: dict, timeout: float) -> bool:
    session = HttpSession("127.0.0.1", port, f"/mcp/{server_id}/mcp", timeout=timeout)
    try:
        await session.initialize()
        await session.call_tool(tool, arguments)
        await session.delete()
        return True
    finally:
        session.close()


def answers(
    port: Optional[int],
    server_id: str,
    tool: str = "get_current_time",
    arguments: Optional[dict] = None,
    timeout: float = 5.0,
) -> bool:
    """A whole MCP session through the bridge at `port` works right now."""
    if not port:
        return False
    try:
        return asyncio.run(_call(port, server_id, tool, TIME_ARGS if arguments is None else arguments, timeout))
    except Exception:
        return False
