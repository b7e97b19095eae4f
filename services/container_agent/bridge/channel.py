"""The queue between the server's output and one HTTP response.

Cheaper than asyncio.Queue for the common case (one item, one reader): a deque and
at most one waiting future. Items are ready-to-send JSON lines with a flag that
says whether the line ends a request (a response) or not (a notification, a
server-to-client request).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Callable, Optional


class Channel:
    __slots__ = ("_items", "_waiter", "_closed", "expected", "limit", "transform", "call")

    def __init__(
        self, expected: int = 0, limit: Optional[int] = None, transform: Optional[Callable[[bytes], bytes]] = None
    ) -> None:
        self._items: deque[tuple[bytes, bool]] = deque()
        self._waiter: Optional[asyncio.Future] = None
        self._closed = False
        # Responses still owed to this channel's HTTP request; it closes by itself
        # when the last one arrives. 0: a standing stream, closed explicitly.
        self.expected = expected
        # A reader that falls this far behind is cut off (it reconnects) rather
        # than letting the queue grow without end.
        self.limit = limit
        # Applied to a response (final) line before it is queued: the era's rewriting.
        self.transform = transform
        # The request's traffic.Call when the channel answers one request (None: a stream).
        self.call: Optional[Any] = None

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, data: bytes, final: bool = False) -> bool:
        """Queue a line; False when the channel is already closed."""
        if self._closed:
            return False
        if self.limit is not None and len(self._items) >= self.limit:
            self.close()
            return False
        if final and self.transform is not None:
            data = self.transform(data)
        self._items.append((data, final))
        if final and self.expected > 0:
            self.expected -= 1
            if self.expected == 0:
                self._closed = True
        self._wake()
        return True

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._wake()

    def pop(self) -> Optional[tuple[bytes, bool]]:
        return self._items.popleft() if self._items else None

    def drain(self) -> list[tuple[bytes, bool]]:
        items = list(self._items)
        self._items.clear()
        return items

    @property
    def exhausted(self) -> bool:
        """Closed and nothing left to read."""
        return self._closed and not self._items

    async def wait(self, timeout: Optional[float]) -> bool:
        """Wait until an item is ready or the channel closes; False on timeout."""
        if self._items or self._closed:
            return True
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        handle = loop.call_later(timeout, _expire, waiter) if timeout is not None else None
        try:
            return await waiter
        finally:
            if handle is not None:
                handle.cancel()
            if self._waiter is waiter:
                self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)


def _expire(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(False)
