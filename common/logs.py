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
import time
from typing import Callable, Optional

from common.secrets import redact


class RepeatLimiter(logging.Filter):
    """Lets through at most `burst` warnings or errors of one kind (logger and message
    template) per `interval` seconds; the first one let through afterwards says how many
    were held back. A flood (an accept loop failing, a client repeating a bad request)
    must not flood the journal too."""

    def __init__(self, burst: int = 5, interval: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst = burst
        self.interval = interval
        self._clock = clock
        self._windows: dict[tuple[str, object], list] = {}  # kind -> [start, passed, held]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        now = self._clock()
        kind = (record.name, record.msg if isinstance(record.msg, str) else type(record.msg).__name__)
        window = self._windows.get(kind)
        if window is None or now - window[0] >= self.interval:
            held = window[2] if window is not None else 0
            if len(self._windows) > 1000:  # kinds are few; never let the table grow without end
                self._windows.clear()
            self._windows[kind] = [now, 1, 0]
            if held:
                record.msg = f"({held} more like this were held back) {record.msg}"
            return True
        if window[1] < self.burst:
            window[1] += 1
            return True
        window[2] += 1
        return False


class RedactingFormatter(logging.Formatter):
    _second = -1
    _stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))

    def formatTime(self, record: logging.LogRecord, datefmt: Optional[str] = None) -> str:
        # The date and time to the second are made once per second: the bridge's access
        # log writes a line per request.
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            self._stamp = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = second
        return self.default_msec_format % (self._stamp, record.msecs)


def setup_logging(level: str, process: str) -> None:
    """Configure the root logger of `process` (scheduler, container-agent, ...)."""
    # Under systemd the journal adds its own timestamp and unit name.
    if os.environ.get("JOURNAL_STREAM"):
        fmt = "%(levelname)s %(name)s: %(message)s"
    else:
        fmt = f"%(asctime)s %(levelname)s {process} %(name)s: %(message)s"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(fmt))
    handler.addFilter(RepeatLimiter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Neither format shows the process id, thread or process name: a record need not
    # look them up (a getpid system call each, and the bridge logs a line per request).
    logging.logProcesses = False
    logging.logThreads = False
    logging.logMultiprocessing = False
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
    logging.getLogger("uncaught").error(
        "uncaught exception in thread %s", name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback)
    )
