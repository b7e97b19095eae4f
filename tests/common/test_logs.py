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
    done = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 1
    err = done.stderr
    assert CANARY not in err
    assert "ERROR test uncaught: uncaught exception in thread worker" in err
    assert "RuntimeError: in a thread: ***" in err
    assert "CRITICAL test uncaught: uncaught exception" in err
    assert "RuntimeError: in the main thread: ***" in err
