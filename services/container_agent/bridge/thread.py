"""A Bridge on its own event loop in a background thread, with blocking calls.

For a caller whose own loop is not asyncio (a ZeroMQ poll loop, a test). Each
call waits for the bridge's answer with a timeout. Event callbacks run on the
bridge's thread: hand them over (a queue, an inproc socket), do not block.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any, Awaitable, Callable, Optional, TypeVar

from .bridge import Bridge, EventCallback, ServerHealth
from .config import BridgeConfig

T = TypeVar("T")


class BridgeThread:
    def __init__(
        self,
        docker_client: Any,
        config: Optional[BridgeConfig] = None,
        on_event: Optional[EventCallback] = None,
        name: str = "mcp-bridge",
    ) -> None:
        self._docker = docker_client
        self._config = config or BridgeConfig()
        self._on_event = on_event
        self._name = name
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self.bridge: Optional[Bridge] = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the bridge thread is not started")
        return self._loop

    def start(self, timeout: float = 10.0) -> None:
        ready = threading.Event()
        self._loop = new_loop()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.call_soon(ready.set)
            self._loop.run_forever()
            self._loop.close()

        self._thread = threading.Thread(target=run, name=self._name, daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("the bridge thread did not start")

        async def make() -> Bridge:
            bridge = Bridge(self._docker, self._config, self._on_event)
            await bridge.start()
            return bridge

        self.bridge = self.call(make, timeout=timeout)

    def stop(self, timeout: float = 15.0) -> None:
        if self._loop is None or self._thread is None:
            return
        if self.bridge is not None:
            try:
                self.call(self.bridge.close, timeout=timeout)
            finally:
                self.bridge = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._thread = None
        self._loop = None

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any, timeout: float = 30.0) -> T:
        """Run `await fn(*args)` on the bridge's loop and return its result."""
        future = asyncio.run_coroutine_threadsafe(fn(*args), self.loop)
        return future.result(timeout)

    def _sync(self, fn: Callable[..., T], *args: Any, timeout: float = 10.0) -> T:
        async def run() -> T:
            return fn(*args)

        return self.call(run, timeout=timeout)

    def _b(self) -> Bridge:
        if self.bridge is None:
            raise RuntimeError("the bridge is not running")
        return self.bridge

    # Blocking twins of the Bridge methods.

    def serve(
        self, server_id: str, host_port: int, container_id: str, adopted: bool = False, timeout: float = 30.0
    ) -> int:
        bridge = self._b()

        async def serve() -> int:
            return await bridge.serve(server_id, host_port, container_id, adopted=adopted)

        return self.call(serve, timeout=timeout)

    def serve_http(
        self,
        server_id: str,
        host_port: int,
        target_host: str,
        target_port: int,
        base_path: str = "",
        container_id: str = "",
    ) -> int:
        return self.call(self._b().serve_http, server_id, host_port, target_host, target_port, base_path, container_id)

    def hold_ports(self, ports: dict[str, int], reason: str, timeout: float = 30.0) -> None:
        self.call(self._b().hold_ports, ports, reason, timeout=timeout)

    def set_peers(self, nodes: dict[str, str]) -> None:
        self._sync(self._b().set_peers, nodes)

    def set_registered(self, server_ids: set[str]) -> None:
        self._sync(self._b().set_registered, server_ids)

    def drain(self, server_id: str, container_id: str, let_go: Callable[[], None]) -> None:
        self.call(self._b().drain, server_id, container_id, let_go, timeout=10.0)

    def unserve(self, server_id: str, timeout: float = 30.0) -> bool:
        return self.call(self._b().unserve, server_id, timeout=timeout)

    def mark_down(self, server_id: str, reason: str) -> bool:
        return self.call(self._b().mark_down, server_id, reason)

    def wait_ready(self, server_id: str, timeout: float) -> bool:
        return self.call(self._b().wait_ready, server_id, timeout, timeout=timeout + 5.0)

    def health(self, server_id: str) -> Optional[ServerHealth]:
        return self._sync(self._b().health, server_id)

    def stderr_tail(self, server_id: str, n: int = 50) -> list[str]:
        return self._sync(self._b().stderr_tail, server_id, n)

    def traffic(self, server_id: Optional[str], detail: bool, timeout: float = 15.0) -> list[dict]:
        return self.call(self._b().traffic, server_id, detail, timeout=timeout)

    def metrics(self) -> list:
        return self._sync(self._b().metrics)


def new_loop() -> asyncio.AbstractEventLoop:
    """The bridge's event loop: uvloop's (libuv, its transports in C: less CPU per
    request than asyncio's own) when installed, unless MCP_ORCHESTRATOR_EVENT_LOOP=asyncio."""
    if os.environ.get("MCP_ORCHESTRATOR_EVENT_LOOP", "uvloop") != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()
