"""The five ways to reach the same stdio MCP server, each behind one interface.

- `direct`: the floor. `docker run -i --rm IMAGE` spoken to over its stdin/stdout by
  the load generator itself; sessions share the one server, matched by request id.
- `bridge`: this project's bridge (benchmarks/bridge_host.py, its own process) serving
  a container created as the container-agent creates them (stdin open, not tied to
  the first attach).
- `mcp-proxy-npm`: the TypeScript mcp-proxy from npm (MCP SDK 2.x) wrapping
  `docker run -i --rm IMAGE`: one child shared by all sessions; its Streamable HTTP
  endpoint serves 2026-07-28 too.
- `mcp-proxy-pypi`: the Python mcp-proxy from PyPI, a different program of the same
  name, wrapping the same command (one child shared by all sessions).
- `supergateway`: supergateway's stateful Streamable HTTP mode wrapping the same
  command: it starts one child (so one container) per session. Its default mode is
  stateless, which starts a child per request.

Each target opens handshake-era sessions (`open_session`) and 2026-07-28 stateless
clients (`open_stateless`); whether a target serves the latter is found out by
asking it, not assumed.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import subprocess
import sys
from typing import Any, Optional, Protocol

from services.cli.launcher import die_with_parent
from tests.harness.ports import free_port

from .context import MCP_PROXY_NPM, MCP_PROXY_PYPI, ROOT, SUPERGATEWAY, Context, tail, wait_port
from .mcp_client import HttpSession, StatelessClient, StdioServer

START_TIMEOUT = 90.0


class ToolCaller(Protocol):
    """What a workload calls tools through: a session, or a 2026-07-28 stateless client."""

    async def call_tool(self, name: str, arguments: dict) -> Any: ...
    async def delete(self) -> int: ...
    def close(self) -> None: ...


class Session(ToolCaller, Protocol):
    async def initialize(self) -> dict: ...
    async def request(self, method: str, params: Optional[dict] = None) -> Any: ...


class Target:
    name = ""
    slug = ""  # in file names and in the label on its containers
    note = ""
    is_bridge = False  # an HTTP bridge (the short-session benchmark needs one)
    # Why its 2026-07-28 leg is not put under sustained load, though it answers ("": it is).
    modern_unloaded = ""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def start(self) -> None:
        raise NotImplementedError

    async def open_session(self) -> Session:
        raise NotImplementedError

    async def open_stateless(self) -> ToolCaller:
        """A 2026-07-28 client: no handshake, each call stands alone."""
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    def pids(self) -> list[int]:
        """The bridge's own processes (its children included), for CPU accounting."""
        return []

    def container_ids(self) -> list[str]:
        return self.ctx.container_ids(self.slug)


# --- direct stdio ------------------------------------------------------------------


class _SharedStdioSession:
    """A 'session' of the floor: calls on the one shared server process; `modern`: each
    call a 2026-07-28 request (the server needs no session for it)."""

    def __init__(self, server: StdioServer, modern: bool = False) -> None:
        self.server = server
        self.modern = modern

    async def initialize(self) -> dict:
        return {}

    async def request(self, method: str, params: Optional[dict] = None) -> Any:
        return await self.server.request(method, params)

    async def call_tool(self, name: str, arguments: dict) -> Any:
        return await self.server.call_tool(name, arguments, modern=self.modern)

    async def delete(self) -> int:
        return 0

    def close(self) -> None:
        pass


class DirectStdio(Target):
    name = "direct stdio"
    slug = "direct"
    note = "the floor: the load generator itself writes JSON-RPC lines to `docker run -i --rm IMAGE`"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.server: Optional[StdioServer] = None
        # A second server for 2026-07-28 requests: one that was initialized serves only
        # the handshake era on that connection. Started when first asked for.
        self.modern_server: Optional[StdioServer] = None

    async def start(self) -> None:
        self.server = StdioServer(self.ctx.docker_run_argv(self.slug))
        await self.server.start()
        await self.server.initialize(timeout=START_TIMEOUT)

    async def open_session(self) -> Session:
        assert self.server is not None
        return _SharedStdioSession(self.server)

    async def open_stateless(self) -> ToolCaller:
        if self.modern_server is None:
            self.modern_server = StdioServer(self.ctx.docker_run_argv(self.slug))
            await self.modern_server.start()
        return _SharedStdioSession(self.modern_server, modern=True)

    async def stop(self) -> None:
        for server in (self.server, self.modern_server):
            if server is not None:
                await server.close()
        self.server = self.modern_server = None


# --- HTTP bridges ------------------------------------------------------------------


class HttpTarget(Target):
    path = "/mcp"
    is_bridge = True

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.port = 0
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = ctx.log_file(f"{self.slug}.log")

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None else []

    async def open_session(self) -> Session:
        session = HttpSession("127.0.0.1", self.port, self.path)
        try:
            await session.initialize()
        except Exception:
            session.close()
            raise
        return session

    async def open_stateless(self) -> ToolCaller:
        return StatelessClient("127.0.0.1", self.port, self.path)

    def _spawn(self, argv: list[str], **kwargs: Any) -> subprocess.Popen:
        log = open(self.log_path, "ab")
        try:
            return subprocess.Popen(
                argv, stderr=log, cwd=ROOT, start_new_session=True, preexec_fn=die_with_parent, **kwargs
            )
        finally:
            log.close()

    def _failed(self, what: str) -> RuntimeError:
        return RuntimeError(f"{self.name}: {what}\n{tail(self.log_path)}")

    async def _wait_listening(self) -> None:
        try:
            await asyncio.to_thread(wait_port, "127.0.0.1", self.port, START_TIMEOUT, self.proc)
        except RuntimeError as exc:
            raise self._failed(str(exc)) from None

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        if proc.poll() is None:
            proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 20)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait, 10)


class ProjectBridge(HttpTarget):
    name = "this bridge"
    slug = "bridge"
    note = (
        "benchmarks/bridge_host.py: BridgeThread as in the container-agent, attached to the container, "
        "counting every request for /metrics and the dashboard and writing its access line (INFO, to a file)"
    )
    quiet = False

    def __init__(self, ctx: Context, profile: str = "") -> None:
        super().__init__(ctx)
        self.server_id = "bench"
        self.path = f"/mcp/{self.server_id}/mcp"
        self.profile = profile
        self.container: Any = None

    async def start(self) -> None:
        def create() -> Any:
            # As the container-agent creates them: stdin open and not closed by the first
            # attach's end (the docker SDK's `detach` leaves StdinOnce false).
            return self.ctx.docker.containers.run(
                self.ctx.time_image,
                detach=True,
                stdin_open=True,
                labels=self.ctx.target_labels(self.slug),
                name=f"bench-{self.ctx.run_id}-bridge-{free_port()}",
            )

        self.container = await asyncio.to_thread(create)
        argv = [
            sys.executable,
            "-m",
            "benchmarks.bridge_host",
            "--server-id",
            self.server_id,
            "--container",
            self.container.id,
        ]
        if self.profile:
            argv += ["--profile", self.profile]
        if self.quiet:
            argv.append("--quiet")
        self.proc = self._spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        line = await asyncio.to_thread(self.proc.stdout.readline)
        try:
            answer = json.loads(line or b"{}")
        except ValueError:
            answer = {}
        if "port" not in answer:
            raise self._failed(f"did not start: {answer.get('error') or line[:200]!r}")
        self.port = int(answer["port"])

    async def stop(self) -> None:
        await super().stop()
        if self.container is not None:
            container, self.container = self.container, None
            await asyncio.to_thread(container.remove, force=True)


class ProjectBridgeQuiet(ProjectBridge):
    name = "this bridge, unobserved"
    slug = "bridge-quiet"
    note = "the same without counting and without the access log: what observing every request costs"
    quiet = True


class McpProxyNpm(HttpTarget):
    name = "mcp-proxy (npm)"
    slug = "mcp-proxy-npm"
    note = (
        "mcp-proxy from npm (TypeScript, MCP SDK 2.x) `--port P -- docker run -i --rm IMAGE`: "
        "Streamable HTTP at /mcp, one child for all sessions, 2026-07-28 served beside the "
        "session era (its default --modern)"
    )

    async def start(self) -> None:
        if not MCP_PROXY_NPM.exists():
            raise RuntimeError(
                f"{MCP_PROXY_NPM} is missing: run scripts/ensure-bench-tools.sh (it needs Node.js 20 or newer)"
            )
        self.port = free_port()
        argv = [
            str(MCP_PROXY_NPM),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--",
            *self.ctx.docker_run_argv(self.slug),
        ]
        self.proc = self._spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        await self._wait_listening()


class McpProxyPypi(HttpTarget):
    name = "mcp-proxy (PyPI)"
    slug = "mcp-proxy-pypi"
    note = (
        "mcp-proxy from PyPI (Python, a different program of the same name) "
        "`--port P -- docker run -i --rm IMAGE`: Streamable HTTP, one child for all sessions"
    )

    async def start(self) -> None:
        if not MCP_PROXY_PYPI.exists():
            raise RuntimeError(f"{MCP_PROXY_PYPI} is missing: run scripts/ensure-bench-tools.sh")
        self.port = free_port()
        argv = [
            str(MCP_PROXY_PYPI),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "WARNING",
            "--",
            *self.ctx.docker_run_argv(self.slug),
        ]
        self.proc = self._spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        await self._wait_listening()


class Supergateway(HttpTarget):
    name = "supergateway"
    slug = "supergateway"
    note = (
        "supergateway (npm) `--stdio 'docker run -i --rm IMAGE' --outputTransport streamableHttp "
        "--stateful`: one child, so one container, per session (its default stateless mode starts "
        "one per request)"
    )
    # Read in its source (lib/modernHttp.js) and seen in the probe's time: each 2026-07-28
    # request gets a child of its own unless it continues an earlier one.
    modern_unloaded = (
        "answers 2026-07-28 with a new child, so a new `docker run` container, per request: "
        "loading it measures container start-up (its 2026-07-28 row in benchmark 2 does, time-boxed)"
    )

    async def start(self) -> None:
        if not SUPERGATEWAY.exists():
            raise RuntimeError(f"{SUPERGATEWAY} is missing: run scripts/ensure-bench-tools.sh")
        self.port = free_port()
        argv = [
            str(SUPERGATEWAY),
            "--stdio",
            shlex.join(self.ctx.docker_run_argv(self.slug)),
            "--outputTransport",
            "streamableHttp",
            "--stateful",
            "--port",
            str(self.port),
            "--logLevel",
            "none",
        ]
        self.proc = self._spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        await self._wait_listening()


TARGETS = {t.slug: t for t in (DirectStdio, ProjectBridge, McpProxyNpm, McpProxyPypi, Supergateway)}  # by slug
