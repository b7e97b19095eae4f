"""A small base for the orchestrator's processes: one ZeroMQ poll loop.

A Service owns a ZeroMQ context, polls the sockets registered with `add_reader` with
a timeout, runs timers (`every`, `after`) and the callbacks other threads hand it with
`call_soon` between polls, and stops on a flag. SIGTERM
and SIGINT only set that flag (and wake the poll through a wakeup socket pair), so a
signal becomes an ordinary quit of the loop, after which every socket is closed with
LINGER=0. The loop never blocks without a timeout, and an exception in one reader or
timer is logged and does not stop the loop.

Under systemd (`Type=notify`) the service sends READY=1 when the loop starts (its
sockets are bound by then), WATCHDOG=1 at half of WatchdogSec, and STOPPING=1.

The endpoint helpers here are shared by every socket we bind or connect: an
`ipc://` endpoint gets its directory created with mode 0700 and its socket file set
to 0600, so only the service user can connect.
"""

from __future__ import annotations

import collections
import errno
import logging
import os
import signal
import socket
import stat
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import zmq

from common import curve
from common.secrets import shown

log = logging.getLogger(__name__)

# The longest wait of one poll; timers and the stop flag are checked at least this often.
MAX_POLL_MS = 1000
# Longest path of a Unix socket (sun_path is 108 bytes with the terminating NUL).
_MAX_IPC_PATH = 107


# --------------------------------------------------------------------- endpoints


def ipc_path(endpoint: str) -> Optional[str]:
    """The file path of an `ipc://` endpoint, None for other transports."""
    if not endpoint.startswith("ipc://"):
        return None
    path = endpoint[len("ipc://") :]
    if not path or path.startswith("@"):  # "@name": Linux abstract namespace, no file
        return None
    return path


def prepare_ipc_dir(endpoint: str) -> None:
    """Create the directory of an ipc:// endpoint, owner-only (0700), if it is missing.

    An existing directory is not changed (it may be shared, such as /tmp); a warning
    says when others can enter it. The socket file itself is set to 0600 on bind.
    """
    path = ipc_path(endpoint)
    if path is None:
        return
    if len(path.encode()) > _MAX_IPC_PATH:
        raise ValueError(
            f"ipc endpoint path is {len(path.encode())} bytes, over the limit of "
            f"{_MAX_IPC_PATH} for Unix sockets: {path}"
        )
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)  # makedirs' mode is reduced by the umask
        return
    mode = stat.S_IMODE(os.stat(directory).st_mode)
    if mode & 0o077 and not mode & stat.S_ISVTX:
        log.warning("ipc directory %s is accessible by other users (mode %04o); 0700 is recommended", directory, mode)


def bind_endpoint(sock: zmq.Socket, endpoint: str) -> str:
    """Bind `sock` to `endpoint` (ipc directory prepared) and return the bound endpoint.

    `tcp://127.0.0.1:*` binds a free port; the returned endpoint names it.
    """
    prepare_ipc_dir(endpoint)
    sock.bind(endpoint)
    bound = sock.getsockopt_string(zmq.LAST_ENDPOINT) or endpoint
    path = ipc_path(bound)
    if path is not None and os.path.exists(path):
        os.chmod(path, 0o600)
    return bound


def socket_file_id(endpoint: str) -> Optional[tuple[int, int]]:
    """(device, inode) of the socket file of a bound ipc:// endpoint, else None."""
    path = ipc_path(endpoint)
    try:
        st = os.stat(path) if path else None
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if st and stat.S_ISSOCK(st.st_mode) else None


def remove_socket_file(endpoint: str, file_id: Optional[tuple[int, int]]) -> None:
    """Remove the socket file left by a closed ipc:// socket (ZeroMQ leaves it behind),
    unless another process has bound the path since (its file has a new inode)."""
    path = ipc_path(endpoint)
    if path is None or file_id is None or socket_file_id(endpoint) != file_id:
        return
    try:
        os.unlink(path)
    except OSError:
        pass


def new_socket(
    ctx: zmq.Context,
    kind: int,
    *,
    bind: Optional[str] = None,
    connect: Optional[str] = None,
    options: Optional[dict[int, Any]] = None,
) -> tuple[zmq.Socket, str]:
    """A socket that never blocks on close (LINGER=0), bound or connected to an endpoint.

    Returns the socket and its endpoint (the bound one for `bind`). If binding or
    connecting fails the socket is closed before the error is raised: a leaked socket
    would make terminating its context hang.
    """
    # CURVE for a tcp:// endpoint of an armed context (common/curve.py); a plain link to
    # another host is refused here, before any socket exists.
    secured = curve.socket_options(ctx, bind or connect or "", server=bind is not None)
    sock = ctx.socket(kind)
    try:
        sock.setsockopt(zmq.LINGER, 0)
        for option, value in {**secured, **(options or {})}.items():
            sock.setsockopt(option, value)
        if bind is not None:
            return sock, bind_endpoint(sock, bind)
        if connect is not None:
            sock.connect(connect)
        return sock, connect or ""
    except BaseException:
        sock.close(linger=0)
        raise


def close_socket(sock: Optional[zmq.Socket]) -> None:
    if sock is not None and not sock.closed:
        sock.close(linger=0)


# ----------------------------------------------------------------------- logging


def log_failure(logger: logging.Logger, what: str, exc: BaseException) -> None:
    """One log line for an unexpected exception: its class, its text with known secret
    values masked, and where it was raised (file:line function, innermost last)."""
    frames = traceback.extract_tb(exc.__traceback__)[-4:]
    where = " <- ".join(f"{os.path.basename(f.filename)}:{f.lineno} {f.name}" for f in reversed(frames))
    text = shown(str(exc), 300)
    logger.error("%s: %s: %s [at %s]", what, type(exc).__name__, text, where or "?")


# ------------------------------------------------------------------------ systemd


def sd_notify(state: str, fds: Sequence[int] = ()) -> bool:
    """Send `state` (e.g. "READY=1") to systemd if $NOTIFY_SOCKET is set, with `fds`
    attached (FDSTORE=1); True if sent."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.settimeout(1.0)
            s.connect(address)
            if fds:
                socket.send_fds(s, [state.encode()], list(fds))
            else:
                s.sendall(state.encode())
        return True
    except OSError as exc:
        log.warning("sd_notify %s failed: %s", state.split("=", 1)[0], exc)
        return False


def watchdog_interval() -> Optional[float]:
    """Seconds between WATCHDOG=1 pings (half of WatchdogSec), None when not asked for."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(int(usec) / 2e6, 0.01)
    except ValueError:
        return None


# -------------------------------------------------------------------------- loop


@dataclass
class Timer:
    fn: Callable[[], Any]
    due: float
    interval: Optional[float]  # None: runs once
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class Service:
    """One process's poll loop. Build sockets, attach components, then `run()`.

    svc = Service("container-agent")
    rep = svc.attach(RepServer(svc.ctx, endpoint, handlers, src=svc.name))
    pub = svc.attach(Publisher(svc.ctx, events_endpoint, src=svc.name))
    svc.every(30, refresh)
    sys.exit(svc.run())
    """

    def __init__(
        self,
        name: str,
        *,
        ctx: Optional[zmq.Context] = None,
        max_poll_ms: int = MAX_POLL_MS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._own_ctx = ctx is None
        self.ctx = zmq.Context() if ctx is None else ctx
        self._max_poll_ms = max_poll_ms
        self._clock = clock
        self._readers: dict[Any, Callable[[], Any]] = {}
        self._timers: list[Timer] = []
        self._closers: list[Callable[[], Any]] = []
        self._stop_reason: Optional[str] = None
        self._closed = False
        # Callbacks from other threads (deque appends and pops are thread-safe).
        self._soon: collections.deque[Callable[[], Any]] = collections.deque()
        # Written to by signal handlers (set_wakeup_fd), stop() and call_soon() to cut a poll short.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    # -- registration
    def attach(self, component: Any) -> Any:
        """Let `component` register its sockets and timers (it has `attach(service)`)."""
        component.attach(self)
        return component

    def add_reader(self, sock: Any, fn: Callable[[], Any]) -> None:
        """Call `fn()` whenever `sock` (a ZeroMQ socket or a file descriptor) is readable."""
        self._readers[sock] = fn

    def every(self, seconds: float, fn: Callable[[], Any], *, immediately: bool = False) -> Timer:
        """Run `fn()` every `seconds` (first run now if `immediately`)."""
        if seconds <= 0:
            raise ValueError("a timer interval must be positive")
        timer = Timer(fn, self._clock() + (0 if immediately else seconds), seconds)
        self._timers.append(timer)
        return timer

    def after(self, seconds: float, fn: Callable[[], Any]) -> Timer:
        """Run `fn()` once, `seconds` from now."""
        timer = Timer(fn, self._clock() + max(seconds, 0.0), None)
        self._timers.append(timer)
        return timer

    def call_soon(self, fn: Callable[[], Any]) -> None:
        """Run `fn()` on the loop's thread as soon as it can; safe from any thread.

        The one way a worker thread hands the loop something to do (publish an event,
        send a deferred reply): ZeroMQ sockets belong to the loop's thread."""
        self._soon.append(fn)
        self._wake()

    def on_close(self, fn: Callable[[], Any]) -> None:
        """Call `fn()` when the service closes (in reverse order of registration)."""
        self._closers.append(fn)

    # -- stopping
    @property
    def stopping(self) -> bool:
        return self._stop_reason is not None

    def stop(self, reason: str = "stop requested") -> None:
        """Ask the loop to quit; safe from any thread and from signal handlers."""
        if self._stop_reason is None:
            self._stop_reason = reason
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:  # buffer full or closed: the loop wakes anyway within MAX_POLL_MS
            pass

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._stop_reason = self._stop_reason or signal.Signals(signum).name

    # -- running
    def run(self) -> int:
        """Run the loop until stopped, then close everything. Returns the exit status."""
        in_main = threading.current_thread() is threading.main_thread()
        previous: dict[int, Any] = {}
        old_wakeup = None
        if in_main:
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self._on_signal)
            old_wakeup = signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        interval = watchdog_interval()
        if interval:
            self.every(interval, lambda: sd_notify("WATCHDOG=1"))
        try:
            sd_notify(f"READY=1\nSTATUS={self.name} running\nMAINPID={os.getpid()}")
            log.info("%s running", self.name)
            while self._stop_reason is None:
                self.run_once()
            log.info("%s stopping (%s)", self.name, self._stop_reason)
            sd_notify("STOPPING=1")
        finally:
            if in_main:
                signal.set_wakeup_fd(old_wakeup if old_wakeup is not None else -1)
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
            self.close()
        return 0

    def run_once(self, max_wait_ms: Optional[int] = None) -> None:
        """One poll (bounded by the next timer and `max_wait_ms`), then readers and timers."""
        poller = zmq.Poller()
        poller.register(self._wake_r, zmq.POLLIN)
        for sock in self._readers:
            poller.register(sock, zmq.POLLIN)
        try:
            ready = dict(poller.poll(self._poll_timeout_ms(max_wait_ms)))
        except zmq.ZMQError as exc:
            if exc.errno != errno.EINTR:
                raise
            ready = {}
        if self._wake_r in ready or self._wake_r.fileno() in ready:
            self._drain_wakeups()
        self._run_soon()
        for sock, fn in list(self._readers.items()):
            if sock in ready and self._stop_reason is None:
                try:
                    fn()
                except Exception as exc:
                    log_failure(log, f"{self.name}: reader failed", exc)
        self._run_due_timers()

    def _poll_timeout_ms(self, max_wait_ms: Optional[int]) -> int:
        limit = self._max_poll_ms if max_wait_ms is None else min(max_wait_ms, self._max_poll_ms)
        if self._stop_reason is not None:
            return 0
        if self._soon:
            return 0
        live = [t.due for t in self._timers if not t.cancelled]
        if live:
            limit = min(limit, max(0, int((min(live) - self._clock()) * 1000) + 1))
        return max(limit, 0)

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _run_soon(self) -> None:
        # Only what was queued before this pass: a callback that queues another one
        # must not keep the loop from its sockets.
        for _ in range(len(self._soon)):
            fn = self._soon.popleft()
            try:
                fn()
            except Exception as exc:
                log_failure(log, f"{self.name}: callback failed", exc)

    def _run_due_timers(self) -> None:
        now = self._clock()
        for timer in list(self._timers):
            if timer.cancelled or timer.due > now or self._stop_reason is not None:
                continue
            if timer.interval is None:
                timer.cancelled = True
            else:
                # Fell behind (a slow handler)? Skip the missed runs instead of bursting.
                timer.due = max(timer.due + timer.interval, now)
            try:
                timer.fn()
            except Exception as exc:
                log_failure(log, f"{self.name}: timer failed", exc)
        self._timers = [t for t in self._timers if not t.cancelled]

    def close(self) -> None:
        """Close every component and socket (LINGER=0); idempotent."""
        if self._closed:
            return
        self._closed = True
        for fn in reversed(self._closers):
            try:
                fn()
            except Exception as exc:
                log_failure(log, f"{self.name}: close failed", exc)
        self._readers.clear()
        self._timers.clear()
        self._wake_r.close()
        self._wake_w.close()
        if self._own_ctx:
            curve.release(self.ctx)
            self.ctx.destroy(linger=0)
        log.info("%s closed", self.name)

    def __enter__(self) -> "Service":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
