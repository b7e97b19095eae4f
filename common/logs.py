"""Logging for every process: one line per event to stderr, for journald to pick up.

The `Secret` type keeps env values out of log calls in the first place; the
formatter below is a safety net that masks any known secret value that still
reaches a formatted line (an exception text from a library, say).
"""
from __future__ import annotations

import logging
import os
import sys
import threading

from common.secrets import redact


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(level: str, process: str) -> None:
    """Configure the root logger of `process` (scheduler, container-agent, ...)."""
    # Under systemd the journal adds its own timestamp and unit name.
    if os.environ.get("JOURNAL_STREAM"):
        fmt = "%(levelname)s %(name)s: %(message)s"
    else:
        fmt = f"%(asctime)s %(levelname)s {process} %(name)s: %(message)s"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Library chatter at DEBUG would drown our own lines and may echo request data.
    for noisy in ("botocore", "boto3", "urllib3", "docker", "asyncio", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))
    # Python prints an uncaught exception's traceback to stderr itself, past the formatter.
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(exc_type, exc, tb) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    logging.getLogger("uncaught").critical("uncaught exception", exc_info=(exc_type, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("uncaught").error("uncaught exception in thread %s", name,
                                        exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
