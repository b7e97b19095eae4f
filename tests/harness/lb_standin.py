"""A small load balancer in front of several hosts, for the tests of a swarm: it sends
each request to one of the targets registered *now* (as the ALB would: what the target
group holds, re-read every `refresh` seconds), in turn, and streams the answer back. Like
the ALB it never retries a request on another target: a target that fails fails the
request.

    with LoadBalancer(lambda: [("10.231.0.11", 8123), ...]) as lb:
        url = lb.url + "/mcp/clock/mcp"
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from typing import Callable, Optional, Sequence

import aiohttp
from aiohttp import web

# Hop-by-hop headers a proxy does not pass on.
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-connection", "host", "content-length"}

Targets = Callable[[], Sequence[tuple[str, int]]]


class LoadBalancer:
    def __init__(self, targets: Targets, refresh: float = 0.2) -> None:
        self.targets_of = targets
        self.refresh = refresh
        self.url = ""
        self.sent: dict[str, int] = {}  # target "host:port" -> requests sent there
        self.statuses: dict[int, int] = {}  # HTTP status -> answers with it
        self.session_ids: list[str] = []  # Mcp-Session-Id of the answers, each once, in order
        self._targets: list[tuple[str, int]] = []
        self._turn = itertools.count()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._ready = threading.Event()
        self._stop: Optional[asyncio.Event] = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="lb", daemon=True)
        self.error: Optional[BaseException] = None

    def __enter__(self) -> "LoadBalancer":
        self._thread.start()
        if not self._ready.wait(30) or self.error is not None:
            raise RuntimeError(f"the load balancer did not start: {self.error}")
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120, connect=2))
            app = web.Application()

            async def forward(request: web.Request) -> web.StreamResponse:
                return await self._forward(session, request)

            app.router.add_route("*", "/{tail:.*}", forward)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            self.url = f"http://127.0.0.1:{port}"
            refresher = asyncio.create_task(self._refresh())
        except BaseException as exc:
            self.error = exc
            self._ready.set()
            raise
        self._ready.set()
        await self._stop.wait()
        refresher.cancel()
        await runner.cleanup()
        await session.close()

    async def _refresh(self) -> None:
        while True:
            try:
                self._targets = list(await asyncio.to_thread(self.targets_of))
            except Exception:
                pass  # the last known targets stay, as at an ALB whose API is slow
            await asyncio.sleep(self.refresh)

    async def _forward(self, session: aiohttp.ClientSession, request: web.Request) -> web.StreamResponse:
        targets = self._targets
        if not targets:
            return web.Response(status=503, text="no registered target")
        host, port = targets[next(self._turn) % len(targets)]
        key = f"{host}:{port}"
        self.sent[key] = self.sent.get(key, 0) + 1
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        headers["X-Forwarded-For"] = request.remote or ""
        body = await request.read()
        try:
            async with session.request(
                request.method, f"http://{host}:{port}{request.rel_url}", headers=headers, data=body
            ) as upstream:
                response = web.StreamResponse(status=upstream.status)
                self.statuses[upstream.status] = self.statuses.get(upstream.status, 0) + 1
                session_id = upstream.headers.get("Mcp-Session-Id")
                if session_id and session_id not in self.session_ids:
                    self.session_ids.append(session_id)
                for name, value in upstream.headers.items():
                    if name.lower() not in _HOP:
                        response.headers[name] = value
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            return web.Response(status=502, text=f"target {key} failed: {exc}")


def wait_targets(lb: LoadBalancer, want: set[tuple[str, int]], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while set(lb._targets) != want:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the load balancer's targets are {lb._targets}, not {sorted(want)}")
        time.sleep(0.05)
