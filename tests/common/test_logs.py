"""Uncaught exceptions, in any thread, reach stderr through the redacting formatter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CANARY = "canary-uncaught-SECRET-4b2f"

PROGRAM = f"""
import threading
from common.logs import setup_logging
from common.secrets import Secret

setup_logging("INFO", "test")
Secret({CANARY!r})

def fail():
    raise RuntimeError("in a thread: " + {CANARY!r})

worker = threading.Thread(target=fail, name="worker")
worker.start()
worker.join()
raise RuntimeError("in the main thread: " + {CANARY!r})
"""


def test_uncaught_exceptions_are_logged_redacted():
    done = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    err = done.stderr
    assert CANARY not in err
    assert "ERROR test uncaught: uncaught exception in thread worker" in err
    assert "RuntimeError: in a thread: ***" in err
    assert "CRITICAL test uncaught: uncaught exception" in err
    assert "RuntimeError: in the main thread: ***" in err


def test_repeated_warnings_are_held_back_and_counted():
    import logging

    from common.logs import RepeatLimiter

    now = [0.0]
    limiter = RepeatLimiter(burst=3, interval=10, clock=lambda: now[0])

    def record(msg, level=logging.ERROR):
        return logging.LogRecord("asyncio", level, __file__, 1, msg, None, None)

    passed = [limiter.filter(record("socket.accept() out of system resource")) for _ in range(1000)]
    assert sum(passed) == 3
    assert limiter.filter(record("another message"))
    assert all(limiter.filter(record("chatty info", logging.INFO)) for _ in range(100))
    now[0] = 11.0
    later = record("socket.accept() out of system resource")
    assert limiter.filter(later) and later.msg.startswith("(997 more like this were held back)")
