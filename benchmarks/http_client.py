"""A lean HTTP/1.1 keep-alive client on an asyncio protocol.

The load generator must cost as little as possible, so that the time measured is
the bridge's: requests are pre-encoded bytes, responses are parsed incrementally
from one buffer (Content-Length, chunked, or until close), one request at a time on
a connection. No redirects, no cookies, no compression.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Optional


class HttpError(Exception):
    """The connection failed or the server sent something that is not HTTP/1.x."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; the last value of a repeated header
    body: bytes


_HEADERS, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _TRAILER, _UNTIL_CLOSE = range(6)


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: Optional[asyncio.Transport] = None
        self.buf = bytearray()
        self.waiter: Optional[asyncio.Future] = None
        self.closed = False
        self._reset()

    def _reset(self) -> None:
        self.state = _HEADERS
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = bytearray()
        self.left = 0

    # --- asyncio callbacks ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is not None:
            try:
                self._parse()
            except HttpError as exc:
                self._fail(exc)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            if self.state == _UNTIL_CLOSE:
                self.body += self.buf
                self.buf.clear()
                self._done()
            else:
                self._fail(HttpError(f"connection closed: {exc or 'by the server'}"))

    # --- parsing -----------------------------------------------------------------------

    def _parse(self) -> None:
        buf = self.buf
        while True:
            if self.state == _HEADERS:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(buf[:end]).decode("latin-1").split("\r\n")
                del buf[: end + 4]
                parts = head[0].split(" ", 2)
                if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
                    raise HttpError(f"not an HTTP/1.x status line: {head[0][:80]!r}")
                self.status = int(parts[1])
                headers = self.headers
                for line in head[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                if self.status in (204, 304) or 100 <= self.status < 200:
                    if 100 <= self.status < 200:  # an interim response: the real one follows
                        self._reset()
                        continue
                    self._done()
                    return
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    self.state = _CHUNK_SIZE
                elif "content-length" in headers:
                    self.left = int(headers["content-length"])
                    self.state = _LENGTH
                else:
                    self.state = _UNTIL_CLOSE
            elif self.state == _LENGTH:
                take = min(self.left, len(buf))
                self.body += buf[:take]
                del buf[:take]
                self.left -= take
                if self.left:
                    return
                self._done()
                return
            elif self.state == _CHUNK_SIZE:
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                size = int(bytes(buf[:end]).split(b";", 1)[0], 16)
                del buf[: end + 2]
                if size == 0:
                    self.state = _TRAILER
                else:
                    self.left = size + 2  # the data and its CRLF
                    self.state = _CHUNK_DATA
            elif self.state == _CHUNK_DATA:
                take = min(self.left, len(buf))
                self.body += buf[:take]
                del buf[:take]
                self.left -= take
                if self.left:
                    return
                del self.body[-2:]
                self.state = _CHUNK_SIZE
            elif self.state == _TRAILER:
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                line_empty = end == 0
                del buf[: end + 2]
                if line_empty:
                    self._done()
                    return
            else:  # _UNTIL_CLOSE
                self.body += buf
                buf.clear()
                return

    def _done(self) -> None:
        waiter, self.waiter = self.waiter, None
        response = Response(self.status, self.headers, bytes(self.body))
        self._reset()
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.close()


class HttpConnection:
    """One keep-alive connection to host:port; reconnects when the server closed it."""

    def __init__(self, host: str, port: int, timeout: float = 60.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._host_header = f"{host}:{port}".encode()
        self._proto: Optional[_Protocol] = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(_Protocol, self.host, self.port)
        return proto

    def encode(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
        """The request's bytes, to be sent with `send` (encode once, send many times)."""
        lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: " + self._host_header]
        for name, value in headers.items():
            lines.append(f"{name}: {value}".encode())
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(b"Content-Length: " + str(len(body)).encode())
        return b"\r\n".join(lines) + b"\r\n\r\n" + body

    async def send(self, raw: bytes) -> Response:
        proto = self._proto
        if proto is None or proto.closed:
            proto = self._proto = await self._connect()
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        proto.waiter = waiter
        assert proto.transport is not None
        proto.transport.write(raw)
        # A timer rather than asyncio.wait_for: no extra task per request.
        timer = loop.call_later(self.timeout, self._expire, waiter)
        try:
            response = await waiter
        finally:
            timer.cancel()
        if response.headers.get("connection", "").lower() == "close":
            self.close()
        return response

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> Response:
        return await self.send(self.encode(method, path, headers, body))

    def _expire(self, waiter: asyncio.Future) -> None:
        if not waiter.done():
            waiter.set_exception(HttpError(f"no response from {self.host}:{self.port} within {self.timeout:g} s"))
            self.close()

    def close(self) -> None:
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
        self._proto = None
