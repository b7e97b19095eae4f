"""waitress serving the app on a thread of its own, with a clean stop.

waitress' own `serve()` wants the main thread, which belongs to the service loop here
(signals, sd_notify, the state mirror). So the server is created (which binds the
port, so a busy port fails at start-up) and its event loop runs on a thread; stopping
closes every socket from inside that loop, then waits for the worker threads.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from waitress import create_server, wasyncore
from waitress.trigger import trigger

log = logging.getLogger("dashboard")

# Forms and JSON bodies here are tiny; anything bigger is refused by waitress.
MAX_REQUEST_BODY_BYTES = 64 * 1024


class HttpServer:
    def __init__(self, app: Any, host: str, port: int, threads: int) -> None:
        # Proxy headers are passed through untouched: the app never trusts them for the
        # client address (rate limiting uses the peer), only X-Forwarded-Proto to add the
        # Secure flag to cookies behind an HTTPS load balancer.
        self._server = create_server(app, host=host, port=port, threads=threads,
                                     ident="mcp-orchestrator",
                                     max_request_body_size=MAX_REQUEST_BODY_BYTES,
                                     clear_untrusted_proxy_headers=False)
        self._map = getattr(self._server, "_map", None) or getattr(self._server, "map")
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)
        self._stopped = False

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        return int(getattr(self._server, "effective_port", 0) or
                   self._server.effective_listen[0][1])

    def start(self) -> None:
        self._thread.start()

    def attach(self, service: Any) -> None:
        self.start()
        service.on_close(self.stop)

    def _run(self) -> None:
        try:
            self._server.run()
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
        self._server.task_dispatcher.shutdown(timeout=timeout)
        log.info("HTTP server stopped")
