"""What every process and the CLI do first: find their files, load settings, log; and
the sockets every process binds, sized and timed from `[zmq]`.

All four processes find settings.conf and mcp.config.json the same way, so that run
by hand from the same directory they agree on the same ZeroMQ endpoints.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
from pathlib import Path
from typing import Any, Mapping, Optional

from common import curve, metrics
from common.logs import setup_logging
from common.pubsub import Publisher, Subscriber
from common.reqrep import RepServer
from common.service import Service
from common.settings import Settings, SettingsError, ZmqSettings, load_settings

SYSTEM_DIR = Path("/etc/mcp-orchestrator")
# Exit status for unusable settings or arguments: systemd does not restart on it.
EXIT_UNUSABLE = 2


def default_path(env_var: str, name: str) -> Path:
    """$env_var, else ./name when it exists, else /etc/mcp-orchestrator/name."""
    if os.environ.get(env_var):
        return Path(os.environ[env_var])
    local = Path.cwd() / name
    return local if local.exists() else SYSTEM_DIR / name


def add_file_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="PATH",
        help="MCP servers file (default: $MCP_ORCHESTRATOR_CONFIG, "
        "./mcp.config.json, /etc/mcp-orchestrator/mcp.config.json)",
    )
    parser.add_argument(
        "--settings",
        type=Path,
        default=None,
        metavar="PATH",
        help="settings file (default: $MCP_ORCHESTRATOR_SETTINGS, "
        "./settings.conf, /etc/mcp-orchestrator/settings.conf)",
    )


def resolve_paths(args: argparse.Namespace) -> tuple[Path, Optional[Path]]:
    """(config path, settings path or None for the built-in defaults)."""
    config = args.config or default_path("MCP_ORCHESTRATOR_CONFIG", "mcp.config.json")
    settings = args.settings or default_path("MCP_ORCHESTRATOR_SETTINGS", "settings.conf")
    # A missing settings file is fine when nobody asked for one: defaults apply.
    if args.settings is None and "MCP_ORCHESTRATOR_SETTINGS" not in os.environ and not settings.exists():
        return config, None
    return config, settings


def process_parser(prog: str, doc: Optional[str]) -> argparse.ArgumentParser:
    """An argument parser with --config and --settings, for one of the four processes."""
    parser = argparse.ArgumentParser(prog=prog, description=(doc or "").split("\n")[0])
    add_file_options(parser)
    return parser


def start_process(name: str, settings_path: Optional[Path]) -> Optional[Settings]:
    """Load settings and set up logging; None (problems printed) when they are unusable."""
    try:
        settings = load_settings(settings_path)
    except SettingsError as exc:
        for problem in exc.problems:
            print(f"{name}: {problem}", file=sys.stderr)
        return None
    setup_logging(settings.logging.level, name)
    return settings


def open_service(name: str, settings: Settings) -> Optional[Service]:
    """The process's Service, its ZeroMQ links between hosts secured as the settings say
    (common/curve.py); None (the problem printed) when the cluster key is missing."""
    service = Service(name)
    try:
        curve.arm(
            service.ctx, settings.zmq.between_hosts, settings.cluster.keys_dir, needed=settings.links_between_hosts
        )
    except curve.CurveError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        service.close()
        return None
    return service


def serve_metrics(service: Any, name: str, settings: Settings) -> None:
    """This process's /metrics on its `[metrics]` address (if any), closed with the service."""
    key = name.replace("-", "_")
    endpoint = metrics.serve(getattr(settings.metrics, key), name, key)
    if endpoint is not None:
        service.on_close(endpoint.close)


# --- the sockets every process binds, sized and timed from [zmq] ------------------------


def serve_requests(service: Any, name: str, endpoint: str, handlers: Mapping[str, Any], zmq: ZmqSettings) -> RepServer:
    """A RepServer answering `handlers` on `endpoint`, attached to the service's loop."""
    return service.attach(RepServer(service.ctx, endpoint, handlers, src=name, max_bytes=zmq.max_message_bytes))


def publish_on(service: Any, name: str, endpoint: str, zmq: ZmqSettings) -> Publisher:
    """A Publisher (with heartbeats) on `endpoint`, attached to the service's loop."""
    return service.attach(
        Publisher(
            service.ctx,
            endpoint,
            src=name,
            heartbeat_interval=zmq.heartbeat_interval_seconds,
            max_bytes=zmq.max_message_bytes,
        )
    )


def subscribe_to(service: Any, endpoint: str, topics: tuple[str, ...], zmq: ZmqSettings) -> Subscriber:
    """A Subscriber of `topics` on `endpoint` (it expects the publisher's heartbeats),
    closed with the service; the caller registers its reader."""
    sub = Subscriber(
        service.ctx,
        endpoint,
        topics=topics,
        heartbeat_interval=zmq.heartbeat_interval_seconds,
        max_bytes=zmq.max_message_bytes,
    )
    service.on_close(sub.close)
    return sub


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child (before exec): SIGTERM when the parent dies, so that no orphan keeps
    running (Linux; elsewhere nothing)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass
