"""A client that calls a tool every `period` seconds through the official SDK (either
protocol era) on a thread of its own, keeping when each call started and ended and how
it went: what the "nothing dropped" tests count."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

from mcp.client.client import Client


@dataclass
class Call:
    started: float  # wall clock (time.time())
    ended: float
    ok: bool
    error: str = ""


@dataclass
class CallLoop:
    url: str
    tool: str
    arguments: dict
    mode: str = "legacy"  # the SDK client's mode: legacy | auto | 2026-07-28
    period: float = 0.05
    # Each call a session of its own (initialize, initialized, tools/call, DELETE), as
    # LiteLLM's MCP client makes them.
    fresh_sessions: bool = False
    calls: list[Call] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: Optional[threading.Thread] = None
    problem: str = ""  # why the loop gave up
    reconnects: int = 0

    def start(self) -> "CallLoop":
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="call-loop", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[Call]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        return list(self.calls)

    def successes_after(self, moment: float) -> int:
        return sum(1 for c in list(self.calls) if c.ok and c.started >= moment)

    async def _run(self) -> None:
        if self.fresh_sessions:
            return await self._run_sessions()
        # A client whose transport fails (the SDK ends the whole client when a request's
        # connection breaks) is made again, as a real one would reconnect; the call it
        # was making counts as failed.
        while not self._stop.is_set():
            current: Optional[float] = None
            try:
                async with Client(self.url, mode=self.mode) as client:
                    while not self._stop.is_set():
                        current = time.time()
                        try:
                            result = await asyncio.wait_for(client.call_tool(self.tool, self.arguments), 30)
                            ok, error = not result.is_error, ""
                        except Exception as exc:  # every failure counts, whatever its kind
                            ok, error = False, _describe(exc)
                        self.calls.append(Call(current, time.time(), ok, error))
                        current = None
                        await asyncio.sleep(max(0.0, self.period - (time.time() - self.calls[-1].started)))
            except Exception as exc:
                if current is not None:
                    self.calls.append(Call(current, time.time(), False, "the client failed: " + _describe(exc)))
                self.reconnects += 1
                if self.reconnects > 3 or current is None and not self.calls:
                    self.problem = _describe(exc)
                    return

    async def _run_sessions(self) -> None:
        while not self._stop.is_set():
            started = time.time()
            try:
                async with Client(self.url, mode=self.mode) as client:
                    result = await asyncio.wait_for(client.call_tool(self.tool, self.arguments), 30)
                    ok, error = not result.is_error, ""
            except Exception as exc:
                ok, error = False, _describe(exc)
            self.calls.append(Call(started, time.time(), ok, error))
            await asyncio.sleep(max(0.0, self.period - (time.time() - started)))


def _describe(exc: BaseException) -> str:
    inner = getattr(exc, "exceptions", None)
    cause = f" ({'; '.join(_describe(e) for e in inner)})" if inner else ""
    return f"{type(exc).__name__}: {exc}{cause}"[:500]


def in_flight(calls: list[Call], start: float, end: float) -> int:
    """Calls outstanding at some moment of [start, end]."""
    return sum(1 for c in calls if c.started <= end and c.ended >= start)


def failures_since(calls: list[Call], moment: float) -> list[Call]:
    return [c for c in calls if not c.ok and c.ended >= moment]
