"""A container's stdin/stdout/stderr through the Docker API, driven by asyncio.

The attach connection is an HTTP request upgraded to a raw stream. Without a TTY,
Docker multiplexes stdout and stderr on it in frames with an 8-byte header
(stream type, three zero bytes, big-endian payload size); stdin is written raw.
The Docker SDK opens the connection (`attach_socket`); from then on the socket is
driven by an asyncio protocol, so reading costs no thread and no polling.

The container must have been created with stdin open (`-i`) and without
`StdinOnce`, so that closing this connection does not close the container's stdin
and a later process can attach again.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from dataclasses import dataclass
from typing import Any, Callable, Optional

log = logging.getLogger(__name__)

STDIN, STDOUT, STDERR = 0, 1, 2
_HEADER = struct.Struct(">BxxxL")
HEADER_SIZE = _HEADER.size

# Above this many bytes of unsent stdin the writer waits (the container reads slowly).
_STDIN_HIGH_WATER = 1024 * 1024

LineCallback = Callable[[bytes], None]
ClosedCallback = Callable[[str], None]


class AttachError(Exception):
    """The Docker engine refused or failed the attach (message names the container)."""


class FrameDecoder:
    """Splits the multiplexed attach stream into (stream, payload) pieces.

    A frame may arrive in several reads and a read may hold several frames; a
    partial frame is kept until the rest arrives. A large frame is handed out in
    pieces as it arrives rather than buffered whole: callers split lines anyway.
    """

    __slots__ = ("_buf", "_stream", "_left")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._stream = 0
        self._left = 0  # payload bytes of the current frame still to come

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        if self._buf:
            self._buf += data
            data = bytes(self._buf)
            self._buf.clear()
        pos, end = 0, len(data)
        while pos < end:
            if self._left:
                take = min(self._left, end - pos)
                out.append((self._stream, data[pos : pos + take]))
                self._left -= take
                pos += take
                continue
            if end - pos < HEADER_SIZE:
                self._buf += data[pos:]
                break
            self._stream, self._left = _HEADER.unpack_from(data, pos)
            pos += HEADER_SIZE
        return out


class LineSplitter:
    """Newline-delimited messages from a byte stream.

    Lines are returned without their newline (and without a trailing CR). A line
    longer than `max_line` is dropped whole, up to its newline, and counted in
    `dropped`: one runaway write must not exhaust memory.
    """

    __slots__ = ("_buf", "_max", "_discarding", "dropped")

    def __init__(self, max_line: int) -> None:
        self._buf = bytearray()
        self._max = max_line
        self._discarding = False
        self.dropped = 0

    def feed(self, data: bytes) -> list[bytes]:
        if b"\n" not in data:
            self._append(data)
            return []
        parts = data.split(b"\n")
        tail = parts.pop()
        lines: list[bytes] = []
        first = parts[0]
        if self._discarding:
            self._discarding = False
            self._buf.clear()
            parts = parts[1:]
        elif self._buf:
            if len(self._buf) + len(first) > self._max:
                self.dropped += 1
                parts = parts[1:]
            else:
                parts[0] = bytes(self._buf) + first
            self._buf.clear()
        for line in parts:
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > self._max:
                self.dropped += 1
                continue
            if line:
                lines.append(line)
        self._append(tail)
        return lines

    def flush(self) -> Optional[bytes]:
        """The unterminated last line at end of stream, if any."""
        if self._discarding or not self._buf:
            self._buf.clear()
            return None
        line = bytes(self._buf).rstrip(b"\r")
        self._buf.clear()
        return line or None

    def _append(self, data: bytes) -> None:
        if self._discarding or not data:
            return
        if len(self._buf) + len(data) > self._max:
            self._buf.clear()
            self._discarding = True
            self.dropped += 1
            return
        self._buf += data


class _AttachProtocol(asyncio.Protocol):
    def __init__(
        self,
        on_stdout_line: LineCallback,
        on_stderr_line: LineCallback,
        on_closed: ClosedCallback,
        max_line: int,
        max_stderr_line: int,
    ) -> None:
        self._on_stdout = on_stdout_line
        self._on_stderr = on_stderr_line
        self._on_closed = on_closed
        self._frames = FrameDecoder()
        self._stdout = LineSplitter(max_line)
        self._stderr = LineSplitter(max_stderr_line)
        self.transport: Optional[asyncio.Transport] = None
        self.closed = asyncio.get_running_loop().create_future()
        self._drain: Optional[asyncio.Future] = None
        self._close_reason = "the container's output ended"

    # --- asyncio.Protocol -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.set_write_buffer_limits(high=_STDIN_HIGH_WATER)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        for stream, payload in self._frames.feed(data):
            if stream == STDOUT:
                dropped = self._stdout.dropped
                for line in self._stdout.feed(payload):
                    self._deliver(self._on_stdout, line)
                if self._stdout.dropped != dropped:
                    log.warning("dropped a stdout line longer than the message limit")
            elif stream == STDERR:
                for line in self._stderr.feed(payload):
                    self._deliver(self._on_stderr, line)

    def eof_received(self) -> bool:
        return False  # close the transport: the container's streams ended

    def connection_lost(self, exc: Optional[Exception]) -> None:
        last = self._stdout.flush()
        if last is not None:
            self._deliver(self._on_stdout, last)
        last = self._stderr.flush()
        if last is not None:
            self._deliver(self._on_stderr, last)
        if exc is not None:
            self._close_reason = f"the attach connection failed: {exc}"
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        if not self.closed.done():
            self.closed.set_result(self._close_reason)
        try:
            self._on_closed(self._close_reason)
        except Exception:  # a callback bug must not hide the close
            log.exception("stdio close callback failed")

    def pause_writing(self) -> None:
        if self._drain is None or self._drain.done():
            self._drain = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # ---------------------------------------------------------------------------

    @staticmethod
    def _deliver(callback: LineCallback, line: bytes) -> None:
        try:
            callback(line)
        except Exception:  # one bad message must not stop the stream
            log.exception("stdio line handler failed")


@dataclass(eq=False)
class AttachedStdio:
    """An open attach connection: write to stdin, lines arrive through the callbacks."""

    container_id: str
    _protocol: _AttachProtocol
    _keep: tuple  # the SDK's socket objects, closed with ours

    @property
    def is_open(self) -> bool:
        transport = self._protocol.transport
        return transport is not None and not transport.is_closing()

    def write(self, data: bytes) -> bool:
        """Queue bytes for the container's stdin; False when the connection is gone."""
        transport = self._protocol.transport
        if transport is None or transport.is_closing():
            return False
        transport.write(data)
        return True

    def queued_bytes(self) -> int:
        """Bytes written for the container's stdin that it has not taken yet."""
        transport = self._protocol.transport
        return transport.get_write_buffer_size() if transport is not None and not transport.is_closing() else 0

    async def drain(self) -> None:
        """Wait while stdin is backed up (the container is not reading)."""
        waiter = self._protocol._drain
        if waiter is not None and not waiter.done():
            await asyncio.shield(waiter)

    def close(self, reason: str = "detached") -> None:
        """Close our end; the container keeps running with its stdin open."""
        self._protocol._close_reason = reason
        transport = self._protocol.transport
        if transport is not None:
            transport.close()
        for obj in self._keep:
            try:
                obj.close()
            except Exception:
                pass
        self._keep = ()

    async def wait_closed(self) -> str:
        """The reason the connection ended."""
        return await asyncio.shield(self._protocol.closed)


def _attach_blocking(api: Any, container_id: str) -> tuple[socket.socket, bytes, tuple]:
    """Open the attach connection with the SDK; runs in a worker thread."""
    import docker.errors

    params = {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
    try:
        sockio = api.attach_socket(container_id, params=params)
    except docker.errors.NotFound:
        raise AttachError(f"container {container_id[:12]} does not exist") from None
    except docker.errors.APIError as exc:
        raise AttachError(f"cannot attach to container {container_id[:12]}: {exc.explanation or exc}") from None
    except Exception as exc:  # connection refused, timeouts: the engine is unreachable
        raise AttachError(f"cannot attach to container {container_id[:12]}: {exc}") from None
    raw = getattr(sockio, "_sock", sockio)
    if not isinstance(raw, socket.socket) or type(raw) is not socket.socket:
        sockio.close()
        raise AttachError("attaching needs a plain socket to the Docker engine (unix:// or tcp://, not TLS or ssh)")
    # Bytes that arrived with the upgrade response sit in the HTTP reader's buffer:
    # take them now (without blocking) or the start of the stream would be lost.
    early = b""
    response = getattr(sockio, "_response", None)
    try:
        reader = response.raw._fp.fp
        raw.setblocking(False)
        early = reader.peek() or b""
        if early:
            reader.read(len(early))
    except (AttributeError, BlockingIOError, OSError, ValueError):
        early = b""
    own = raw.dup()  # ours alone: nothing in the SDK can close it under us
    keep = tuple(obj for obj in (response, sockio, raw) if obj is not None)
    return own, early, keep


async def attach(
    api: Any,
    container_id: str,
    *,
    on_stdout_line: LineCallback,
    on_stderr_line: LineCallback,
    on_closed: ClosedCallback,
    max_line_bytes: int = 32 * 1024 * 1024,
    max_stderr_line_bytes: int = 256 * 1024,
) -> AttachedStdio:
    """Attach to a running container's stdio; raises AttachError.

    `api` is a docker.APIClient (or a DockerClient, whose `.api` is used). The
    callbacks run on the event loop: stdout lines, stderr lines (each without its
    newline) and, once, the reason the connection closed.
    """
    api = getattr(api, "api", api)
    sock, early, keep = await asyncio.to_thread(_attach_blocking, api, container_id)
    loop = asyncio.get_running_loop()
    protocol = _AttachProtocol(on_stdout_line, on_stderr_line, on_closed, max_line_bytes, max_stderr_line_bytes)
    try:
        await loop.create_connection(lambda: protocol, sock=sock)
    except Exception as exc:
        sock.close()
        for obj in keep:
            try:
                obj.close()
            except Exception:
                pass
        raise AttachError(f"cannot drive the attach connection of {container_id[:12]}: {exc}") from None
    if early:
        protocol.data_received(early)
    return AttachedStdio(container_id, protocol, keep)
