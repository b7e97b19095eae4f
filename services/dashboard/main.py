"""The dashboard process: the web console, Falcon under waitress.

    python -m services.dashboard [--settings PATH]

The main thread runs the service loop (the scheduler state mirror, signals,
sd_notify READY=1 once the HTTP port and the sockets are set up, watchdog pings);
waitress serves the app from its own threads. SIGTERM stops both cleanly.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from common.logs import setup_logging
from common.service import Service
from common.settings import SettingsError, load_settings
from services.dashboard.app import create_app
from services.dashboard.http_server import HttpServer
from services.dashboard.link import NAME, SchedulerLink

log = logging.getLogger("dashboard")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="dashboard", description=__doc__.split("\n")[0])
    parser.add_argument("--settings", type=Path, default=None, metavar="PATH",
                        help="settings file (default: $MCP_ORCHESTRATOR_SETTINGS, else "
                             "built-in defaults)")
    parser.add_argument("--config", type=Path, default=None, metavar="PATH",
                        help="accepted for symmetry with the scheduler and ignored: the "
                             "dashboard shows the configuration the scheduler has in force")
    args = parser.parse_args(argv)
    path = args.settings or os.environ.get("MCP_ORCHESTRATOR_SETTINGS") or None
    try:
        settings = load_settings(path)
    except SettingsError as exc:
        for problem in exc.problems:
            print(f"{NAME}: {problem}", file=sys.stderr)
        return 2
    setup_logging(settings.logging.level, NAME)
    dash = settings.dashboard
    if settings.default_password:
        log.warning("the dashboard password is the default 'changeme': set [dashboard] password "
                    "(or MCP_ORCHESTRATOR_DASHBOARD_PASSWORD) before exposing port %d", dash.port)

    service = Service(NAME)
    try:
        link = service.attach(SchedulerLink(service.ctx, settings))
        try:
            http = HttpServer(create_app(settings, link), dash.host, dash.port, dash.threads)
        except OSError as exc:
            log.error("cannot listen on %s:%d: %s", dash.host, dash.port, exc.strerror or exc)
            return 1
        service.attach(http)
        log.info("serving http://%s:%d%s (scheduler at %s)", dash.host, http.port,
                 dash.path, settings.zmq.scheduler_control)
        return service.run()
    finally:
        service.close()


if __name__ == "__main__":
    sys.exit(main())
