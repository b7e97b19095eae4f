"""The key of the spec hash: per installation, never published.

The spec hash (a container label, shown on the dashboard, in `status --json` and in PUB
messages) covers env values, so that a changed secret recreates the container. Unkeyed,
anyone who sees it could test guesses of a secret offline. Keyed, it tells nothing
without the key.

The key is derived from /etc/machine-id the way systemd's
sd_id128_get_machine_app_specific() derives an application's id: an HMAC of the machine
id under a fixed application id, so the machine id itself is never used or shown. Every
process of one installation (the scheduler and the container-agent both hash) gets the
same key, across restarts and reboots. Without a machine id, a random key is kept in a
0600 file in the runtime directory, made once by whichever process comes first.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Optional

APP_ID = b"mcp-orchestrator spec hash v1"
MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")
KEY_FILE_NAME = "spec-hash.key"


def _machine_id() -> Optional[bytes]:
    for name in MACHINE_ID_FILES:
        try:
            text = Path(name).read_text().strip()
        except OSError:
            continue
        if len(text) == 32:
            return bytes.fromhex(text) if all(c in "0123456789abcdef" for c in text) else None
    return None


def _kept_key(directory: str) -> bytes:
    path = Path(directory) / KEY_FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


@lru_cache(maxsize=None)
def installation_key() -> bytes:
    machine = _machine_id()
    if machine is not None:
        return hmac.new(machine, APP_ID, hashlib.sha256).digest()
    from common.settings import default_runtime_dir  # only needed on machines without an id

    return _kept_key(default_runtime_dir())
