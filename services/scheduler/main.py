"""The scheduler process: desired state, reconciliation, REP `control`, PUB `state`.

    python -m services.scheduler [--settings PATH] [--config PATH]

It reads settings.conf and mcp.config.json, works out which servers must run on which
host ports with which routes, and drives the container-agent and the alb-agent there,
again and again: on a timer, and at once when a container exits, the configuration
file changes (or SIGHUP arrives), an agent comes back or an operator asks. SIGTERM
or SIGINT stops it; the containers and routes stay as they are.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Optional, Sequence

from common.process import EXIT_UNUSABLE, open_service, process_parser, resolve_paths, serve_metrics, start_process

from .scheduler import NAME, Scheduler

log = logging.getLogger("scheduler")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = process_parser(NAME, __doc__).parse_args(argv)
    config_path, settings_path = resolve_paths(args)
    settings = start_process(NAME, settings_path)
    if settings is None:
        return EXIT_UNUSABLE
    log.info("configuration %s, settings %s", config_path, settings_path or "(built-in defaults)")
    service = open_service(NAME, settings)
    if service is None:
        return EXIT_UNUSABLE
    try:
        serve_metrics(service, NAME, settings)
        scheduler = Scheduler(service, settings, Path(config_path), settings_path)
        # SIGHUP reloads the configuration (the loop's wakeup fd cuts its poll short).
        signal.signal(signal.SIGHUP, lambda signum, frame: scheduler.request_reload())
        return service.run()
    finally:
        service.close()


if __name__ == "__main__":
    sys.exit(main())
