"""waitress serving the app on a thread of its own, with bounded connections and a clean stop.

waitress' own `serve()` wants the main thread, which belongs to the service loop here
(signals, sd_notify, the state mirror). So the server is created (which binds the
port, so a busy port fails at start-up) and its event loop runs on a thread; stopping
closes every socket from inside that loop, then waits for the worker threads.

waitress bounds idle connections (`channel_timeout`) and the total it accepts
(`connection_limit`, where it simply stops accepting). It has no deadline for a request
to arrive, so a client that sends its headers one byte at a time holds its connection
for ever, and no cap per client address. `_Server` and `_Channel` add both: a connection
must deliver each request complete within `[dashboard] header_timeout_seconds` (408, then
closed), and a connection over `max_connections` or `max_connections_per_address` gets
a 503 or 429 the moment it is accepted.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Iterable, Optional

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher
from waitress.trigger import trigger

from common.connection_limits import REQUEST_TIMEOUT, ConnectionCount, Refusal, RefusalLog, fit_open_files
from common.settings import DashboardSettings

log = logging.getLogger("dashboard")
wsgi_log = logging.getLogger("dashboard.wsgi")

# Forms and JSON bodies here are tiny; anything bigger is refused by waitress.
MAX_REQUEST_BODY_BYTES = 64 * 1024
# Map entries besides the connections: the listening sockets and the loop's waker.
MAP_OVERHEAD = 16


class _Channel(HTTPChannel):
    """waitress's connection, counted per address, with a deadline for each request."""

    server: "_Server"
    _counted = False
    request_due: Optional[float] = None  # when the request now arriving must be complete

    def __init__(self, server: "_Server", sock: Any, addr: Any, adj: Adjustments, map: Optional[dict] = None) -> None:
        super().__init__(server, sock, addr, adj, map)
        self.peer = _peer(addr)
        server.count.opened(self.peer)
        self._counted = True
        # The first request is due this long after the connection opens.
        self.request_due = self.creation_time + server.header_timeout

    def received(self, data: bytes) -> bool:
        before = self.request
        handled = super().received(data)
        after = self.request  # the request still arriving, if any
        if after is None:
            self.request_due = None  # nothing half-received: the idle timeout applies
        elif self.request_due is None or (before is not None and after is not before):
            self.request_due = time.time() + self.server.header_timeout
        return handled

    def del_channel(self, map: Optional[dict] = None) -> None:
        super().del_channel(map)
        if self._counted:
            self._counted = False
            self.server.count.closed(self.peer)


class _Server(TcpWSGIServer):
    channel_class = _Channel

    def __init__(
        self, app: Any, map: dict, *, count: ConnectionCount, header_timeout: float, refusals: RefusalLog, **kw: Any
    ) -> None:
        self.count = count
        self.header_timeout = header_timeout
        self.refusals = refusals
        super().__init__(app, map, **kw)

    def handle_accept(self) -> None:
        # waitress's own, with the limits checked before a channel is made.
        try:
            accepted = self.accept()
            if accepted is None:
                return
            conn, addr = accepted
        except OSError:
            return  # the peer went away before we got to it
        peer = _peer(addr)
        refusal = self.count.refusal(peer)
        if refusal is not None:
            _answer_and_close(conn, refusal)
            self._note(refusal, peer)
            return
        try:
            self.set_socket_options(conn)
        except OSError:
            conn.close()
            return
        self.channel_class(self, conn, self.fix_addr(addr), self.adj, map=self._map)

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # idle connections (channel_timeout)
        for channel in list(self.active_channels.values()):
            due = channel.request_due
            if due is not None and now > due and not channel.requests and not channel.will_close:
                try:
                    channel.send(REQUEST_TIMEOUT.response(), do_close=False)
                except OSError:
                    pass
                channel.will_close = True
                self.refusals.note(REQUEST_TIMEOUT, channel.peer)
        self._log_refusals()

    def _note(self, refusal: Refusal, peer: str) -> None:
        self.refusals.note(refusal, peer)
        self._log_refusals()

    def _log_refusals(self) -> None:
        line = self.refusals.summary()
        if line:
            log.warning("%s", line)


def _peer(addr: Any) -> str:
    return str(addr[0]) if isinstance(addr, tuple) else str(addr)


def _answer_and_close(conn: Any, refusal: Refusal) -> None:
    # Best effort: a fresh socket's send buffer takes the short answer at once.
    try:
        conn.setblocking(False)
        conn.send(refusal.response())
    except OSError:
        pass
    finally:
        conn.close()


class _ErrorsToLog:
    """`wsgi.errors` for the app: what a library writes there goes through logging (and
    so through the redacting formatter), never straight to stderr."""

    def write(self, text: str) -> int:
        if text.strip():
            wsgi_log.error("%s", text.rstrip())
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass


def _errors_to_log(app: Callable) -> Callable:
    errors = _ErrorsToLog()

    def wrapped(environ: dict, start_response: Callable) -> Any:
        environ["wsgi.errors"] = errors
        return app(environ, start_response)

    return wrapped


class HttpServer:
    def __init__(self, app: Any, settings: DashboardSettings) -> None:
        max_connections = fit_open_files(settings.max_connections, "[dashboard] max_connections", log)
        self.count = ConnectionCount(max_connections, settings.max_connections_per_address)
        # Proxy headers are passed through untouched: the app believes X-Forwarded-For
        # only from [service] trusted_proxies, and X-Forwarded-Proto only to add the
        # Secure flag to cookies behind an HTTPS load balancer.
        adj = Adjustments(
            host=settings.host,
            port=settings.port,
            threads=settings.threads,
            ident="mcp-orchestrator",
            max_request_body_size=MAX_REQUEST_BODY_BYTES,
            clear_untrusted_proxy_headers=False,
            channel_timeout=max(1, round(settings.idle_timeout_seconds)),
            cleanup_interval=1,  # how often deadlines are checked
            # A backstop only: the count above answers 503 first.
            connection_limit=max_connections + MAP_OVERHEAD,
            asyncore_use_poll=True,
        )  # select() stops at descriptor 1024
        self._map: dict = {}
        self._dispatcher = ThreadedTaskDispatcher()
        self._dispatcher.set_thread_count(adj.threads)
        self._adj = adj
        refusals = RefusalLog()
        self._servers: list[_Server] = []
        try:
            for sockinfo in adj.listen:
                self._servers.append(
                    _Server(
                        _errors_to_log(app),
                        self._map,
                        count=self.count,
                        header_timeout=settings.header_timeout_seconds,
                        refusals=refusals,
                        dispatcher=self._dispatcher,
                        adj=adj,
                        sockinfo=sockinfo,
                    )
                )
        except OSError:
            wasyncore.close_all(self._map, ignore_all=True)
            raise
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)
        self._stopped = False

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        return int(self._servers[0].effective_port)

    def start(self) -> None:
        self._thread.start()

    def attach(self, service: Any) -> None:
        self.start()
        service.on_close(self.stop)

    def _run(self) -> None:
        try:
            wasyncore.loop(timeout=self._adj.asyncore_loop_timeout, map=self._map, use_poll=self._adj.asyncore_use_poll)
        except Exception:  # pragma: no cover - logged, the service loop decides the rest
            log.exception("the HTTP server stopped unexpectedly")

    def stop(self, timeout: float = 5.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        waker = next((d for d in list(self._map.values()) if isinstance(d, trigger)), None)
        if waker is not None and self._thread.is_alive():
            # Closing the sockets from inside the loop: its socket map is not thread-safe.
            waker.pull_trigger(lambda: wasyncore.close_all(self._map, ignore_all=True))
            self._thread.join(timeout)
        else:
            wasyncore.close_all(self._map, ignore_all=True)
        self._dispatcher.shutdown(timeout=timeout)
        log.info("HTTP server stopped")
