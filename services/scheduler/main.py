"""The scheduler process: desired state, reconciliation, REP `control`, PUB `state`.

    python -m services.scheduler [--settings PATH] [--config PATH]

It reads settings.conf and mcp.config.json, works out which servers must run on which
host ports with which routes, and drives the container-agent and the alb-agent there,
again and again: on a timer, and at once when a container exits, the configuration
file changes (or SIGHUP arrives), an agent comes back or an operator asks. SIGTERM
or SIGINT stops it; the containers and routes stay as they are.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import Optional, Sequence

from common.logs import setup_logging
from common.service import Service
from common.settings import SettingsError, load_settings

from .scheduler import NAME, Scheduler

log = logging.getLogger("scheduler")


def main(argv: Optional[Sequence[str]] = None) -> int:
    from services.cli.main import add_file_options, resolve_paths

    parser = argparse.ArgumentParser(prog="scheduler", description=__doc__.split("\n")[0])
    add_file_options(parser)
    args = parser.parse_args(argv)
    config_path, settings_path = resolve_paths(args)
    try:
        settings = load_settings(settings_path)
    except SettingsError as exc:
        for problem in exc.problems:
            print(f"{NAME}: {problem}", file=sys.stderr)
        return 2
    setup_logging(settings.logging.level, NAME)
    log.info("configuration %s, settings %s", config_path, settings_path or "(built-in defaults)")
    service = Service(NAME)
    try:
        scheduler = Scheduler(service, settings, Path(config_path), settings_path)
        # SIGHUP reloads the configuration (the loop's wakeup fd cuts its poll short).
        signal.signal(signal.SIGHUP, lambda signum, frame: scheduler.request_reload())
        return service.run()
    finally:
        service.close()


if __name__ == "__main__":
    sys.exit(main())
