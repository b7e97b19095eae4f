"""Listening sockets that outlive the process: systemd's file-descriptor store.

A process hands each listening socket to its supervisor (`FDSTORE=1` with the socket
attached, over $NOTIFY_SOCKET) and gets them back when it starts again, as systemd's
socket activation passes them: fds 3, 4, ... named by $LISTEN_FDNAMES. While the
process is gone the sockets stay open in the supervisor, so connections wait in the
kernel's backlog instead of being refused. The supervisor is systemd (the unit's
`FileDescriptorStoreMax=`) or `mcp-orchestrator run`, which speaks the same protocol
(services/cli/fdstore.py). Without a supervisor all of this does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Optional

from common.service import sd_notify

log = logging.getLogger(__name__)

_FIRST_FD = 3  # SD_LISTEN_FDS_START
_lock = threading.Lock()
_inherited: Optional[dict[str, int]] = None


def _read_environment() -> dict[str, int]:
    """The descriptors passed to this process ($LISTEN_FDS), by name; the variables are
    removed so that no child takes them for its own."""
    count = os.environ.pop("LISTEN_FDS", "")
    pid = os.environ.pop("LISTEN_PID", "")
    names = os.environ.pop("LISTEN_FDNAMES", "").split(":")
    if not count.isdigit() or (pid and pid != str(os.getpid())):
        return {}
    found: dict[str, int] = {}
    for i in range(int(count)):
        fd = _FIRST_FD + i
        name = names[i] if i < len(names) else ""
        try:
            os.set_inheritable(fd, False)
        except OSError:
            continue  # not open
        if not name or name in found:
            os.close(fd)
            continue
        found[name] = fd
    if found:
        log.info("took back %d file descriptor(s) from the supervisor", len(found))
    return found


def _take_fd(name: str) -> Optional[int]:
    global _inherited
    with _lock:
        if _inherited is None:
            _inherited = _read_environment()
        return _inherited.pop(name, None)


def take(name: str) -> Optional[socket.socket]:
    """The socket the supervisor kept under `name` for this process, once."""
    fd = _take_fd(name)
    if fd is None:
        return None
    try:
        return socket.socket(fileno=fd)
    except OSError as exc:
        log.warning("the file descriptor kept as %s is not a socket: %s", name, exc)
        os.close(fd)
        return None


def unclaimed() -> list[str]:
    """Names of inherited descriptors nobody took (yet)."""
    with _lock:
        return sorted(_inherited or {})


def kept_secret(name: str, size: int = 32) -> bytes:
    """A random key that lives as long as the supervisor keeps it: read back from the
    memory file it kept under `name`, or made now and handed to it (so the next run of
    this process has the same). Never in a file on disk. Per process without a supervisor."""
    fd = _take_fd(name)
    if fd is not None:
        try:
            key = os.pread(fd, size, 0)
            if len(key) == size:
                os.close(fd)
                return key
        except OSError:
            pass
        os.close(fd)
    key = os.urandom(size)
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        os.write(fd, key)
        sd_notify(f"FDSTORE=1\nFDNAME={name}", fds=(fd,))
    finally:
        os.close(fd)
    return key


def keep(name: str, sock: socket.socket) -> bool:
    """Hand a listening socket to the supervisor under `name` (replacing any earlier one
    of that name); False when there is no supervisor or it refused."""
    return sd_notify(f"FDSTORE=1\nFDNAME={name}", fds=(sock.fileno(),))


def forget(name: str) -> bool:
    """The supervisor closes the socket it keeps under `name` (the port is given up)."""
    return sd_notify(f"FDSTOREREMOVE=1\nFDNAME={name}")


def drop_unclaimed() -> list[str]:
    """Close the inherited sockets nobody took and tell the supervisor to let them go."""
    global _inherited
    with _lock:
        left, _inherited = dict(_inherited or {}), {}
    for name, fd in left.items():
        os.close(fd)
        forget(name)
    return sorted(left)
