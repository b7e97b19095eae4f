"""The dashboard process: the web console, Falcon under waitress.

    python -m services.dashboard [--settings PATH]

The main thread runs the service loop (the scheduler state mirror, signals,
sd_notify READY=1 once the HTTP port and the sockets are set up, watchdog pings);
waitress serves the app from its own threads. SIGTERM stops both cleanly.
"""

from __future__ import annotations

import logging
import sys
from typing import Optional, Sequence

from common.process import EXIT_UNUSABLE, open_service, process_parser, resolve_paths, serve_metrics, start_process
from services.dashboard.app import create_app
from services.dashboard.http_server import HttpServer
from services.dashboard.link import NAME, SchedulerLink

log = logging.getLogger("dashboard")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = process_parser(NAME, __doc__).parse_args(argv)
    _, settings_path = resolve_paths(args)  # --config is accepted and ignored: the
    settings = start_process(NAME, settings_path)  # scheduler owns the configuration
    if settings is None:
        return EXIT_UNUSABLE
    dash = settings.dashboard
    if settings.default_password:
        log.warning(
            "the dashboard password is the default 'changeme': set [dashboard] password "
            "(or MCP_ORCHESTRATOR_DASHBOARD_PASSWORD) before exposing port %d",
            dash.port,
        )

    service = open_service(NAME, settings)
    if service is None:
        return EXIT_UNUSABLE
    try:
        serve_metrics(service, NAME, settings)
        link = service.attach(SchedulerLink(service.ctx, settings))
        try:
            http = HttpServer(create_app(settings, link), dash)
        except OSError as exc:
            log.error("cannot listen on %s:%d: %s", dash.host, dash.port, exc.strerror or exc)
            return 1
        service.attach(http)
        log.info(
            "serving http://%s:%d%s (scheduler at %s)", dash.host, http.port, dash.path, settings.zmq.scheduler_control
        )
        return service.run()
    finally:
        service.close()


if __name__ == "__main__":
    sys.exit(main())
